"""Each stage of the formula search on small cases, and a few suite entries end to end."""

import numpy as np
import pandas as pd
import pytest
import sympy
import torch
from torch import nn

from nalu_sr.data import EXTRAPOLATION, TRAIN, VALIDATION, outer_band_scores, split_rows
from nalu_sr.datasets import load_suite_entry
from nalu_sr.search import TrainingSettings, find_formula
from nalu_sr.search.candidates import (
    STOP_TERMS,
    Candidate,
    build_candidate,
    candidates_table,
    choose,
    design_matrix,
    exact_coefficients,
    is_pinned,
    leaves_noise,
    mark_exact,
    pareto_scores,
)
from nalu_sr.search.engine import Job, copy_chunks, run_job
from nalu_sr.search.noise import STRUCTURE_R2, residual_is_noise, residual_structure
from nalu_sr.search.runner import PROMOTED, _estimated, _promoted, plan_stages
from nalu_sr.search.space import STIFFNESS, build_feature_table, scale_group_scales, stiffness
from nalu_sr.search.stacks import STACK_KINDS, Space, architectures
from nalu_sr.snapping import SnapInputs, discrete_alternatives
from nalu_sr.structure import make_factor, make_structure, make_term
from nalu_sr.symbolic import feature_symbols, shortest_decimal
from nalu_sr.units import NAU, NMU

FAST = TrainingSettings(restarts=1, scale_steps=3, steps=800)


def stacks_on(table, y=None, rows=None):
    """The architectures offered on every row of ``table`` (or ``rows``), target ``y``."""
    rows = np.arange(len(table.values)) if rows is None else rows
    target = np.ones(len(table.values)) if y is None else y
    return architectures(Space(table, rows, target[rows]))


def snapped(kind, network, columns, constant=None):
    return STACK_KINDS[kind].structures(network, SnapInputs(columns, constant=constant))


def test_outer_band_rows_lie_outside_the_fitted_ranges():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(500, 3))
    _, split = split_rows(X, holdout_fraction=0.2, random_state=0)
    held = X[split.labels == EXTRAPOLATION]
    assert len(held) == 100
    low, high = split.train_ranges[:, 0], split.train_ranges[:, 1]
    beyond = (held < low) | (held > high)
    assert beyond.any(axis=1).all()
    assert (split.labels == VALIDATION).sum() == 80


def test_outer_band_score_is_largest_for_an_extreme_row():
    X = np.column_stack([np.linspace(0, 1, 11), np.full(11, 0.5)])
    assert np.argmax(outer_band_scores(X)) in (0, 10)


def test_outer_band_scores_rank_ties_in_row_order():
    X = np.array([[3.0, 1.0], [1.0, 1.0], [2.0, 1.0], [1.0, 1.0], [5.0, 1.0]])
    # Quantiles of column 0: 3/4, 0, 2/4, 1/4, 1; column 1 (all tied): 0, 1/4, ..., 1.
    expected = np.abs(np.array([[3, 0], [0, 1], [2, 2], [1, 3], [4, 4]]) / 4 - 0.5).max(axis=1)
    np.testing.assert_array_equal(outer_band_scores(X), expected)


def test_explicit_extrapolation_rows_are_appended_and_nothing_is_held_out():
    X = np.arange(40.0).reshape(20, 2)
    X_all, split = split_rows(X, X_extrapolation=np.ones((5, 2)), validation_fraction=0.0)
    assert X_all.shape == (25, 2)
    assert split.explicit
    assert (split.labels[:20] == TRAIN).all() and (split.labels[20:] == EXTRAPOLATION).all()


def test_decided_weights_snap_to_a_single_alternative():
    alternatives = discrete_alternatives(torch.tensor([[0.97, -0.02, -0.99]]), (-1, 0, 1))
    assert [a.tolist() for a in alternatives] == [[[1.0, 0.0, -1.0]]]


def test_undecided_weights_also_try_their_second_nearest_value():
    alternatives = discrete_alternatives(torch.tensor([[0.6, 0.0]]), (0, 1))
    assert [a.tolist() for a in alternatives] == [[[1.0, 0.0]], [[0.0, 0.0]]]


