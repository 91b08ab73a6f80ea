"""Products of a monomial, a listed function and an exponential, screened on log|y|."""

import numpy as np
import pandas as pd
import pytest
import sympy
from surfaces import assert_every_surface_matches_predict
from test_arguments import _table

from nalu_sr import NaluRegressor
from nalu_sr.search import find_formula
from nalu_sr.search.compositions import term_expression
from nalu_sr.search.function_products import function_products

PRODUCTS = "m*f(u)*exp(v) listed"


def _written(table, product) -> str:
    """The product as text, its monomial and rates rounded to three digits."""
    monomial = sympy.Mul(*(table.expressions[i] ** sympy.Rational(e) for i, e in product.exponents))
    argument = term_expression(product.argument, table.expressions)
    text = f"{monomial}*{product.function}({product.rate:.3g}*{argument})**{product.power}"
    if product.exp_argument is not None:
        exponent = term_expression(product.exp_argument, table.expressions)
        text += f"*exp({product.exp_rate:.3g}*{exponent})"
    return text


@pytest.mark.parametrize(
    "names, low, high, formula, noise, expected",
    [
        (
            "A b t w",
            [1, 0.1, 0, 1],
            [3, 0.5, 5, 2],
            lambda A, b, t, w: A * np.exp(-b * t) * np.cos(w * t),
            0.0,
            "A*cos(1*t*w)**1*exp(-1*b*t)",
        ),
        (
            "n R T V2 V1",
            [1, 8, 250, 2, 0.5],
            [3, 9, 350, 5, 1.5],
            lambda n, R, T, V2, V1: n * R * T * np.log(V2 / V1),
            0.0,
            "R*T*n*log(1*V2/V1)**1",
        ),
        (
            "v th g",
            [5, 0.1, 9],
            [20, 1.4, 10],
            lambda v, th, g: v**2 * np.sin(th) ** 2 / (2 * g),
            0.01,
            "v**2/g*sin(1*th)**2",
        ),
        (
            "q0 R t L w",
            [1, 0.1, 0, 1, 1],
            [3, 1, 5, 2, 2],
            lambda q0, R, t, L, w: q0 * np.exp(-R * t / (2 * L)) * np.cos(w * t),
            0.01,
            "q0*cos(1*t*w)**1*exp(-0.5*R*t/L)",
        ),
    ],
    ids=["damped-oscillation", "isothermal-work", "launch-height-noisy", "rlc-charge-noisy"],
)
def test_the_true_product_ranks_first(names, low, high, formula, noise, expected):
    table, X = _table(names, low, high, rows=400)
    y = formula(*X.T)
    y = y + noise * np.sqrt(np.mean(y**2)) * np.random.default_rng(3).standard_normal(len(y))
    best = next(p for p in function_products(table, table.inputs, y, "y") if p.function)
    if noise:
        # The exponential's rate is a least-squares estimate; the search refits it on y.
        text = _written(table, best._replace(exp_rate=round(best.exp_rate * 2) / 2))
    else:
        text = _written(table, best)
    assert text == expected


def test_a_monomial_in_half_powers_is_offered_alone():
    table, X = _table("g h c", 1, 3, rows=400)
    y = X[:, 0] * X[:, 1] ** 2 / X[:, 2]
    assert [p.exponents for p in function_products(table, table.inputs, y, "y")] == [
        ((0, 1.0), (1, 2.0), (2, -1.0))
    ]
    # With 1% noise the powers of sqrt(2*g*h) come out near 1/2, and snap to it.
    y = np.sqrt(2 * X[:, 0] * X[:, 1])
    y = y + 0.01 * np.sqrt(np.mean(y**2)) * np.random.default_rng(2).standard_normal(len(y))
    first = function_products(table, table.inputs, y, "y")[0]
    assert first.function is None and first.exponents == ((0, 0.5), (1, 0.5))
    # Other transforms of the target have stages of their own.
    y = X[:, 0] * np.sin(X[:, 1])
    assert function_products(table, table.inputs, y, "1/y") == []


