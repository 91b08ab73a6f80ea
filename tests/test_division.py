"""Division by sums and integer powers: factor powers in structures, the NDU and the
polynomial ratio with their fraction losses, the guard on denominators, the power unit in log
space, and ratios found, exported and predicted end to end."""

import warnings

import numpy as np
import pytest
import sympy
import torch

from nalu_sr import NaluRegressor
from nalu_sr.estimator import PoleWarning
from nalu_sr.scoring import pack, score, unpack
from nalu_sr.search import find_formula
from nalu_sr.search.candidates import design_matrix
from nalu_sr.search.runner import Scoring, prepare_data
from nalu_sr.search.space import divides_safely
from nalu_sr.search.stacks import Branches
from nalu_sr.snapping import (
    SnapInputs,
    polynomial_ratio_terms,
    ratio_of_sums_terms,
    scale_free_rows,
)
from nalu_sr.structure import denominators, make_factor, make_structure, make_term, raise_term
from nalu_sr.symbolic import denominators as expr_denominators
from nalu_sr.symbolic import structure_to_expr
from nalu_sr.training import centred_mse, fraction_affine_mse, fraction_mse
from nalu_sr.units import NAU, NDU, NPU

A, B, C = sympy.symbols("a b c")
A_PLUS_B = make_factor([(0, 1), (1, 1)])
A_MINUS_B = make_factor([(0, 1), (1, -1)])
JUST_A = make_factor([(0, 1)])


def test_terms_merge_repeats_into_powers_and_cancel_what_divides_what_it_multiplies():
    assert make_term([JUST_A, JUST_A]) == ((JUST_A, 2),)
    assert make_term([A_MINUS_B], [A_PLUS_B]) == ((A_MINUS_B, 1), (A_PLUS_B, -1))
    # b - a is a - b with its sign taken out
    assert make_term([make_factor([(0, -1), (1, 1)])], [A_PLUS_B]) == make_term(
        [A_MINUS_B], [A_PLUS_B]
    )
    assert make_term([A_PLUS_B, JUST_A], [A_PLUS_B]) == ((JUST_A, 1),)
    assert make_term([], [make_factor([])]) is None  # a division by an empty sum
    assert raise_term([(JUST_A, 3), (JUST_A, -1)]) == ((JUST_A, 2),)
    structure = make_structure([make_term([JUST_A], [A_PLUS_B]), make_term([JUST_A])])
    assert denominators(structure) == {A_PLUS_B}


def test_pack_keeps_powers_and_rejects_a_zero_exponent():
    structures = [
        make_structure([make_term([JUST_A, JUST_A], [A_PLUS_B]), make_term([A_MINUS_B])]),
        make_structure([raise_term([(A_PLUS_B, -3)])]),
    ]
    packed = pack(structures)
    assert sorted(packed.power.tolist()) == [-3, -1, 1, 2]
    assert unpack(packed) == structures
    with pytest.raises(ValueError, match="non-zero"):
        pack([(((JUST_A, 0),),)])


@pytest.mark.parametrize("backend", ["numpy", "numba", "torch"])
def test_every_backend_divides_by_sums_and_raises_powers(backend):
    rng = np.random.default_rng(0)
    a, b, c = rng.uniform(1, 3, size=(3, 300))
    features = np.column_stack([a, b, c, np.ones(300)])
    y = 2.0 + 3.0 * (a - b) / (a + b) + 0.5 * a**2 * c / (b + c) ** 2
    split = rng.integers(0, 3, size=300).astype(np.int8)
    b_plus_c = make_factor([(1, 1), (2, 1)])
    structure = make_structure(
        [
            make_term([A_MINUS_B], [A_PLUS_B]),
            raise_term([(JUST_A, 2), (make_factor([(2, 1)]), 1), (b_plus_c, -2)]),
        ]
    )
    result = score(pack([structure]), features, y, split, backend=backend)
    assert np.all(result.relative_rmse[0] < 1e-10)
    expected = design_matrix(structure, features)
    fitted = expected @ result.coefficients[0, : len(structure) + 1]
    np.testing.assert_allclose(fitted, y, rtol=1e-10)