def test_snapped_nau_nmu_network_is_a_product_of_sums():
    network = nn.Sequential(NAU(3, 2), NMU(2, 1))
    with torch.no_grad():
        network[0].weight.copy_(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, -1.0]]))
        network[1].weight.copy_(torch.tensor([[1.0, 1.0]]))
    (structure,) = snapped("nau-nmu", network, columns=[0, 1, 2])
    expected = make_structure(
        [make_term([make_factor([(0, 1), (1, 1)]), make_factor([(0, 1), (2, -1)])])]
    )
    assert structure == expected


def test_a_snapped_sum_is_also_offered_as_one_term_per_feature():
    network = NAU(3, 1)
    with torch.no_grad():
        network.weight.copy_(torch.tensor([[1.0, -1.0, 1.0]]))
    structures = snapped("nau", network, columns=[0, 1, 2], constant=2)
    single = lambda *i: make_term([make_factor([(j, 1) for j in i])])  # noqa: E731
    assert structures == [
        make_structure([make_term([make_factor([(0, 1), (1, -1), (2, 1)])])]),
        make_structure([make_term([make_factor([(0, 1), (1, -1)])])]),
        make_structure([single(0), single(1)]),
    ]
    wide = NAU(12, 1)
    with torch.no_grad():
        wide.weight.fill_(1.0)
    assert len(snapped("nau", wide, columns=list(range(12)))) == 1


@pytest.mark.slow
def test_a_linear_formula_with_unequal_coefficients_is_found_by_a_single_nau():
    rng = np.random.default_rng(3)
    X = rng.uniform(0.5, 4, size=(300, 3))
    y = X[:, 0] - 2 * X[:, 1] + 3
    result = find_formula(X, y, feature_names=["a", "b", "c"], settings=FAST, random_state=0)
    a, b = sympy.symbols("a b", real=True)
    assert result.exact, result.message
    assert sympy.simplify(result.formula - (a - 2 * b + 3)) == 0
    assert result.candidates.loc[result.chosen, "architecture"] == "NAU"
    assert "NAU->NMU[2] on y" not in result.jobs  # found in the first group


def test_reciprocals_are_offered_only_for_inputs_bounded_away_from_zero():
    X = np.column_stack([np.linspace(1, 2, 50), np.linspace(-1, 1, 50)])
    table = build_feature_table(X, feature_symbols(["a", "b"]), np.arange(50))
    assert table.reciprocal_of == {0: 2}
    assert table.expressions[2] == 1 / sympy.Symbol("a", real=True)
    assert [a.name for a in stacks_on(table)][:4] == ["NAU", "NMU", "NPU", "NAU[1/x]"]


def test_a_candidate_off_a_split_where_the_target_is_all_zero_has_infinite_error_there():
    # The rule of the scoring backends, which rank the structures before they become
    # candidates: a relative error over a zero RMS is 0 for an exact fit and +inf otherwise.
    x = np.linspace(1, 2, 30)
    labels = np.repeat(np.array([TRAIN, VALIDATION, EXTRAPOLATION], dtype=np.int8), 10)
    y = np.where(labels == VALIDATION, 0.0, 2 * x)
    table = build_feature_table(x[:, None], feature_symbols(["x"]), np.arange(20))
    line = make_structure([make_term([make_factor([(0, 1)])])])
    candidate = build_candidate(
        line,
        np.array([0.0, 2.0]),
        table=table,
        y=y,
        labels=labels,
        transform="y",
        architecture="NAU",
        tolerance=1e-6,
    )
    assert candidate.expr == 2 * sympy.Symbol("x", real=True)
    assert candidate.relative_rmse[TRAIN] == 0 and candidate.relative_rmse[EXTRAPOLATION] == 0
    assert np.isposinf(candidate.relative_rmse[VALIDATION])
    assert np.isfinite(candidate.rmse[VALIDATION])


def test_fitted_constants_become_exact_fractions():
    C = np.linspace(-40, 100, 60)
    y = 9 * C / 5 + 32
    structure = make_structure([make_term([make_factor([(0, 1)])])])
    design = design_matrix(structure, C[:, None])
    fitted, *_ = np.linalg.lstsq(design, y, rcond=None)
    constants = exact_coefficients(design, fitted, y, np.ones(60, bool), "y", 1e-6)
    assert constants.values == [sympy.Integer(32), sympy.Rational(9, 5)]
    assert constants.estimated == ()


