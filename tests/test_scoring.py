"""Candidate scoring: packing, least squares, error measures and the agreement of the backends."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy

from nalu_sr.scoring import (
    PackedCandidates,
    available_backends,
    evaluate,
    group_rows,
    pack,
    score,
    score_rows,
    split_errors,
    torch_backend,
    unpack,
)
from nalu_sr.scoring import packing as packing_module
from nalu_sr.structure import make_factor, make_structure, make_term, raise_term

N_INPUTS = 4
#: Columns of the feature table built by ``feature_table``: x0..x3, 1/x0..1/x3, 1.
N_FEATURES = 2 * N_INPUTS + 1
CONSTANT = 2 * N_INPUTS
MEASURES = ("rmse", "relative_rmse", "max_relative_error")


def feature_table(rng: np.random.Generator, n_rows: int, zeros: bool = False) -> np.ndarray:
    """Inputs of both signs, their reciprocals and the constant 1; ``zeros`` puts a few exact
    zeros into the inputs (so their reciprocals are infinite)."""
    x = rng.uniform(-3.0, 3.0, size=(n_rows, N_INPUTS))
    x[np.abs(x) < 0.2] = 0.5
    if zeros:
        x[rng.choice(n_rows, size=3, replace=False), rng.integers(0, N_INPUTS, size=3)] = 0.0
    with np.errstate(divide="ignore"):
        return np.column_stack([x, 1.0 / x, np.ones(n_rows)])


def random_structures(rng: np.random.Generator, n: int, n_features: int = N_FEATURES) -> list:
    structures = []
    while len(structures) < n:
        terms = []
        for _ in range(rng.integers(1, 4)):
            powers = []
            for _ in range(rng.integers(1, 3)):
                index = rng.choice(n_features, size=rng.integers(1, 4), replace=False)
                factor = make_factor((int(i), int(rng.choice([-1, 1]))) for i in index)
                # Inputs are at least 0.2 in size (or exactly 0), so they may divide; sums,
                # which may come near 0, and the reciprocal columns (inf where an input is 0,
                # which the torch backend reports as NaN, not as 1/inf) only multiply.
                divides = len(factor) == 1 and factor[0][0] < N_INPUTS
                exponents = [1, 1, 2, 3, -1, -2] if divides else [1, 1, 2]
                powers.append((factor, int(rng.choice(exponents))))
            terms.append(raise_term(powers))
        structures.append(make_structure(terms))
    return structures


def random_split(rng: np.random.Generator, n_rows: int) -> np.ndarray:
    return rng.integers(0, 3, size=n_rows).astype(np.int8)


def sympy_prediction(structure, coefficients: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The candidate's formula built with SymPy, lambdified and evaluated on ``features``."""
    symbols = sympy.symbols(f"f0:{features.shape[1]}")
    formula = sympy.Float(coefficients[0])
    for c, term in zip(coefficients[1:], structure):
        product = sympy.Integer(1)
        for factor, exponent in term:
            product *= sympy.Add(*(sign * symbols[i] for i, sign in factor)) ** exponent
        formula += sympy.Float(c) * product
    function = sympy.lambdify(symbols, formula, "numpy")
    with np.errstate(all="ignore"):
        values = function(*features.T)
    return np.broadcast_to(np.asarray(values, dtype=np.float64), features.shape[:1])


def reference_measures(prediction: np.ndarray, y: np.ndarray, split: np.ndarray) -> np.ndarray:
    """(3 splits, 3 measures) computed straight from the definitions."""
    out = np.full((3, 3), np.nan)
    for s in range(3):
        rows = split == s
        if not rows.any():
            continue
        if not np.all(np.isfinite(prediction[rows])):
            out[s] = np.inf
            continue
        residual = y[rows] - prediction[rows]
        scale = np.sqrt(np.mean(y[rows] ** 2))
        rmse = np.sqrt(np.mean(residual**2))
        out[s] = rmse, rmse / scale, np.max(np.abs(residual)) / scale
    return out


def measures(scores, candidate: int) -> np.ndarray:
    return np.array([getattr(scores, m)[candidate] for m in MEASURES]).T


def assert_same_scores(a, b, rtol: float) -> None:
    for name in ("coefficients", *MEASURES):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    features = feature_table(rng, 600, zeros=True)
    x = features[:, :N_INPUTS]
    y = 1.5 + x[:, 0] * x[:, 1] - 0.5 * x[:, 2] + 0.1 * rng.standard_normal(600)
    return random_structures(rng, 120), features, y, random_split(rng, 600)