def test_a_structure_with_a_denominator_becomes_its_formula():
    structure = make_structure([make_term([A_MINUS_B], [A_PLUS_B])])
    expr = structure_to_expr(structure, [1, 2], [A, B])
    assert sympy.simplify(expr - (1 + 2 * (A - B) / (A + B))) == 0
    assert expr_denominators(expr) == [A + B]


def test_the_ndu_multiplies_divides_and_cancels_as_its_gates_say():
    unit = NDU(3, 1)
    with torch.no_grad():
        unit.weight.copy_(torch.tensor([[1.0, 0.0, 1.0]]))
        unit.denominator.copy_(torch.tensor([[0.0, 1.0, 1.0]]))
    x = torch.tensor([[6.0, 4.0, 5.0]], dtype=torch.float32)
    assert unit(x).item() == pytest.approx(1.5)
    assert unit.to_sympy([A, B, C]) == [A / B]
    assert unit.effective_weight().shape == (1, 6)
    fraction = NDU(3, 1, fraction=True)
    assert fraction(torch.rand(5, 3)).shape == (5, 2)
    # stacked copies run at once, as the training ensemble needs
    stacked = NDU(3, 1)
    stacked.weight = torch.nn.Parameter(torch.rand(4, 1, 3))
    stacked.denominator = torch.nn.Parameter(torch.rand(4, 1, 3))
    assert stacked(torch.rand(7, 3) + 1).shape == (4, 7, 1)


def test_a_snapped_nau_ndu_is_a_ratio_of_its_sums():
    first = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    gates = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # multiply sum 0, divide by sum 1
    terms = ratio_of_sums_terms([first, gates], SnapInputs([0, 1]))
    assert terms == [make_term([A_MINUS_B], [A_PLUS_B])]


def test_fraction_losses_vanish_at_the_ratio_and_only_there():
    x = torch.rand(200, 2, dtype=torch.float64) + 1
    ratio = (x[:, 0] - x[:, 1]) / (x[:, 0] + x[:, 1])
    parts = torch.stack([x[:, 0] - x[:, 1], x[:, 0] + x[:, 1]], dim=-1)
    exact = torch.stack([parts, 3 * parts, parts * torch.tensor([1.0, 0.0]) + torch.tensor([0, 1])])
    target = ratio[None, :, None].expand(3, 200, 1)
    plain = fraction_mse(exact, target)
    # numerator and denominator scaled together: the same fraction, the same loss
    assert plain[0] < 1e-28 and plain[1] < 1e-28 and plain[2] > 1e-2
    affine = fraction_affine_mse(exact, 4.0 - 2.5 * target)
    assert affine[0] < 1e-20 and affine[1] < 1e-20 and affine[2] > 1e-3
    with pytest.raises(ValueError, match="numerator then denominator"):
        fraction_mse(torch.ones(1, 5, 1), torch.ones(5))
    # a denominator of zero everywhere is no fraction, not a perfect fit
    nothing = torch.zeros(1, 200, 2, dtype=torch.float64)
    assert fraction_mse(nothing, target[:1]).item() == 1.0
    assert fraction_affine_mse(nothing, target[:1]).item() == 1.0


def test_a_sum_is_a_denominator_only_where_it_keeps_one_sign_away_from_zero():
    assert divides_safely(np.array([1.0, 2.0, 3.0]))
    assert not divides_safely(np.array([-1.0, 2.0]))
    assert not divides_safely(np.array([1e-5, 2.0]))
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, size=(200, 2))
    data = prepare_data(X, X[:, 0], None, None, 0.2, 0.2, 0)
    scoring = Scoring(data, 1e-6, "numpy")
    assert scoring.divides_safely(A_PLUS_B)
    assert not scoring.divides_safely(A_MINUS_B)  # a - b crosses zero on these rows
    # a single column only needs one sign: x**-2 over three decades has no pole
    wide = np.column_stack([10 ** rng.uniform(-2, 1, 200), X[:, 1]])
    scoring = Scoring(prepare_data(wide, wide[:, 1], None, None, 0.2, 0.2, 0), 1e-6, "numpy")
    assert scoring.divides_safely(JUST_A)
    assert not scoring.divides_safely(make_factor([(0, 1), (1, -1)]))