def test_a_physical_constant_stays_a_float():
    m = np.linspace(1, 2, 40)
    y = 6.674e-11 * m
    structure = make_structure([make_term([make_factor([(0, 1)])])])
    design = design_matrix(structure, m[:, None])
    exact = exact_coefficients(
        design, np.array([0.0, 6.674e-11]), y, np.ones(40, bool), "y", 1e-6
    ).values
    assert exact[0] == 0
    assert isinstance(exact[1], sympy.Float) and float(exact[1]) == pytest.approx(6.674e-11)


def test_a_noisy_constant_keeps_only_the_digits_the_data_determines():
    rng = np.random.default_rng(0)
    m = rng.uniform(1, 2, 2000)
    y = 6.674e-11 * m * (1 + 1e-4 * rng.standard_normal(2000))
    structure = make_structure([make_term([make_factor([(0, 1)])])])
    design = design_matrix(structure, m[:, None])
    fitted = np.linalg.lstsq(design, y, rcond=None)[0]
    assert fitted[1] != 6.674e-11
    constants = exact_coefficients(design, fitted, y, np.ones(2000, bool), "y", 1e-6)
    assert constants.values[0] == 0 and constants.values[1] == sympy.Float(6.674e-11)
    assert constants.estimated == (1,)  # its digits are right, but noise leaves the rest open


def test_a_noisy_unit_scale_becomes_the_integer_one():
    rng = np.random.default_rng(1)
    x = rng.uniform(1, 2, 200)
    y = x * (1 + 0.01 * rng.standard_normal(200))
    structure = make_structure([make_term([make_factor([(0, 1)])])])
    design = design_matrix(structure, x[:, None])
    fitted = np.linalg.lstsq(design, y, rcond=None)[0]
    constants = exact_coefficients(design, fitted, y, np.ones(200, bool), "y", 1e-6)
    assert constants.values == [0, 1]
    assert all(isinstance(c, sympy.Integer) for c in constants.values)
    assert constants.estimated == ()


def test_a_noisy_constant_near_a_fraction_with_a_large_denominator_is_an_estimate():
    # 8.314 at 1% noise is known to about +-0.01: 83/10 lies in that interval, but so would a
    # fraction with denominator <= 10 for most values there, so the data do not pin it.
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 2, 300)
    y = 8.314 * x * (1 + 0.01 * rng.standard_normal(300))
    structure = make_structure([make_term([make_factor([(0, 1)])])])
    design = design_matrix(structure, x[:, None])
    fitted = np.linalg.lstsq(design, y, rcond=None)[0]
    constants = exact_coefficients(design, fitted, y, np.ones(300, bool), "y", 1e-6)
    assert constants.values[0] == 0
    assert abs(float(constants.values[1]) - 8.314) < 0.03
    assert constants.estimated == (1,)


@pytest.mark.parametrize(
    ("option", "margin", "pinned"),
    [
        (sympy.Integer(0), 10.0, True),  # dropping a term is a structural choice
        # The densities of forms as simple (see exact_form_density): 32: 1.16 per unit (the
        # integers, 6*pi..9*pi); 9/5: 11.7; 83/10: 37.7; 25/3: 6.1; pi/2: 13.4; 1/(4*pi): 37.7;
        # 1/sqrt(2*pi): 40.1.
        (sympy.Integer(32), 0.02, True),  # 2 * 0.02 * 1.16 = 0.046
        (sympy.Integer(32), 0.3, False),  # 0.7: most values this uncertain are near one
        (sympy.Rational(9, 5), 0.002, True),  # 0.047
        (sympy.Rational(9, 5), 0.005, False),  # 0.12
        (sympy.Rational(83, 10), 0.014, False),  # 1.0
        (sympy.Rational(25, 3), 0.019, False),  # 0.2
        (sympy.pi / 2, 5e-4, True),  # 0.013
        (sympy.pi / 2, 0.0015, False),  # 0.040, but 11/7 lies within the margin too
        (sympy.pi / 2, 0.03, False),  # 0.80: as many fractions of 1/pi and 1/e lie as near
        (1 / sympy.sqrt(2 * sympy.pi), 5e-4, True),  # 0.040
        (1 / sympy.sqrt(2 * sympy.pi), 2e-3, False),  # 0.16: a noisy 0.40 is not named
        (1 / (4 * sympy.pi), 5e-4, True),  # 0.038
        (1 / (4 * sympy.pi), 2e-3, False),  # 0.15: a noisy 0.08 is not named 1/(4*pi)
        (sympy.Float(8.314), 1e-7, True),  # noise-free: determined to 1e-6
        (sympy.Float(8.314), 1e-3, False),
    ],
)
def test_which_constants_the_data_pin(option, margin, pinned):
    assert is_pinned(option, float(option), margin, 1e-6) is pinned


