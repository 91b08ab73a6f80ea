"""Sums of two listed functions: the pair screen and the search through it."""

import numpy as np
import pandas as pd
import pytest
import sympy
from surfaces import assert_every_surface_matches_predict
from test_arguments import _table

from nalu_sr import NaluRegressor
from nalu_sr.search import find_formula
from nalu_sr.search.compositions import term_expression
from nalu_sr.search.function_pairs import _related, function_pairs

PAIRS = "f(u) + g(v) listed"


def _frame(seed: int, ranges: dict[str, tuple[float, float]], rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {name: rng.uniform(low, high, rows) for name, (low, high) in ranges.items()}
    )


def _written(table, pair) -> set[str]:
    return {
        f"{c.function}({c.rate:g}*{term_expression(c.argument, table.expressions)})" for c in pair
    }


@pytest.mark.parametrize(
    "names, low, high, formula, expected",
    [
        (
            "A B w t",
            [1, 1, 1, 0],
            [3, 3, 2, 3],
            lambda A, B, w, t: A * np.cos(w * t) + B * np.sin(w * t),
            {"cos(1*t*w)", "sin(1*t*w)"},
        ),
        (
            "N1 N2 t t1 t2",
            [1, 1, 0, 0.5, 2],
            [3, 3, 5, 1, 4],
            lambda N1, N2, t, t1, t2: N1 * np.exp(-t / t1) + N2 * np.exp(-t / t2),
            {"exp(-1*t/t1)", "exp(-1*t/t2)"},
        ),
        (
            "A w1 w2 t",
            [1, 1, 2.5, 0],
            [3, 2, 3.5, 3],
            lambda A, w1, w2, t: A * (np.cos(w1 * t) + np.cos(w2 * t)),
            {"cos(1*t*w1)", "cos(1*t*w2)"},
        ),
    ],
    ids=["quadrature", "two-decays", "beats"],
)
def test_the_true_pair_is_offered_first(names, low, high, formula, expected):
    table, X = _table(names, low, high, rows=400)
    pairs = function_pairs(table, table.inputs, formula(*X.T), "y")
    assert _written(table, pairs[0]) == expected


def test_no_pair_is_offered_where_one_function_holds_the_target():
    table, X = _table("A w t", [1, 1, 0], [3, 2, 3], rows=400)
    assert function_pairs(table, table.inputs, X[:, 0] * np.cos(X[:, 1] * X[:, 2]), "y") == []
    # Nor with noise, where the pair's extra columns fit a little more of it.
    y = X[:, 0] * np.cos(X[:, 1] * X[:, 2])
    y = y + 0.01 * np.sqrt(np.mean(y**2)) * np.random.default_rng(4).standard_normal(len(y))
    assert function_pairs(table, table.inputs, y, "y") == []


def test_related_columns_are_the_partner_and_the_same_group_with_one_input_swapped():
    table, _ = _table("t t1 t2", [0, 0.5, 2], [5, 1, 4])
    argument = next(
        a for f, a, r in _all_listed(table) if str(term_expression(a, table.expressions)) == "t/t1"
    )
    related = {
        (f, str(term_expression(a, table.expressions)), r)
        for f, a, r in _related(("sin", argument, 1.0), table.inputs)
    }
    # Swapping t for t1 (or t1 for t) would leave 1: no argument.
    assert related == {("cos", "t/t1", 1.0), ("sin", "t/t2", 1.0), ("sin", "t2/t1", 1.0)}


def _all_listed(table):
    from nalu_sr.search.arguments import listed_columns

    return listed_columns(table, np.arange(table.values.shape[0]))[0]


def test_a_quadrature_sum_is_found_exactly_and_goes_through_every_surface(tmp_path):
    X = _frame(0, {"A": (1, 3), "B": (1, 3), "w": (1, 2), "t": (0, 3)})
    y = X.A * np.cos(X.w * X.t) + X.B * np.sin(X.w * X.t)
    result = find_formula(X, y, random_state=0, architectures=[PAIRS])
    A, B, w, t = sympy.symbols("A B w t", real=True)
    assert result.exact
    assert sympy.simplify(result.formula - (A * sympy.cos(w * t) + B * sympy.sin(w * t))) == 0
    model = NaluRegressor(architectures=[PAIRS], random_state=0).fit(X, y)
    assert_every_surface_matches_predict(model, X, tmp_path)


def test_two_decays_are_found_exactly():
    X = _frame(1, {"N1": (1, 3), "N2": (1, 3), "t": (0, 5), "t1": (0.5, 1), "t2": (2, 4)})
    y = X.N1 * np.exp(-X.t / X.t1) + X.N2 * np.exp(-X.t / X.t2)
    result = find_formula(X, y, random_state=0, architectures=[PAIRS])
    N1, N2, t, t1, t2 = sympy.symbols("N1 N2 t t1 t2", real=True)
    truth = N1 * sympy.exp(-t / t1) + N2 * sympy.exp(-t / t2)
    assert result.exact and sympy.simplify(result.formula - truth) == 0


def test_a_multiplier_beyond_single_inputs_is_read_from_the_sparse_fit():
    # x0*cos(w*t) + v0*sin(w*t)/w: the sine's multiplier v0/w is a product of two inputs,
    # which the rate fits hold once the sparse fit of the pair has named it.
    X = _frame(2, {"x0": (0.1, 1), "v0": (0.1, 2), "w": (1, 3), "t": (0, 3)})
    y = X.x0 * np.cos(X.w * X.t) + X.v0 * np.sin(X.w * X.t) / X.w
    result = find_formula(X, y, random_state=0, architectures=[PAIRS])
    x0, v0, w, t = sympy.symbols("x0 v0 w t", real=True)
    truth = x0 * sympy.cos(w * t) + v0 * sympy.sin(w * t) / w
    assert result.exact and sympy.simplify(result.formula - truth) == 0