def test_the_search_finds_a_ratio_of_differences_exactly():
    rng = np.random.default_rng(2)
    X = rng.uniform(1, 4, size=(300, 2))
    y = (X[:, 0] - X[:, 1]) / (X[:, 0] + X[:, 1])
    result = find_formula(X, y, ["a", "b"], architectures=["NAU->NDU[2]"], max_time=60)
    assert result.exact
    a, b = result.symbols
    assert sympy.simplify(result.formula - (a - b) / (a + b)) == 0


def _ratio_inputs(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack([rng.uniform(1, 4, n), rng.uniform(1, 2, n), rng.uniform(3, 5, n)])


@pytest.fixture(scope="module")
def ratio_model():
    X = _ratio_inputs(np.random.default_rng(3), 300)
    y = X[:, 0] * X[:, 2] / (X[:, 2] - X[:, 1])
    model = NaluRegressor(architectures=["NAU->NDU[3]"], max_time=60, random_state=0)
    return model.fit(X, y)


def test_a_ratio_model_exports_and_round_trips(ratio_model, tmp_path):
    assert ratio_model.exact_
    X = _ratio_inputs(np.random.default_rng(4), 20)
    expected = X[:, 0] * X[:, 2] / (X[:, 2] - X[:, 1])
    np.testing.assert_allclose(ratio_model.predict(X), expected, rtol=1e-9)
    assert "\\frac" in ratio_model.latex()
    namespace: dict = {}
    exec(ratio_model.to_python(), namespace)  # noqa: S102 (the test's own generated code)
    function = next(v for k, v in namespace.items() if callable(v) and not k.startswith("_"))
    np.testing.assert_allclose(function(*X.T), expected, rtol=1e-9)
    path = tmp_path / "ratio.json"
    ratio_model.save(path)
    loaded = NaluRegressor.load(path)
    np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-12)


def test_predict_warns_where_a_denominator_crosses_zero(ratio_model):
    inside = _ratio_inputs(np.random.default_rng(5), 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoleWarning)
        ratio_model.predict(inside)
    across = inside.copy()
    across[:3, 1] = across[:3, 2]  # c - b = 0 on three rows
    across[3, 1] = across[3, 2] + 1.0  # and negative on one
    with pytest.warns(PoleWarning, match="other sign than on the fitted rows on 4 of the 10"):
        ratio_model.predict(across)
    across[:, 1] = across[:, 2]  # zero on every row
    with pytest.warns(PoleWarning, match="on 10 of the 10 rows"):
        ratio_model.predict(across)