def test_pack_round_trips_structures():
    structures = random_structures(np.random.default_rng(0), 50) + [()]
    packed = pack(structures)
    assert unpack(packed) == structures
    assert packed.n_terms.tolist() == [len(s) for s in structures]
    assert packed.feature.dtype == np.int32 and packed.sign.dtype == np.int8
    assert packed.term_offsets[-1] == len(packed.factor_offsets) - 1
    assert packed.factor_offsets[-1] == len(packed.entry_offsets) - 1
    assert packed.entry_offsets[-1] == len(packed.feature)
    assert unpack(packed.subset(np.array([3, 1]))) == [structures[3], structures[1]]


def test_pack_rejects_entries_that_are_not_signed_features():
    with pytest.raises(ValueError, match="sign of -1 or 1"):
        pack([(((((0, 2),), 1),),)])
    with pytest.raises(ValueError, match="feature index >= 0"):
        pack([(((((-1, 1),), 1),),)])


def test_available_backends_lists_all_three():
    assert available_backends() == ["numpy", "numba", "torch"]


def test_numpy_and_numba_agree_on_random_candidates(problem):
    structures, features, y, split = problem
    packed = pack(structures)
    a = score(packed, features, y, split, backend="numpy")
    b = score(packed, features, y, split, backend="numba")
    assert (a.backend, b.backend) == ("numpy", "numba")
    assert_same_scores(a, b, rtol=1e-12)
    # the zeros in the inputs make some reciprocal-reading candidates infinite
    assert np.isinf(a.rmse).any() and np.isfinite(a.rmse).any()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_table_grouped_once_scores_like_the_table_itself(problem, backend):
    structures, features, y, split = problem
    rows = group_rows(features, y, split)
    for part in (structures[:4], structures[4:]):
        direct = score(pack(part), features, y, split, backend=backend)
        assert_same_scores(score_rows(pack(part), rows, backend=backend), direct, rtol=0)


def test_auto_backend_is_numba_when_installed(problem):
    structures, features, y, split = problem
    assert score(pack(structures[:3]), features, y, split).backend == "numba"


