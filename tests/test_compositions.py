"""Functions of hidden products: the function unit, the fit of the rate inside the function,
the stacks that compose a function with a product, their honesty, and every surface their
formulas go through."""

import numpy as np
import pandas as pd
import pytest
import sympy
import torch
from surfaces import assert_every_surface_matches_predict

from nalu_sr import NaluRegressor
from nalu_sr.search import find_formula
from nalu_sr.search.compositions import fit_rate
from nalu_sr.units import NFU


def test_the_function_unit_applies_its_function_to_the_scaled_input_plus_an_offset():
    unit = NFU(2, "sin")
    with torch.no_grad():
        unit.rate.copy_(torch.tensor([[2.0], [0.5]]))
        unit.offset.copy_(torch.tensor([[1.0], [0.0]]))
    x = torch.tensor([[0.3, 1.2], [-1.0, 4.0]])
    expected = torch.stack([1 + torch.sin(2 * x[:, 0]), torch.sin(0.5 * x[:, 1])], dim=1)
    assert torch.allclose(unit(x), expected)
    u, v = sympy.symbols("u v")
    assert unit.to_sympy([u, v]) == [1.0 + sympy.sin(2.0 * u), sympy.sin(0.5 * v)]


def test_the_function_unit_runs_stacked_copies_as_one():
    unit = NFU(1, "exp")
    rates = torch.tensor([-1.0, 0.5, 2.0]).reshape(3, 1, 1)
    offsets = torch.zeros(3, 1, 1)
    unit.rate, unit.offset = torch.nn.Parameter(rates), torch.nn.Parameter(offsets)
    x = torch.linspace(0, 1, 5).reshape(5, 1)
    assert torch.allclose(unit(x), torch.exp(rates * x.reshape(1, 5, 1)))


def test_the_function_unit_starts_decays_and_growths_but_only_positive_frequencies():
    torch.manual_seed(0)
    exp_rates = [NFU(1, "exp").rate.item() for _ in range(40)]
    sin_rates = [NFU(1, "sin").rate.item() for _ in range(40)]
    assert min(exp_rates) < 0 < max(exp_rates)
    assert min(sin_rates) > 0


def test_a_function_outside_the_library_is_a_clear_error():
    with pytest.raises(ValueError, match="choose from sin, cos, exp, log"):
        NFU(1, "tan")


def test_a_product_of_sums_under_a_function_snaps_to_its_argument_with_reciprocals_as_powers():
    from nalu_sr.search.stacks import _FunctionOfProductOfSums
    from nalu_sr.snapping import SnapInputs, compositions
    from nalu_sr.structure import make_factor, raise_term

    # Columns 0..3 are g, E2, E1, T; column 4 is 1/T. Trained to g * exp(rate*(E2 - E1)/T).
    network = torch.nn.Sequential(*_FunctionOfProductOfSums("exp")(5, 2))
    outer, sums, argument = (m for m in network.modules() if hasattr(m, "snap_targets"))
    with torch.no_grad():
        outer.weight.copy_(torch.tensor([[0.98, 0.01, 0.0, 0.02, 0.0]]))
        sums.weight.copy_(torch.tensor([[0.0, 0.97, -0.99, 0.0, 0.03], [0.0, 0.0, 0.0, 0.0, 1.0]]))
        argument.weight.copy_(torch.tensor([[0.99, 0.97]]))
    inputs = SnapInputs(columns=[0, 1, 2, 3, 4], reciprocal_of={3: 4})
    found = compositions(network, inputs)
    difference = make_factor([(1, 1), (2, -1)])
    expected = raise_term([(difference, 1), (make_factor([(3, 1)]), -1)])
    assert found[0].function == "exp" and found[0].argument == expected
    assert found[0].outer == raise_term([(make_factor([(0, 1)]), 1)])
    assert np.isnan(found[0].rate)  # the search's grid finds it in raw units