@pytest.mark.slow
def test_a_measured_constant_near_a_simple_fraction_is_not_claimed_to_be_it():
    # R = 8.314 under 1% noise is fitted as 8.33 +- 0.02 here, an interval that holds 25/3 and
    # would hold a third for 15% of the values so uncertain: an estimate, not an exact form.
    frame = load_suite_entry("ideal_gas_pressure")
    X, y = frame.iloc[:, :-1], frame.iloc[:, -1].to_numpy()
    noisy = y + 0.01 * np.sqrt(np.mean(y**2)) * np.random.default_rng(0).standard_normal(len(y))
    result = find_formula(X, noisy, architectures=["NMU"], random_state=0)
    assert result.holds and not result.exact
    assert sympy.Rational(25, 3) not in result.formula.atoms(sympy.Number)


def test_shortest_decimal_within_a_margin():
    assert shortest_decimal(6.67413e-11, 2e-15) == 6.674e-11
    assert shortest_decimal(0.1 + 0.2, 1e-12) == 0.3
    assert shortest_decimal(1.2345, 0.0) == 1.2345
    assert shortest_decimal(98.7, 5.0) == 100.0


def _candidate(expr, complexity, val, extra, rmse=None):
    relative = np.array([val, val, extra])
    return Candidate(
        expr=expr,
        structure=(),
        transform="y",
        architecture="NAU",
        coefficients=[],
        complexity=complexity,
        rmse=relative if rmse is None else rmse,
        relative_rmse=relative,
        max_relative_error=relative,
    )


def test_on_noisy_data_only_a_short_formula_leaving_noise_ends_the_search():
    # Six monomials of x fit within the noise; so does the one-term formula, whose zeroed
    # terms do not count. Only a formula of at most STOP_TERMS terms ends the search.
    rng = np.random.default_rng(5)
    x = sympy.Symbol("x")
    probe = rng.uniform(1, 2, size=(200, 1))
    noise = 0.01 * rng.standard_normal(200)
    long = _candidate(x, 20, 0.01, 0.0095, rmse=np.array([0.01, 0.01, 0.0095]))
    long.coefficients = [sympy.Integer(0), *([sympy.Float(0.5)] * (STOP_TERMS + 1))]
    long.probe_residual, long.probe_prediction = noise, probe[:, 0]
    assert long.terms == STOP_TERMS + 1
    assert not leaves_noise([long], 1e-6, probe)
    short = _candidate(x, 3, 0.0101, 0.0096, rmse=np.array([0.0101, 0.0101, 0.0096]))
    short.coefficients = [sympy.Integer(0), sympy.Integer(1), *([sympy.Integer(0)] * 4)]
    short.probe_residual, short.probe_prediction = noise, probe[:, 0]
    assert short.terms == 1
    assert leaves_noise([long, short], 1e-6, probe)


def test_selection_prefers_the_simplest_exact_candidate():
    x = sympy.Symbol("x")
    candidates = [
        _candidate(x**2, 3, 1e-3, 1e-2),
        _candidate(x**2 + x, 5, 1e-12, 1e-12),
        _candidate(x**2 + x + x**3, 9, 1e-13, 1e-13),
    ]
    mark_exact(candidates, 1e-6)
    assert [c.exact for c in candidates] == [False, True, True]
    assert choose(candidates_table(candidates)) == 1