def test_predict_warns_on_a_batch_wholly_beyond_the_pole_seen_from_the_fitted_rows(
    ratio_model, tmp_path
):
    beyond = _ratio_inputs(np.random.default_rng(6), 10)
    beyond[:, 1] = beyond[:, 2] + 1.0  # c - b < 0 on every row, > 0 on the fitted ones
    with pytest.warns(PoleWarning, match="other sign than on the fitted rows on 10 of the 10"):
        ratio_model.predict(beyond)
    # A model loaded from a file keeps no fitted rows: it can only see a batch that straddles.
    ratio_model.save(tmp_path / "ratio.json")
    loaded = NaluRegressor.load(tmp_path / "ratio.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PoleWarning)
        loaded.predict(beyond)
    straddling = beyond.copy()
    straddling[:4, 1] = straddling[:4, 2] - 1.0
    with pytest.warns(PoleWarning, match="zero or changes sign on 4 of the 10 rows"):
        loaded.predict(straddling)


def test_scale_free_rows_round_a_small_sum_to_its_shape():
    weight = torch.tensor([[0.11, 0.0, 0.1], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(scale_free_rows(weight), [[1.0, 0.0, 10 / 11], [0, 0, 0]])


def test_a_snapped_polynomial_ratio_is_each_monomial_over_the_sum():
    # columns a, b, c and the constant (3): P = a*b + c*1, Q = a + 1
    monomials = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    numerator = torch.tensor([[1.0, 1.0]])
    denominator = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    inputs = SnapInputs([0, 1, 2, 3], constant=3)
    terms = polynomial_ratio_terms([monomials, numerator, denominator], inputs)
    a_plus_1 = make_factor([(0, 1), (3, 1)])
    assert terms == [
        make_term([JUST_A, make_factor([(1, 1)])], [a_plus_1]),
        make_term([make_factor([(2, 1)])], [a_plus_1]),
    ]
    assert polynomial_ratio_terms([monomials, numerator, torch.zeros(1, 4)], inputs) == []


def test_branches_run_stacked_copies_side_by_side():
    network = Branches([NAU(3, 2), NAU(2, 1)], [NAU(3, 1)])
    assert network(torch.rand(5, 3)).shape == (5, 2)


def test_the_search_finds_a_sum_of_monomials_over_a_sum():
    rng = np.random.default_rng(6)
    X = rng.uniform(1, 4, size=(300, 3))
    y = (X[:, 0] * X[:, 1] + X[:, 2]) / (X[:, 0] + X[:, 1])
    result = find_formula(X, y, architectures=["(NMU->NAU)/NAU[2]"], max_time=60)
    assert result.exact
    a, b, c = result.symbols
    assert sympy.simplify(result.formula - (a * b + c) / (a + b)) == 0


def test_the_power_unit_is_a_monomial_with_integer_exponents():
    unit = NPU(3, 1)
    with torch.no_grad():
        unit.weight.copy_(torch.tensor([[3.0, 1.0, -2.0]]))
    x = torch.tensor([[2.0, 5.0, 4.0]], dtype=torch.float32)
    assert unit(x).item() == pytest.approx(2.5)
    assert float(unit.regularizer().detach()) == 0.0
    a, b, c = sympy.symbols("a b c", positive=True)
    assert unit.to_sympy([a, b, c]) == [a**3 * b / c**2]
    logs = NPU(3, 1, log_space=True)
    with torch.no_grad():
        logs.weight.copy_(torch.tensor([[3.0, 1.0, -2.0]]))
    assert logs(torch.log(x)).item() == pytest.approx(np.log(2.5))
    with torch.no_grad():
        unit.weight.copy_(torch.tensor([[2.6, 0.0, 0.0]]))
    assert float(unit.regularizer().detach()) == pytest.approx(0.4 / 3)
    with pytest.raises(ValueError, match="max_exponent"):
        NPU(2, 1, max_exponent=0)


def test_the_offset_free_loss_ignores_the_constant_factor_only():
    target = torch.linspace(0, 1, 50, dtype=torch.float64)[None, :, None]
    prediction = torch.cat([target + 3.0, 2 * target])
    loss = centred_mse(prediction, target.expand(2, 50, 1))
    assert loss[0] < 1e-28 and loss[1] > 0.5


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_search_finds_high_powers_in_log_space(sign):
    rng = np.random.default_rng(7)
    X = rng.uniform(1, 4, size=(300, 3))
    y = sign * 2.5 * X[:, 0] ** 4 / (X[:, 1] ** 2 * X[:, 2] ** 3)
    result = find_formula(X, y, architectures=["NPU"], max_time=60)
    assert result.exact
    a, b, c = result.symbols
    assert sympy.simplify(result.formula - sign * sympy.Rational(5, 2) * a**4 / (b**2 * c**3)) == 0


def test_a_ratio_over_columns_of_different_sizes_gets_a_variant_scaled_by_group():
    rng = np.random.default_rng(8)
    X = np.column_stack([rng.uniform(1, 12, 400), rng.uniform(100, 1000, (400, 2))])
    y = X[:, 0] * X[:, 2] / (X[:, 1] + X[:, 2])
    result = find_formula(X, y, ["V", "R1", "R2"], architectures=["NAU->NDU[3] by scale"])
    assert result.exact
    v, r1, r2 = result.symbols
    assert sympy.simplify(result.formula - v * r2 / (r1 + r2)) == 0


@pytest.mark.parametrize(
    "module",
    [
        "nalu_sr.symbolic",
        "nalu_sr.units.ndu",
        "nalu_sr.units.npu",
        "nalu_sr.scoring.powers",
        "nalu_sr.search.space",
        "nalu_sr.snapping",
        "nalu_sr.search.sparse_ratios",
        "nalu_sr.structure",
    ],
)
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
