"""Roots of sums of squares as denominators: the library the feature table holds, their
powers in the closed-form ratios, and a formula found with one through every surface."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sympy
from surfaces import assert_every_surface_matches_predict

from nalu_sr import NaluRegressor
from nalu_sr.estimator import DomainWarning
from nalu_sr.search.compositions import term_expression
from nalu_sr.search.rational import denominator_factors, ratio_structures
from nalu_sr.search.space import build_feature_table, root_sums
from nalu_sr.structure import make_factor


def _table(ranges: dict[str, tuple[float, float]], rows: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    lows, highs = zip(*ranges.values(), strict=True)
    X = rng.uniform(lows, highs, size=(rows, len(ranges)))
    symbols = sympy.symbols(list(ranges))
    return X, symbols, build_feature_table(X, symbols, np.arange(rows))


def test_root_sums_list_sums_and_one_signed_differences_of_squares():
    X, symbols, _ = _table({"a": (1, 2), "b": (3, 5), "c": (1, 4)})
    a, b, c = symbols
    found = {
        str(expression): used for used, _, expression in root_sums(X, symbols, np.arange(len(X)))
    }
    assert found == {
        str(sympy.sqrt(a**2 + b**2)): (0, 1),
        str(sympy.sqrt(a**2 + c**2)): (0, 2),
        str(sympy.sqrt(b**2 + c**2)): (1, 2),
        str(sympy.sqrt(a**2 + b**2 + c**2)): (0, 1, 2),
        # b > a on every row; a**2 - c**2 and b**2 - c**2 cross zero.
        str(sympy.sqrt(b**2 - a**2)): (0, 1),
    }


def test_root_columns_hold_their_values_and_expressions():
    X, symbols, table = _table({"v": (0.5, 2), "c": (3, 6)})
    (column,) = [
        k for k, used in table.roots.items() if table.expressions[k].args[0].has(-(symbols[0] ** 2))
    ]
    assert np.allclose(table.values[:, column], np.sqrt(X[:, 1] ** 2 - X[:, 0] ** 2))


def test_a_sum_of_squares_in_a_denominator_is_the_square_of_its_root():
    x0, x1 = sympy.symbols("x0 x1")
    # Q = d**4 + d**2*L**2 = d**2*(d**2 + L**2) over the columns (d, L) = (0, 1).
    exponents = [(4, 0), (2, 2)]
    roots = {9: x0**2 + x1**2}
    factors = denominator_factors(exponents, np.array([1.0, 1.0]), [0, 1], 5, roots)
    assert sorted(factors) == sorted([(make_factor([(0, 1)]), 2), (make_factor([(9, 1)]), 2)])
    assert denominator_factors(exponents, np.array([1.0, 1.0]), [0, 1], 5) is None


@pytest.mark.parametrize(
    "ranges, formula",
    [
        ({"Vmax": (1, 5), "S": (0.5, 5), "K": (0.5, 3)}, "Vmax*S**2/(K**2 + S**2)"),
        ({"q": (1, 5), "z": (0.5, 3), "R": (0.5, 3)}, "q*z/(z**2 + R**2)**(3/2)"),
        ({"I": (1, 5), "L": (0.5, 4), "d": (0.5, 3)}, "I*L/(d*sqrt(d**2 + L**2))"),
        ({"m": (1, 3), "v": (0.5, 2), "c": (3, 6)}, "m*v/sqrt(c**2 - v**2)"),
    ],
)
def test_closed_form_ratios_divide_by_powers_of_roots(ranges, formula):
    X, symbols, table = _table(ranges)
    expr = sympy.sympify(formula, locals=dict(zip(ranges, symbols, strict=True)))
    y = sympy.lambdify(symbols, expr)(*X.T)
    inputs = list(range(len(ranges)))
    found = ratio_structures(table, inputs, y, "y")
    written = [term_expression(s[0], table.expressions) for s in found if len(s) == 1]
    assert any(sympy.simplify(w / expr).is_constant() for w in written), written


def test_estimator_finds_a_field_over_a_root_to_the_power_three_halves(tmp_path):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"q": rng.uniform(1, 5, 400), "z": rng.uniform(0.5, 3, 400), "R": rng.uniform(0.5, 3, 400)}
    )
    y = frame.q * frame.z / (frame.z**2 + frame.R**2) ** 1.5
    model = NaluRegressor(random_state=0).fit(frame, y)
    named = {s.name: s for s in model.formula_.free_symbols}
    assert model.exact_
    assert sympy.simplify(model.formula_ - sympy.sympify("q*z/(z**2 + R**2)**(3/2)", named)) == 0
    assert_every_surface_matches_predict(model, frame, tmp_path)


def test_predict_warns_where_a_difference_of_squares_turns_negative():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {"m": rng.uniform(1, 3, 300), "v": rng.uniform(0.5, 2, 300), "c": rng.uniform(3, 6, 300)}
    )
    y = frame.m * frame.v / np.sqrt(frame.c**2 - frame.v**2)
    model = NaluRegressor(random_state=0).fit(frame, y)
    assert model.exact_
    beyond = pd.DataFrame({"m": [2.0], "v": [5.0], "c": [4.0]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predicted = model.predict(beyond)
    assert np.isnan(predicted[0])
    assert any(issubclass(w.category, DomainWarning) for w in caught)