def test_without_an_exact_candidate_the_best_trade_off_is_chosen():
    x = sympy.Symbol("x")
    candidates = [
        _candidate(x, 1, 0.5, 0.5),
        _candidate(x**2, 3, 0.01, 0.3),
        _candidate(x**2 + x**3, 7, 0.009, 0.4),
    ]
    mark_exact(candidates, 1e-6)
    table = candidates_table(candidates)
    assert not table["exact"].any()
    assert choose(table) == 1


def test_noisy_data_counts_a_formula_exact_only_if_its_error_does_not_grow_outside():
    x = sympy.Symbol("x")
    holds = _candidate(x, 1, 0.01, 0.008, rmse=np.array([0.1, 0.1, 0.12]))
    grows = _candidate(x**2, 3, 0.0105, 0.05, rmse=np.array([0.1, 0.1, 0.6]))
    mark_exact([holds, grows], 1e-6)
    assert holds.exact and not grows.exact


def test_a_formula_that_holds_with_an_estimated_constant_is_chosen_but_not_exact():
    x = sympy.Symbol("x")
    linear = _candidate(8.31 * x, 3, 0.01, 0.008, rmse=np.array([0.1, 0.1, 0.12]))
    linear.estimated = (sympy.Float(8.31),)
    curved = _candidate(x**2, 3, 0.2, 0.3)
    mark_exact([curved, linear], 1e-6)
    assert linear.holds and not linear.exact
    assert not curved.holds
    table = candidates_table([curved, linear])
    assert list(table["holds"]) == [False, True] and not table["exact"].any()
    assert choose(table) == 1


def test_the_message_names_estimated_constants_only_as_the_formula_shows_them():
    x = sympy.Symbol("x")
    named = _candidate(sympy.Float(8.3) * x, 3, 0.01, 0.01)
    named.estimated = (sympy.Float(8.3),)
    assert _estimated(named) == "its constant 8.3"
    merged = _candidate(sympy.Integer(100), 1, 0.01, 0.01)  # 50 + 50*1, simplified
    merged.estimated = (sympy.Integer(50), sympy.Integer(50))
    assert _estimated(merged) == "its constants"


def test_noisy_physical_constant_holds_without_being_claimed_exact():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"T": rng.uniform(1, 3, 400), "V": rng.uniform(1, 2, 400)})
    y = 8.314 * frame["T"] / frame["V"]
    y = y * (1 + 0.01 * rng.standard_normal(400))
    result = find_formula(frame, y, architectures=["NMU"], settings=FAST, random_state=0)
    T, V = result.symbols
    assert result.holds and not result.exact
    coefficient = sympy.Poly(result.formula * V, T).coeffs()[0]
    assert abs(float(coefficient) - 8.314) < 0.05
    assert "only approximately" in result.message and "not claimed exact" in result.message


@pytest.mark.slow
def test_a_linear_fit_of_a_product_of_wide_sums_is_not_taken_for_noise():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, size=(1000, 100))
    y = X[:, 20:45].sum(axis=1) * X[:, 33:58].sum(axis=1)
    design = np.column_stack([np.ones(len(X)), X])
    fitted = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    residual = y - fitted
    assert residual_structure(X, residual) <= STRUCTURE_R2  # no linear model of X sees it
    assert not residual_is_noise(X, residual, fitted)  # the square of the fit does
    noise = rng.normal(0, 1, len(X))
    assert residual_is_noise(X, noise, y + noise)


def test_pareto_score_rewards_a_large_drop_in_loss_per_node():
    scores = pareto_scores(np.array([1, 3, 5]), np.array([1.0, 1e-3, 9e-4]))
    assert scores[0] == 0 and scores[1] > scores[2] > 0


def test_formula_is_written_in_the_users_column_names():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"lambda": rng.uniform(1, 2, 120), "mass (kg)": rng.uniform(1, 3, 120)})
    y = frame["lambda"] * frame["mass (kg)"]
    result = find_formula(frame, y, architectures=["NMU"], settings=FAST, random_state=0)
    assert result.exact
    assert {s.name for s in result.formula.free_symbols} == {"lambda", "mass (kg)"}