def test_weighted_numpy_and_numba_agree_to_the_last_bit(problem):
    structures, features, y, split = problem
    weights = np.random.default_rng(3).uniform(0.1, 4.0, y.size)
    packed = pack(structures)
    a = score(packed, features, y, split, backend="numpy", weights=weights)
    b = score(packed, features, y, split, backend="numba", weights=weights)
    assert_same_scores(a, b, rtol=0)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_integer_weights_score_like_rows_repeated_that_many_times(problem, backend):
    structures, features, y, split = problem
    finite = np.all(np.isfinite(features), axis=1)
    features, y, split = features[finite], y[finite], split[finite]
    counts = np.random.default_rng(4).integers(0, 4, y.size)
    repeat = np.repeat(np.arange(y.size), counts)
    packed = pack(structures[:40])
    weighted = score(packed, features, y, split, backend=backend, weights=counts)
    repeated = score(packed, features[repeat], y[repeat], split[repeat], backend=backend)
    for name in MEASURES:
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9)
    np.testing.assert_allclose(weighted.coefficients, repeated.coefficients, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_unit_weights_score_exactly_as_no_weights(problem, backend):
    structures, features, y, split = problem
    packed = pack(structures[:40])
    plain = score(packed, features, y, split, backend=backend)
    ones = score(packed, features, y, split, backend=backend, weights=np.ones(y.size))
    assert_same_scores(ones, plain, rtol=0)


def test_weighted_split_errors_are_those_of_the_repeated_rows():
    rng = np.random.default_rng(5)
    y, prediction = rng.normal(size=90), rng.normal(size=90)
    split, counts = random_split(rng, 90), rng.integers(0, 4, 90)
    repeat = np.repeat(np.arange(90), counts)
    weighted = split_errors(prediction, y, split, counts.astype(float))
    repeated = split_errors(prediction[repeat], y[repeat], split[repeat])
    for a, b in zip(weighted, repeated, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_bad_row_weights_are_rejected():
    features = np.ones((4, 1))
    with pytest.raises(ValueError, match="non-negative number per row"):
        group_rows(features, np.ones(4), np.zeros(4, dtype=np.int8), weights=-np.ones(4))


@pytest.mark.parametrize("chunk_budget", [2**24, 20_000], ids=["one chunk", "many chunks"])
def test_torch_backend_agrees_with_numpy(problem, chunk_budget, monkeypatch):
    monkeypatch.setattr(torch_backend, "CHUNK_BUDGET", chunk_budget)
    structures, features, y, split = problem
    finite = np.all(np.isfinite(features), axis=1)
    features, y, split = features[finite], y[finite], split[finite]
    packed = pack(structures)
    a = score(packed, features, y, split, backend="numpy")
    b = score(packed, features, y, split, backend="torch")
    for name in MEASURES:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9)
    np.testing.assert_allclose(a.coefficients, b.coefficients, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_scores_match_the_lambdified_sympy_formula(problem, backend):
    structures, features, y, split = problem
    packed = pack(structures[:40])
    fitted = score(packed, features, y, split, backend=backend)
    for c, structure in enumerate(structures[:40]):
        coefficients = fitted.coefficients[c, : len(structure) + 1]
        prediction = sympy_prediction(structure, coefficients, features)
        expected = reference_measures(prediction, y, split)
        np.testing.assert_allclose(measures(fitted, c), expected, rtol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_fit_matches_numpy_lstsq_on_train_rows(problem, backend):
    structures, features, y, split = problem
    finite = np.all(np.isfinite(features), axis=1)
    features, y, split = features[finite], y[finite], split[finite]
    fitted = score(pack(structures[:30]), features, y, split, backend=backend)
    train = split == 0
    for c, structure in enumerate(structures[:30]):
        columns = [np.ones(train.sum())]
        for term in structure:
            columns.append(sympy_prediction((term,), np.array([0.0, 1.0]), features[train]))
        design = np.column_stack(columns)
        if np.linalg.matrix_rank(design) < design.shape[1]:
            continue
        expected = np.linalg.lstsq(design, y[train], rcond=None)[0]
        np.testing.assert_allclose(
            fitted.coefficients[c, : len(structure) + 1], expected, rtol=1e-7, atol=1e-9
        )


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_least_squares_recovers_known_coefficients(backend):
    rng = np.random.default_rng(1)
    features = feature_table(rng, 300)
    y = 3.0 + 2.0 * features[:, 0] * features[:, 1]
    product = make_structure([make_term([((0, 1),), ((1, 1),)])])
    result = score(pack([product]), features, y, random_split(rng, 300), backend=backend)
    np.testing.assert_allclose(result.coefficients[0], [3.0, 2.0], rtol=1e-10)
    assert np.all(result.relative_rmse < 1e-12)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_dependent_terms_get_zero_coefficients_in_order(backend):
    rng = np.random.default_rng(2)
    features = feature_table(rng, 200)
    x0, x1 = features[:, 0], features[:, 1]
    y = 1.0 + 4.0 * x0 - 2.0 * x1
    split = random_split(rng, 200)
    candidates = [
        # a constant term duplicates the intercept: the intercept keeps the constant
        (((((CONSTANT, 1),), 1),), ((((0, 1),), 1),), ((((1, 1),), 1),)),
        # x0 - x1 after x0 and x1 is dependent: it gets 0 and x0, x1 keep the fit
        (((((0, 1),), 1),), ((((1, 1),), 1),), ((((0, 1), (1, -1)), 1),)),
        # the same term twice: the second copy gets 0
        (((((0, 1),), 1),), ((((0, 1),), 1),), ((((1, 1),), 1),)),
    ]
    result = score(pack(candidates), features, y, split, backend=backend)
    np.testing.assert_allclose(result.coefficients[0], [1.0, 0.0, 4.0, -2.0], atol=1e-10)
    np.testing.assert_allclose(result.coefficients[1], [1.0, 4.0, -2.0, 0.0], atol=1e-10)
    np.testing.assert_allclose(result.coefficients[2], [1.0, 4.0, 0.0, -2.0], atol=1e-10)
    assert np.all(result.relative_rmse < 1e-12)
    again = score(pack(candidates), features, y, split, backend=backend)
    np.testing.assert_array_equal(result.coefficients, again.coefficients)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_fit_intercept_false_fixes_c0_at_zero(backend):
    rng = np.random.default_rng(3)
    features = feature_table(rng, 200)
    y = 3.0 + 2.0 * features[:, 0]
    split = random_split(rng, 200)
    candidates = [(((((0, 1),), 1),),), (((((0, 1),), 1),), ((((CONSTANT, 1),), 1),))]
    without = score(pack(candidates), features, y, split, fit_intercept=False, backend=backend)
    assert without.coefficients[0, 0] == 0.0 and without.relative_rmse[0, 0] > 0.1
    # with no intercept, a constant term is no longer redundant and takes its place
    np.testing.assert_allclose(without.coefficients[1], [0.0, 2.0, 3.0], rtol=1e-10)
    mixed = score(
        pack(candidates), features, y, split, fit_intercept=np.array([True, False]), backend=backend
    )
    np.testing.assert_allclose(mixed.coefficients[0], [3.0, 2.0, np.nan], rtol=1e-10)
    np.testing.assert_allclose(mixed.coefficients[1], [0.0, 2.0, 3.0], rtol=1e-10)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_empty_split_gives_nan(backend):
    rng = np.random.default_rng(4)
    features = feature_table(rng, 100)
    y = features[:, 0] + 1.0
    split = np.where(rng.random(100) < 0.5, 0, 2).astype(np.int8)
    result = score(pack(random_structures(rng, 5)), features, y, split, backend=backend)
    assert result.counts[1] == 0
    for name in MEASURES:
        assert np.all(np.isnan(getattr(result, name)[:, 1]))
        assert np.all(np.isfinite(getattr(result, name)[:, [0, 2]]))


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_non_finite_features_give_inf_on_their_split_only(backend):
    rng = np.random.default_rng(5)
    features = feature_table(rng, 90)
    split = np.repeat(np.array([0, 1, 2], dtype=np.int8), 30)
    features[75, N_INPUTS] = np.inf  # 1/x0 on an extrapolation row
    y = 1.0 + features[:, 1]
    reads_inf = (((((N_INPUTS, 1),), 1),), ((((1, 1),), 1),))
    avoids_it = (((((1, 1),), 1),),)
    result = score(pack([reads_inf, avoids_it]), features, y, split, backend=backend)
    for name in MEASURES:
        values = getattr(result, name)
        assert np.all(np.isfinite(values[0, :2])) and np.isposinf(values[0, 2])
        assert np.all(np.isfinite(values[1]))
    # on a train row the fit itself fails: NaN coefficients, inf everywhere
    features[5, N_INPUTS] = np.nan
    result = score(pack([reads_inf, avoids_it]), features, y, split, backend=backend)
    assert np.all(np.isnan(result.coefficients[0])) and np.all(np.isposinf(result.rmse[0]))
    assert np.all(np.isfinite(result.rmse[1]))


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_given_coefficients_are_used_as_they_are(problem, backend):
    structures, features, y, split = problem
    packed = pack(structures[:20])
    coefficients = np.random.default_rng(6).normal(size=(20, packed.max_terms + 1))
    result = score(packed, features, y, split, coefficients=coefficients, backend=backend)
    for c, structure in enumerate(structures[:20]):
        given = coefficients[c, : len(structure) + 1]
        np.testing.assert_array_equal(result.coefficients[c, : len(structure) + 1], given)
        assert np.all(np.isnan(result.coefficients[c, len(structure) + 1 :]))
        expected = reference_measures(sympy_prediction(structure, given, features), y, split)
        np.testing.assert_allclose(measures(result, c), expected, rtol=1e-9)


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_a_structure_without_terms_fits_the_train_mean(backend):
    rng = np.random.default_rng(10)
    features = feature_table(rng, 60)
    y, split = features[:, 0] + 1.0, random_split(rng, 60)
    result = score(pack([(), (((((0, 1),), 1),),)]), features, y, split, backend=backend)
    np.testing.assert_allclose(result.coefficients[0], [y[split == 0].mean(), np.nan])
    np.testing.assert_allclose(result.coefficients[1], [1.0, 1.0])
    assert score(pack([]), features, y, split, backend=backend).rmse.shape == (0, 3)


def test_relative_measures_of_an_all_zero_target():
    rng = np.random.default_rng(8)
    features = feature_table(rng, 60)
    packed = pack([(((((0, 1),), 1),),)])
    split = random_split(rng, 60)
    exact = score(packed, features, np.zeros(60), split, backend="numpy")
    assert np.all(exact.relative_rmse == 0) and np.all(exact.max_relative_error == 0)
    off = score(packed, features, np.zeros(60), split, coefficients=np.ones((1, 2)))
    assert np.all(np.isposinf(off.relative_rmse)) and np.all(np.isfinite(off.rmse))


def test_split_errors_of_one_prediction_are_the_scores_of_its_candidate():
    rng = np.random.default_rng(10)
    features = feature_table(rng, 80)
    split = random_split(rng, 80)
    y = 1.5 + 2 * features[:, 0] + rng.normal(0, 0.1, 80)
    scores = score(pack([(((((0, 1),), 1),),)]), features, y, split, backend="numpy")
    c0, c1 = scores.coefficients[0]
    measures = split_errors(c0 + c1 * features[:, 0], y, split)
    expected = (scores.rmse, scores.relative_rmse, scores.max_relative_error)
    for measure, wanted in zip(measures, expected, strict=True):
        np.testing.assert_allclose(measure, wanted[0], rtol=1e-12)


def test_split_errors_on_an_all_zero_split_are_zero_only_for_an_exact_prediction():
    y = np.array([1.0, 2.0, 0.0, 0.0, 3.0, 4.0])
    split = np.array([0, 0, 1, 1, 2, 2], dtype=np.int8)
    _, exact, exact_worst = split_errors(y.copy(), y, split)
    assert np.all(exact == 0) and np.all(exact_worst == 0)
    rmse, off, off_worst = split_errors(y + 1e-3, y, split)
    assert np.isposinf(off[1]) and np.isposinf(off_worst[1])
    assert np.all(np.isfinite(off[[0, 2]])) and np.allclose(rmse, 1e-3)
    assert np.isnan(split_errors(y[:2], y[:2], split[:2])[1][1:]).all()
    assert np.isposinf(split_errors(np.full(6, np.nan), y, split)[0]).all()


def test_invalid_inputs_raise_errors_that_say_what_to_do():
    rng = np.random.default_rng(9)
    features = feature_table(rng, 30)
    y, split = features[:, 0], random_split(rng, 30)
    packed = pack([(((((0, 1),), 1),),)])
    with pytest.raises(ValueError, match="'auto', 'numpy', 'numba', 'torch'"):
        score(packed, features, y, split, backend="cuda")
    with pytest.raises(ValueError, match="split must hold"):
        score(packed, features, y, np.full(30, 3, dtype=np.int8))
    with pytest.raises(ValueError, match="only 1 columns"):
        score(pack([(((((5, 1),), 1),),)]), features[:, :1], y, split)
    with pytest.raises(ValueError, match="shape"):
        score(packed, features, y, split, coefficients=np.ones((1, 3)))
    with pytest.raises(ValueError, match="no train rows"):
        score(packed, features, y, np.ones(30, dtype=np.int8))
    with pytest.raises(ValueError, match="y contains NaN"):
        score(packed, features, np.full(30, np.nan), split)
    with pytest.raises(ValueError, match="one bool per candidate"):
        score(packed, features, y, split, fit_intercept=np.array([True, False]))


def _run_without_numba(body: str) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh interpreter in which ``import numba`` fails."""
    prelude = "import sys\nsys.modules['numba'] = None\n"
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", prelude + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_auto_falls_back_to_numpy_silently_without_numba(tmp_path):
    out = tmp_path / "scores.json"
    done = _run_without_numba(
        f"""
        import json, warnings
        import numpy as np
        from nalu_sr.scoring import available_backends, pack, score
        warnings.simplefilter("error")
        x = np.linspace(1.0, 3.0, 40)
        features = np.column_stack([x, x[::-1], np.ones(40)])
        y = 3.0 + 2.0 * features[:, 0] * features[:, 1]
        split = np.arange(40, dtype=np.int8) % 3
        result = score(pack([(((((0, 1),), 1), (((1, 1),), 1)),)]), features, y, split)
        with open({str(out)!r}, "w") as f:
            json.dump({{"backend": result.backend, "available": available_backends(),
                       "coefficients": result.coefficients.tolist(),
                       "relative_rmse": result.relative_rmse.tolist()}}, f)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    result = json.loads(out.read_text())
    assert result["backend"] == "numpy" and "numba" not in result["available"]
    np.testing.assert_allclose(result["coefficients"], [[3.0, 2.0]], rtol=1e-10)
    assert np.all(np.array(result["relative_rmse"]) < 1e-12)


def test_numba_backend_without_numba_says_how_to_install_it():
    done = _run_without_numba(
        """
        import numpy as np
        from nalu_sr.scoring import pack, score
        features = np.ones((3, 1))
        line = (((((0, 1),), 1),),)
        score(pack([line]), features, np.ones(3), np.zeros(3, np.int8), backend="numba")
        """
    )
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "pip install nalu-sr[fast]" in done.stderr


def test_importing_scoring_does_not_import_numba():
    code = "import sys, nalu_sr.scoring; print('numba' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_packed_candidates_describe_their_shape():
    packed = pack([(((((0, 1),), 1), (((3, -1), (4, 1)), 1)), ((((2, 1),), 1),)), ()])
    assert isinstance(packed, PackedCandidates)
    assert len(packed) == 2 and packed.max_terms == 2 and packed.n_features_required == 5
    assert packed.factor_offsets.tolist() == [0, 2, 3]
    assert packed.entry_offsets.tolist() == [0, 1, 3, 4]


@pytest.mark.parametrize("module", [packing_module, evaluate], ids=["pack", "score"])
def test_docstring_examples_run(module):
    assert doctest.testmod(module).failed == 0