def test_the_logarithm_s_rate_is_fixed_at_one_since_the_constants_absorb_it():
    rng = np.random.default_rng(0)
    u, v = rng.uniform(0.5, 4, 300), rng.uniform(1, 3, 300)
    y = 2.5 * v * np.log(7 * u)
    fitted = fit_rate("log", u, v[:, None], y, start=[0.4], tolerance=1e-6)
    assert fitted.expression == 1 and not fitted.estimated
    assert fitted.error < 1e-9
    # A logarithm is offered only over columns positive on the fitted rows.
    assert fit_rate("log", -u, v[:, None], y, tolerance=1e-6) is None


@pytest.mark.parametrize(
    "function, rate, expected",
    [("exp", -1.0, -1), ("sin", 2 * np.pi, 2 * sympy.pi), ("cos", 0.5, sympy.Rational(1, 2))],
)
def test_the_rate_is_fitted_from_any_start_and_made_exact_on_noise_free_data(
    function, rate, expected
):
    rng = np.random.default_rng(0)
    u, v = rng.uniform(0.2, 2, 300), rng.uniform(1, 3, 300)
    y = 3 * v * getattr(np, function)(rate * u) + 2
    fitted = fit_rate(function, u, v[:, None], y, start=[0.4], tolerance=1e-6)
    assert fitted.expression == expected and not fitted.estimated


def test_a_noisy_rate_is_an_estimate_unless_the_data_pin_it():
    rng = np.random.default_rng(1)
    u = rng.uniform(0.2, 2, 300)
    y = np.sin(0.7391 * u)
    y = y + 0.03 * np.std(y) * rng.standard_normal(300)
    fitted = fit_rate("sin", u, np.empty((300, 0)), y, tolerance=1e-6)
    assert fitted.estimated
    assert abs(fitted.value - 0.7391) < fitted.margin


@pytest.mark.parametrize(
    "formula, names, ranges, stack, expected",
    [
        (lambda a, b: np.sin(a * b), "a b", (0.5, 2), "NMU*sin(NMU)", "sin(a*b)"),
        (
            lambda v, t, r, c: v * (1 - np.exp(-t / (r * c))),
            "V t R C",
            (0.5, 3),
            "NMU*exp(NMU)",
            "V - V*exp(-t/(C*R))",
        ),
        (
            lambda a, f, t: a * np.sin(2 * np.pi * f * t),
            "A f t",
            (0.2, 1),
            "NMU*sin(NMU)",
            "A*sin(2*pi*f*t)",
        ),
        (
            lambda v, m0, m1: v * np.log(m0 / m1),
            "v m0 m1",
            (1, 5),
            "NMU*log(NMU)",
            "v*log(m0/m1)",
        ),
        (
            lambda n, t, v2, v1: 8.314 * n * t * np.log(v2 / v1),
            "n T V2 V1",
            (1, 5),
            "NMU*log(NMU)",
            "8.314*n*T*log(V2/V1)",
        ),
        (
            lambda g, e2, e1, t: g * np.exp(-(e2 - e1) / t),
            "g E2 E1 T",
            (1, 3),
            "NMU*exp(NAU->NMU[2])",
            "g*exp((E1 - E2)/T)",
        ),
    ],
    ids=[
        "sine-of-product",
        "capacitor-charge",
        "oscillation",
        "rocket",
        "isothermal-work",
        "function-of-a-product-of-sums",
    ],
)
def test_a_function_of_a_product_is_found_exactly(formula, names, ranges, stack, expected):
    names = names.split()
    X = np.random.default_rng(0).uniform(*ranges, (300, len(names)))
    result = find_formula(X, formula(*X.T), feature_names=names, architectures=[stack])
    assert result.exact, result.formula
    symbols = dict(zip(names, result.symbols, strict=True))
    assert sympy.simplify(result.formula - sympy.sympify(expected, locals=symbols)) == 0


