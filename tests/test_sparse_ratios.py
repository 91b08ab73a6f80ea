"""Sparse ratios over a library of denominators: the library and its guard, the subset
search, and the formulas it brings within reach on noisy tables and on log(y)."""

import numpy as np
import pandas as pd
import pytest
import sympy

from nalu_sr import NaluRegressor
from nalu_sr.search.sparse_ratios import denominators, fixed_denominator_structures
from nalu_sr.structure import make_factor, make_structure, make_term

RNG = np.random.default_rng(11)


def _fit(formula, ranges, noise=0.0, rows=300, **settings):
    names = list(ranges)
    X = np.column_stack([RNG.uniform(lo, hi, rows) for lo, hi in ranges.values()])
    symbols = sympy.symbols(names, positive=True)
    truth = sympy.sympify(formula, locals=dict(zip(names, symbols, strict=True)))
    y = sympy.lambdify(symbols, truth)(*X.T)
    # Noise as the suite adds it: a fraction of the target's RMS, the same on every row.
    y = y + noise * np.sqrt(np.mean(y**2)) * RNG.standard_normal(rows)
    model = NaluRegressor(**settings).fit(pd.DataFrame(X, columns=names), y)
    by_name = {symbol.name: symbol for symbol in symbols}
    found = model.formula_.subs({s: by_name[s.name] for s in model.formula_.free_symbols})
    return model, sympy.simplify(found - truth) == 0


def test_the_library_offers_only_denominators_that_keep_one_sign_away_from_zero():
    x = np.column_stack([RNG.uniform(1, 2, 50), RNG.uniform(3, 4, 50), RNG.uniform(0.5, 3, 50)])
    offered = {tuple(below) for below, _ in denominators(x, [0, 1, 2], 3)}
    a_minus_b = make_factor([(0, 1), (1, -1)])
    assert ((a_minus_b, 1),) in offered  # a - b stays in [-3, -1]
    # c - a crosses zero on these rows, and a sum that does is never a denominator.
    assert not any(make_factor([(2, 1), (0, -1)]) in dict(below) for below in offered)
    # (b - a)*(b + a) is offered as a difference of squares; the constant counts as a feature.
    assert ((a_minus_b, 1), (make_factor([(0, 1), (1, 1)]), 1)) in offered
    assert ((make_factor([(0, 1), (3, 1)]), 1),) in offered  # 1 + a
    values = dict((tuple(below), v) for below, v in denominators(x, [0, 1, 2], 3))
    np.testing.assert_allclose(values[((a_minus_b, 1),)], x[:, 0] - x[:, 1])


def test_a_noisy_stiff_ratio_keeps_its_own_two_terms():
    # f*(c + vo)/(c - vs) at 0.1% noise: a quadratic in the inputs fits within the noise too,
    # but over the denominator c - vs the best two monomials are the formula's own.
    x = RNG.uniform([200, 330, 0, 0], [800, 350, 30, 30], size=(256, 4))
    y = x[:, 0] * (x[:, 1] + x[:, 2]) / (x[:, 1] - x[:, 3])
    y = y * (1 + 1e-3 * RNG.standard_normal(256))
    f, c, vo = (make_factor([(i, 1)]) for i in range(3))
    c_minus_vs = make_factor([(1, 1), (3, -1)])
    truth = make_structure([make_term([f, c], [c_minus_vs]), make_term([f, vo], [c_minus_vs])])
    assert truth in fixed_denominator_structures(x, y, [0, 1, 2, 3], 4)


def test_rows_of_weight_zero_do_not_move_the_subsets():
    x = RNG.uniform(1, 3, size=(200, 3))
    y = x[:, 0] * x[:, 1] / (x[:, 1] + x[:, 2])
    weights = np.ones(200)
    spoiled = y.copy()
    spoiled[:40] = 1e6 * RNG.standard_normal(40)
    weights[:40] = 0.0
    assert (
        fixed_denominator_structures(x, spoiled, [0, 1, 2], 3, weights)[0]
        == fixed_denominator_structures(x[40:], y[40:], [0, 1, 2], 3)[0]
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("formula", "ranges"),
    [
        # Stiff inputs: T1 - T2 is small next to T1 and T2.
        (
            "k*A*(T1 - T2)/L",
            {"k": (0.5, 2), "A": (1, 3), "T1": (350, 400), "T2": (280, 320), "L": (0.1, 0.5)},
        ),
        (
            "(m1*T1 + m2*T2)/(m1 + m2)",
            {"m1": (1, 5), "m2": (1, 5), "T1": (280, 300), "T2": (330, 360)},
        ),
    ],
)
def test_noisy_ratios_are_found_with_their_constants_pinned(formula, ranges):
    model, same = _fit(formula, ranges, noise=1e-3)
    assert model.exact_ and same


@pytest.mark.slow
@pytest.mark.parametrize(
    ("formula", "ranges"),
    [
        # y**2 = m**2*v**2*c**2/((c - v)*(c + v)): a difference of squares below, degree 6 above.
        ("m*v/sqrt(1 - v**2/c**2)", {"m": (1, 5), "v": (1, 2), "c": (3, 10)}),
        # A function of one input times monomials of four: m*g*L - m*g*L*cos(theta).
        ("m*g*L*(1 - cos(theta))", {"m": (1, 5), "g": (1, 5), "L": (1, 5), "theta": (0, 2)}),
        # log(y) = log(p0) - m*g*h/(k*T): the logarithm of an input is a term of its own.
        (
            "p0*exp(-m*g*h/(k*T))",
            {"p0": (1, 5), "m": (1, 2), "g": (1, 2), "h": (1, 2), "k": (1, 2), "T": (1, 2)},
        ),
    ],
)
def test_forms_beyond_the_joint_solve_are_found_exactly(formula, ranges):
    model, same = _fit(formula, ranges)
    assert model.exact_ and same