@pytest.mark.parametrize(
    ("entry", "target", "truth"),
    [
        ("ohms_law", "V", "I*R"),
        ("celsius_to_fahrenheit", "F", "9*C/5 + 32"),
        ("parallel_resistors", "R", "R1*R2/(R1 + R2)"),
    ],
)
@pytest.mark.slow
def test_suite_entries_are_recovered_exactly(entry, target, truth):
    frame = load_suite_entry(entry)
    X = frame.drop(columns=[target])
    result = find_formula(X, frame[target], random_state=0, max_time=60)
    symbols = {s.name: s for s in result.symbols}
    expected = sympy.sympify(truth, locals=symbols)
    assert result.exact, result.message
    assert sympy.simplify(result.formula - expected) == 0


@pytest.mark.slow
def test_no_exact_formula_is_claimed_for_a_nested_exponential():
    # exp(-exp(-x**2)): log(y) is an exponential of a square, which no stack writes
    # (exp(-exp(x)), the suite's gumbel_survival, is now within reach on log(y)).
    x = np.random.default_rng(0).uniform(0.2, 2.0, 300)
    frame = pd.DataFrame({"x": x, "S": np.exp(-np.exp(-(x**2)))})
    result = find_formula(frame[["x"]], frame["S"], settings=FAST, random_state=0, max_time=20)
    assert not result.exact
    assert "No exact formula" in result.message
    values = sympy.lambdify(result.symbols, result.formula, "numpy")(frame["x"].to_numpy())
    assert np.isfinite(np.broadcast_to(values, len(frame))).all(), result.formula


def test_a_job_past_its_deadline_stops_training_and_yields_nothing():
    X = np.random.default_rng(0).uniform(1, 2, size=(64, 3))
    table = build_feature_table(X, feature_symbols(["a", "b", "c"]), np.arange(64))
    nmu = next(a for a in stacks_on(table) if a.name == "NMU")
    y = X[:, 0] * X[:, 1]
    settings = TrainingSettings(restarts=1, scale_steps=1, steps=400)
    job = Job(stage=1, architecture=nmu, transform="y", seed=0)
    late = run_job(job, table, y, settings, deadline=0.0)
    assert late.timed_out and late.structures == []
    on_time = run_job(job, table, y, settings)
    assert not on_time.timed_out and on_time.structures


def test_chunks_of_copies_cover_every_copy_once_whatever_the_architecture():
    X = np.random.default_rng(0).uniform(1, 2, size=(64, 10))
    table = build_feature_table(X, feature_symbols([f"x{i}" for i in range(10)]), np.arange(64))
    settings = TrainingSettings()
    offered = {a.name: a for a in stacks_on(table)}
    chunks = {name: copy_chunks(a, settings) for name, a in offered.items()}
    for name, slices in chunks.items():
        copies = list(range(settings.copies(offered[name])))
        assert [i for chunk in slices for i in copies[chunk]] == copies, name
        # Each chunk promotes its share of a job's formulas, at least one.
        assert _promoted(slice(0, len(copies)), len(copies)) == PROMOTED
        shares = [_promoted(chunk, len(copies)) for chunk in slices]
        assert min(shares) >= 1 and PROMOTED <= sum(shares) < PROMOTED + len(slices)
    # Products over 40 columns are split; sums, whose steps cost little, are not.
    assert len(chunks["NMU->NAU[2]"]) > 1 and len(chunks["NAU"]) == 1
    # The grid's copies, then the affine ones (scale and offset free), whose scale is moot.
    nau = offered["NAU"]
    assert settings.copies(nau) == len(settings.scales()) + settings.affine_copies
    assert settings.affine(nau).sum() == settings.affine_copies and settings.affine(nau)[-1]


def _wide_product_of_sums(d: int = 24, rows: int = 700):
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, size=(rows, d))
    y = X[:, :12].sum(axis=1) * X[:, 6:18].sum(axis=1)
    table = build_feature_table(X, feature_symbols([f"x{i}" for i in range(d)]), np.arange(rows))
    return table, y