def test_a_function_of_a_product_in_a_denominator_comes_from_the_reciprocal_target():
    from nalu_sr.datasets import load_suite_entry

    frame = load_suite_entry("logistic_growth")
    result = find_formula(frame[["K", "r", "t"]], frame["N"], architectures=["NMU*exp(NMU)"])
    k, r, t = result.symbols
    assert result.exact and sympy.simplify(result.formula - k / (1 + sympy.exp(-r * t))) == 0
    assert result.candidates.loc[result.chosen, "transform"] == "1/y"


def test_a_function_of_a_function_is_not_claimed_exact():
    X = np.random.default_rng(0).uniform(0.5, 2, (300, 2))
    y = np.exp(np.sin(X[:, 0] * X[:, 1]))
    result = find_formula(
        X, y, feature_names=["a", "b"], architectures=["NMU*sin(NMU)", "NMU*exp(NMU)"]
    )
    assert not result.exact
    assert not result.candidates["exact"].any()


def test_a_rate_the_noise_leaves_uncertain_keeps_the_formula_from_being_exact():
    rng = np.random.default_rng(2)
    X = rng.uniform(0.5, 2, (400, 2))
    y = np.sin(0.7391 * X[:, 0] * X[:, 1])
    y = y + 0.03 * np.std(y) * rng.standard_normal(400)
    result = find_formula(X, y, feature_names=["a", "b"], architectures=["NMU*sin(NMU)"])
    assert not result.exact
    assert not result.candidates["exact"].any()


@pytest.fixture(scope="module")
def charge_model():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.uniform(0.5, 3, 300) for name in ["V", "t", "R", "C"]})
    y = frame.V * (1 - np.exp(-frame.t / (frame.R * frame.C)))
    return NaluRegressor(architectures=["NMU*exp(NMU)"]).fit(frame, y), frame


def test_a_function_of_a_product_goes_through_every_surface(charge_model, tmp_path):
    model, frame = charge_model
    assert model.exact_
    assert r"e^{- \frac{t}{C R}}" in model.latex()
    assert_every_surface_matches_predict(model, frame, tmp_path)
    chosen = model.candidates_.loc[model.chosen_]
    assert chosen["architecture"] == "NMU*exp(NMU)" and chosen["transform"] == "y"


def test_simplification_keeps_a_function_of_a_product_whole():
    from nalu_sr.symbolic import simplify_formula

    t0, ta, k, t = sympy.symbols("T0 Ta k t", positive=True)
    decay = sympy.exp(-sympy.Rational(838, 3) * k * t / ta)
    expr = t0 * decay + ta - ta * decay + sympy.Float(0.5) * sympy.exp(sympy.Float(0.1) * k)
    simplified = simplify_formula(expr)
    assert decay in simplified.atoms(sympy.exp)
    point = {t0: 330.0, ta: 290.0, k: 0.3, t: 2.0}
    assert float(simplified.subs(point)) == pytest.approx(float(expr.subs(point)), rel=1e-12)


def test_the_misfit_threshold_follows_the_noise_share_of_the_spread():
    from nalu_sr.search.candidates import MISFIT
    from nalu_sr.search.compositions import NOISE_MARGIN, misfit_for

    rng = np.random.default_rng(0)
    target = 300 + 17 * rng.standard_normal(1000)  # a large size, a small spread
    # No noise: the fixed threshold.
    assert misfit_for(target, np.zeros(1000)) == MISFIT
    # 1% of the size is about a fifth of the spread: a fit that leaves that is no misfit.
    share = misfit_for(target, np.full(1000, 3.0)) / NOISE_MARGIN
    assert 0.16 < share < 0.19
    # Weighted rows count by their weights (a product's factor fitted to y/m, weights m**2).
    weights = rng.uniform(0.5, 2, 1000)
    assert misfit_for(target, np.full(1000, 3.0), weights) > MISFIT