def test_the_monomial_is_kept_when_no_function_column_can_be_logged(monkeypatch):
    # A wiggle the monomial cannot hold, and a library with no column to log: the monomial
    # in half powers found first is still offered.
    import nalu_sr.search.function_products as products

    table, X = _table("g h c", 1, 3, rows=400)
    y = X[:, 0] * X[:, 1] * (1 + 0.05 * np.cos(5 * X[:, 2]))
    monkeypatch.setattr(products, "FUNCTIONS", ())
    found = function_products(table, table.inputs, y, "y")
    assert [p.exponents for p in found] == [((0, 1.0), (1, 1.0))]
    assert found[0].function is None


def test_a_damped_oscillation_is_found_exactly_with_both_rates_named():
    names = ["A", "b", "t", "w"]
    X = np.random.default_rng(1).uniform([0.5, 0.1, 0, 1], [2, 0.5, 3, 3], (400, 4))
    y = X[:, 0] * np.exp(-X[:, 1] * X[:, 2]) * np.cos(X[:, 3] * X[:, 2])
    result = find_formula(X, y, feature_names=names, architectures=[PRODUCTS])
    assert result.exact, result.formula
    symbols = dict(zip(names, result.symbols, strict=True))
    truth = sympy.sympify("A*exp(-b*t)*cos(w*t)", locals=symbols)
    assert sympy.simplify(result.formula - truth) == 0


def test_a_rate_the_data_do_not_pin_is_not_claimed_exact():
    # exp(-0.4137*b*t): no simple number, and the noise leaves the fitted rate uncertain.
    rng = np.random.default_rng(2)
    X = rng.uniform([0.5, 0.1, 0, 1], [2, 0.5, 3, 3], (400, 4))
    y = X[:, 0] * np.exp(-0.4137 * X[:, 1] * X[:, 2]) * np.cos(X[:, 3] * X[:, 2])
    y = y + 0.02 * np.std(y) * rng.standard_normal(400)
    result = find_formula(X, y, feature_names=["A", "b", "t", "w"], architectures=[PRODUCTS])
    assert not result.exact
    assert not result.candidates["exact"].any()


def test_a_half_power_in_the_monomial_goes_through_every_surface(tmp_path):
    # sqrt(g*L)*sin(theta): a half power of two inputs, a square-root column of each.
    rng = np.random.default_rng(6)
    ranges = [("g", 9, 10), ("L", 0.5, 2), ("theta", 0.1, 1.4)]
    frame = pd.DataFrame({name: rng.uniform(low, high, 300) for name, low, high in ranges})
    y = np.sqrt(frame.g * frame.L) * np.sin(frame.theta)
    model = NaluRegressor(architectures=[PRODUCTS]).fit(frame, y)
    assert model.exact_, model.formula_
    symbols = {s.name: s for s in model.formula_.free_symbols}
    truth = sympy.sympify("sqrt(g)*sqrt(L)*sin(theta)", locals=symbols)
    assert sympy.simplify(model.formula_ - truth) == 0
    assert_every_surface_matches_predict(model, frame, tmp_path)


def test_a_noisy_product_is_judged_against_the_noise_in_its_own_units():
    # At 1% noise the sine's fit to y/(v**2/g) leaves more than 5% of that quotient's
    # spread; judged against the 5% alone, the product never became a formula, and a
    # polynomial in theta was chosen.
    rng = np.random.default_rng(3)
    X = rng.uniform([5, 0.2, 5], [20, 1.2, 10], (500, 3))
    y = X[:, 0] ** 2 * np.sin(2 * X[:, 1]) / X[:, 2]
    y = y + 0.01 * np.sqrt(np.mean(y**2)) * rng.standard_normal(500)
    names = ["v", "theta", "g"]
    result = find_formula(X, y, feature_names=names, architectures=["f(u) listed", PRODUCTS])
    v, theta, g = result.symbols
    assert sympy.simplify(result.formula - v**2 * sympy.sin(2 * theta) / g) == 0, result.formula