def test_many_inputs_with_a_common_mean_get_a_whitened_product_of_sums():
    table, _ = _wide_product_of_sums()
    inputs = table.values[:, table.inputs]
    assert stiffness(inputs) >= STIFFNESS  # about 23 for 24 inputs in [1, 2]
    assert stiffness(inputs - inputs.mean(axis=0)) < 2  # centred: no common direction
    offered = stacks_on(table)
    names = [a.name for a in offered]
    assert "NAU->NMU[2]" in names
    whitened = offered[names.index("NAU->NMU[2] whitened")]
    assert whitened.whitened and whitened.kind is STACK_KINDS["nau-nmu-whitened"]
    assert whitened.kind.layers is STACK_KINDS["nau-nmu"].layers
    assert table.constant not in whitened.columns
    X = np.random.default_rng(1).uniform(1, 2, size=(50, 3))
    few = build_feature_table(X, feature_symbols("abc"), np.arange(50))
    assert not any(a.whitened for a in stacks_on(few))  # three inputs: about 3, not stiff


def test_a_whitened_variant_runs_alone_just_before_its_width_and_only_on_y():
    table, _ = _wide_product_of_sums()
    stages = plan_stages(stacks_on(table), ["y", "1/y"])
    names = [[f"{a.name} on {t}" for a, t in stage] for stage in stages]
    whitened = [i for i, stage in enumerate(names) if "NAU->NMU[2] whitened on y" in stage]
    assert len(whitened) == 1 and names[whitened[0]] == ["NAU->NMU[2] whitened on y"]
    assert "NAU->NMU[2] on y" in names[whitened[0] + 1]
    assert not any("whitened on 1/y" in job for stage in names for job in stage)


def _temperature_difference_times_k(rows: int = 400):
    rng = np.random.default_rng(0)
    T1, T2, k = rng.uniform(290, 310, rows), rng.uniform(290, 310, rows), rng.uniform(1, 2, rows)
    table = build_feature_table(
        np.column_stack([T1, T2, k]), feature_symbols(["T1", "T2", "k"]), np.arange(rows)
    )
    return table, k * (T1 - T2)


def test_columns_of_different_sizes_get_a_variant_that_scales_each_group_on_its_own():
    table, y = _temperature_difference_times_k()
    rows = np.arange(400)
    # T1, T2 near 300 share a scale; k, near 1.5, and the constant column another.
    columns = [*table.inputs, table.constant]
    scales = scale_group_scales(table.values[np.ix_(rows, columns)])
    assert scales[0] == scales[1] and scales[2] == scales[3]
    np.testing.assert_allclose(scales, [300, 300, 1.24, 1.24], rtol=0.01)
    offered = stacks_on(table, y, rows)
    names = [a.name for a in offered]
    variant = offered[names.index("NAU->NMU[2] by scale")]
    # Products of two group scales (1.24**2, 1.24 * 300, 300**2) that y, of RMS about 17,
    # allows: a product of two sums of columns near 1 lies between 1e-4 and 100 of it.
    low, high = scales[2], scales[0]
    np.testing.assert_allclose(variant.centres, [low * low, low * high, high * high])
    larger = stacks_on(table, 1e3 * y, rows)  # RMS about 17,000
    (larger_variant,) = (a for a in larger if a.name == "NAU->NMU[2] by scale")
    np.testing.assert_allclose(larger_variant.centres, [low * high, high * high])
    settings = TrainingSettings()
    assert settings.copies(variant) == 3 * len(settings.scales()) + settings.affine_copies
    stages = plan_stages(offered, ["y", "1/y"])
    jobs = [[f"{a.name} on {t}" for a, t in stage] for stage in stages]
    at = next(i for i, stage in enumerate(jobs) if "NAU->NMU[2] by scale on y" in stage)
    # After every stack of its width, before the next width.
    assert "NAU->NMU[2] on y" in sum(jobs[:at], [])
    assert "NAU->NMU[3] on y" in sum(jobs[at + 1 :], [])
    assert all("[2]" in job for job in sum(jobs[at : at + 2], []))
    assert jobs[at][0] == "NAU->NMU[2] by scale on y"
    assert not any("by scale on 1/y" in job for stage in jobs for job in stage)
    # Columns of one size: nothing to add.
    X = np.random.default_rng(1).uniform(1, 5, size=(50, 3))
    same = build_feature_table(X, feature_symbols("abc"), np.arange(50))
    assert not any(a.scale_groups for a in stacks_on(same, X.prod(axis=1)))


@pytest.mark.slow
def test_a_product_with_a_difference_of_large_offset_inputs_is_found_by_scale_groups():
    # With one scale for all columns, (T1 - T2)/100 is about 0.1 next to T/100 near 3, and
    # k/100 near 0.015: no NAU->NMU copy finds it. Scaled by group, it is a plain product.
    rng = np.random.default_rng(0)
    T1, T2, k = rng.uniform(290, 310, 500), rng.uniform(290, 310, 500), rng.uniform(1, 2, 500)
    X = np.column_stack([T1, T2, k])
    result = find_formula(
        X, 2.5 * k * (T1 - T2), feature_names=["T1", "T2", "k"],
        architectures=["NAU->NMU[2] by scale"], random_state=0,
    )  # fmt: skip
    T1_, T2_, k_ = result.symbols
    assert result.exact
    assert sympy.simplify(result.formula - sympy.Rational(5, 2) * k_ * (T1_ - T2_)) == 0


@pytest.mark.slow
def test_a_whitened_job_separates_two_wide_overlapping_sums():
    table, y = _wide_product_of_sums()
    architecture = next(a for a in stacks_on(table, y) if a.whitened)
    job = run_job(Job(1, architecture, "y", seed=0), table, y, TrainingSettings())
    truth = make_structure(
        [
            make_term(
                [
                    make_factor([(i, 1) for i in range(12)]),
                    make_factor([(i, 1) for i in range(6, 18)]),
                ]
            )
        ]
    )
    assert truth in job.structures


@pytest.mark.slow
def test_an_offset_and_a_sign_around_a_quotient_are_found_by_the_affine_copies():
    # 2 - a/b decreases in a: a copy matching the target as it is cannot be a product, one
    # matching it up to scale and offset trains towards a/b.
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, size=(500, 2))
    result = find_formula(X, 2 - X[:, 0] / X[:, 1], feature_names=["a", "b"], random_state=0)
    a, b = result.symbols
    assert result.exact, result.message
    assert sympy.simplify(result.formula - (2 - a / b)) == 0
    assert result.candidates.loc[result.chosen, "architecture"] == "NMU"


@pytest.mark.slow
def test_a_constant_written_with_pi_comes_out_exact():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, size=(400, 2))
    y = X[:, 0] / (4 * np.pi * X[:, 1] ** 2)
    result = find_formula(X, y, feature_names=["q", "r"], architectures=["NMU"], random_state=0)
    q, r = result.symbols
    assert result.exact, result.message
    assert result.formula == q / (4 * sympy.pi * r**2)


def test_on_noise_free_data_an_approximation_with_estimated_constants_does_not_end_the_search():
    # Ratios on log(y) with log(theta) fit L*(1 - cos(theta)) to about 1e-7 with a fitted
    # exponent 1.99999; it holds within the tolerance, but only exact formulas end a search
    # on data some candidate fits that closely, and a later stage finds the formula itself.
    frame = load_suite_entry("pendulum_height")
    result = find_formula(frame[["L", "theta"]], frame["h"])
    L, theta = sympy.symbols("L theta", positive=True)
    assert result.exact
    formula = result.formula.subs(
        {s: {"L": L, "theta": theta}[s.name] for s in result.formula.free_symbols}
    )
    assert sympy.simplify(formula - L * (1 - sympy.cos(theta))) == 0


def test_a_ripple_along_one_input_is_structure_not_noise():
    rng = np.random.default_rng(0)
    inputs = rng.uniform(0, 1, size=(400, 2))
    ripple = 1e-7 * np.cos(12 * inputs[:, 1])
    assert residual_structure(inputs, ripple) > STRUCTURE_R2
    assert residual_is_noise(inputs, 1e-7 * rng.standard_normal(400))


def test_a_constant_two_terms_share_is_named_once_in_the_verdict():
    from types import SimpleNamespace

    from nalu_sr.search.runner import _estimated

    n1, n2 = sympy.symbols("n1 n2", positive=True)
    shared = sympy.Float(13.6)
    candidate = SimpleNamespace(expr=shared / n1**2 - shared / n2**2, estimated=(shared, -shared))
    assert _estimated(candidate) == "its constant 13.6"
