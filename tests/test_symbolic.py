import keyword
import math

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from nalu_sr.structure import make_factor, make_structure, make_term
from nalu_sr.symbolic import (
    complexity,
    exact_form_density,
    feature_symbols,
    python_identifiers,
    rationalize,
    rationalize_candidates,
    simplify_formula,
    structure_to_expr,
)

AWKWARD_NAMES = ["lambda", "E", "I", "S", "N", "pi", "mass (kg)", "α"]
X, Y, Z, W = sympy.symbols("x y z w", real=True)


def test_feature_symbols_keep_user_names_as_plain_real_symbols():
    symbols = feature_symbols(AWKWARD_NAMES)
    assert [s.name for s in symbols] == AWKWARD_NAMES
    assert [str(s) for s in symbols] == AWKWARD_NAMES
    assert len(set(symbols)) == len(AWKWARD_NAMES)
    for symbol in symbols:
        assert type(symbol) is sympy.Symbol
        assert symbol.is_real
        assert symbol.free_symbols == {symbol}
    by_name = dict(zip(AWKWARD_NAMES, symbols))
    assert by_name["E"] != sympy.E
    assert by_name["I"] != sympy.I
    assert by_name["pi"] != sympy.pi
    assert (by_name["pi"] * 2).subs(by_name["pi"], 1) == 2


@pytest.mark.parametrize("names", [["a", "a"], ["a", ""], ["  "], ["x", None]])
def test_feature_symbols_reject_duplicate_or_empty_names(names):
    with pytest.raises(ValueError, match="feature name"):
        feature_symbols(names)


def test_python_identifiers_rename_only_what_python_cannot_use():
    mapping = python_identifiers(["lambda", "mass (kg)", "2x", "x", "np", "sum", "α", "None"])
    assert mapping == {
        "lambda": "lambda_",
        "mass (kg)": "mass_kg",
        "2x": "x_2x",
        "x": "x",
        "np": "np_",
        "sum": "sum_",
        "α": "α",
        "None": "None_",
    }


def test_python_identifiers_number_clashes_without_stealing_valid_names():
    mapping = python_identifiers(["a b", "a-b", "a_b", "a_b_2"])
    assert mapping["a_b"] == "a_b"
    assert mapping["a_b_2"] == "a_b_2"
    assert len(set(mapping.values())) == 4


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8).filter(str.strip), unique=True, max_size=8))
def test_python_identifiers_are_valid_unique_and_deterministic(names):
    mapping = python_identifiers(names)
    identifiers = list(mapping.values())
    assert list(mapping) == names
    assert len(set(identifiers)) == len(identifiers)
    for identifier in identifiers:
        assert identifier.isidentifier()
        assert not keyword.iskeyword(identifier)
        assert identifier not in {"math", "np", "numpy", "abs", "print"}
    assert python_identifiers(names) == mapping
    compile(f"def f({', '.join(identifiers)}): pass", "<test>", "exec")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, sympy.Rational(1, 2)),
        (1.8, sympy.Rational(9, 5)),
        (32.0, sympy.Integer(32)),
        (-3.0, sympy.Integer(-3)),
        (1 / 3, sympy.Rational(1, 3)),
        (-0.16666666666666666, sympy.Rational(-1, 6)),
        (2 * math.pi, 2 * sympy.pi),
        (math.pi / 4, sympy.pi / 4),
        (4 / 3 * math.pi, sympy.Rational(4, 3) * sympy.pi),
        (1 / (4 * math.pi), 1 / (4 * sympy.pi)),
        (1 / (2 * math.pi), 1 / (2 * sympy.pi)),
        (3 / (4 * math.pi), 3 / (4 * sympy.pi)),
        (1 / math.pi, 1 / sympy.pi),
        (math.pi**2 / 6, sympy.pi**2 / 6),
        (1 / (4 * math.pi) ** 2, 1 / (16 * sympy.pi**2)),
        (math.sqrt(2), sympy.sqrt(2)),
        (1 / math.sqrt(2), sympy.sqrt(2) / 2),
        (1 / math.sqrt(2 * math.pi), 1 / sympy.sqrt(2 * sympy.pi)),
        (math.sqrt(2 * math.pi), sympy.sqrt(2 * sympy.pi)),
        (2 / math.sqrt(math.pi), 2 / sympy.sqrt(sympy.pi)),
        (math.sqrt(math.pi) / 2, sympy.sqrt(sympy.pi) / 2),
        (math.sqrt(2 / math.pi), sympy.sqrt(2 / sympy.pi)),
        (math.e, sympy.E),
        (1 / math.e, sympy.exp(-1)),
        (0.0, sympy.Integer(0)),
    ],
)
def test_rationalize_finds_exact_forms(value, expected):
    assert rationalize(value) == expected


@pytest.mark.parametrize(
    "value", [6.674e-11, 1 / 3 + 1e-6, 0.5000001, 2 * math.pi * (1 + 1e-7), 9.81, 1e20]
)
def test_rationalize_keeps_values_that_are_not_simple_as_exact_floats(value):
    result = rationalize(value)
    assert isinstance(result, sympy.Float)
    assert float(result) == value


def test_rationalize_respects_denominator_limit_and_pi_switch():
    assert isinstance(rationalize(1 / 13), sympy.Float)
    assert rationalize(1 / 13, max_denominator=13) == sympy.Rational(1, 13)
    assert isinstance(rationalize(math.pi, allow_pi=False), sympy.Float)


def test_a_fraction_of_a_power_of_pi_is_proposed_only_next_to_small_numerators():
    # 13/pi is outside the forms (numerators next to pi stop at 12); 1/(4*pi) is proposed
    # first for its float, before the plain fractions that come as near.
    assert isinstance(rationalize(13 / math.pi), sympy.Float)
    assert rationalize_candidates(0.0795775, rtol=1e-3)[0] == 1 / (4 * sympy.pi)


@pytest.mark.parametrize(
    ("exact", "density"),
    [
        (sympy.Integer(1), 1.0),  # 1 alone in [0.5, 1.5]: every other form takes more digits
        (sympy.Integer(1000), 1.0),  # the integers 500..1500
        (sympy.Rational(1, 2), 6.0),  # 1/2, 1/pi, 2/pi in [0.25, 0.75]
        (1 / (4 * sympy.pi), 37.7),  # 1/(4*pi), 1/(3*pi), 1/pi**2 in [0.04, 0.12]
        # pi/2 in [0.79, 2.36]: 1, 2, pi/3, pi/2, 2*pi/3, 2/pi..7/pi, sqrt(2), sqrt(3), sqrt(pi),
        # 2/sqrt(pi)..4/sqrt(pi), 3/e, 4/e, and the multiples of log(2), 1/log(2), 1/log(10).
        (sympy.pi / 2, 17.825),
        (1 / sympy.sqrt(2 * sympy.pi), 47.63),
    ],
)
def test_exact_form_density_counts_forms_as_simple_over_every_constant(exact, density):
    assert exact_form_density(exact) == pytest.approx(density, rel=1e-3)


def test_exact_form_density_refuses_what_is_not_an_exact_form():
    with pytest.raises(ValueError, match="not a rational number"):
        exact_form_density(sympy.sqrt(5))


def test_rationalize_gives_zero_only_relative_to_a_scale():
    assert isinstance(rationalize(1e-12), sympy.Float)
    assert rationalize(1e-12, scale=1.0) == 0
    assert rationalize(1e-12, scale=1e-12) != 0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_rationalize_rejects_non_finite_values(value):
    with pytest.raises(ValueError, match="finite"):
        rationalize(value)


def test_rationalize_candidates_propose_simple_forms_before_the_float():
    candidates = rationalize_candidates(1.8000012)
    assert candidates[0] == sympy.Rational(9, 5)
    assert isinstance(candidates[-1], sympy.Float)
    assert float(candidates[-1]) == 1.8000012

    two_pi = rationalize_candidates(2 * math.pi)
    assert two_pi[0] == 2 * sympy.pi
    assert sympy.Rational(44, 7) in two_pi

    assert rationalize_candidates(6.674e-11) == [sympy.Float(6.674e-11)]


@settings(max_examples=80, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda v: abs(v) > 1e-6))
def test_rationalize_candidates_stay_within_tolerance(value):
    for candidate in rationalize_candidates(value, rtol=1e-3):
        assert abs(float(candidate) - value) <= 1e-3 * abs(value)
    assert abs(float(rationalize(value)) - value) <= 1e-9 * abs(value)


@pytest.mark.parametrize(
    ("expr", "nodes"),
    [
        (X, 1),
        (sympy.Rational(9, 5), 1),
        (X * Y, 3),
        (sympy.Mul(2, W + Y, evaluate=False), 5),
        (X - Y, 5),
        (X / Y, 5),
        (sympy.sin(X) ** 2, 4),
    ],
)
def test_complexity_counts_every_node(expr, nodes):
    assert complexity(expr) == nodes


def test_simplify_formula_prefers_the_shortest_form():
    assert complexity(simplify_formula(2 * W + 2 * Y)) == 5
    assert simplify_formula(X * Y + X * Z) == X * (Y + Z)
    assert simplify_formula(X / Y + Z / Y) == (X + Z) / Y
    assert simplify_formula((X + 1) ** 2 - X**2) == 2 * X + 1
    assert simplify_formula(X * Y) == X * Y


def test_simplify_formula_sees_that_sine_and_cosine_squared_add_to_one():
    c, l0, m, h, theta = sympy.symbols("c l0 m h theta", positive=True)
    sin, cos = sympy.sin(theta), sympy.cos(theta)
    refit = (3 * c * l0 * m + h * sin**2 + h * cos**2 - 3 * h * cos + 2 * h) / (3 * c * m)
    simplified = simplify_formula(refit)
    assert not simplified.has(sympy.sin)
    assert sympy.simplify(simplified - (l0 + h * (1 - cos) / (m * c))) == 0
    assert simplify_formula(2 * h * sin * cos) == 2 * h * sin * cos


def test_simplify_formula_writes_what_a_textbook_writes():
    x, m, s, c, v, f, do = sympy.symbols("x m s c v f do", real=True)
    # The exponent of a bell curve, factored inside the function.
    bell = sympy.exp((-(m**2) / 2 + m * x - x**2 / 2) / s**2) / s
    assert simplify_formula(bell) == sympy.exp(-((m - x) ** 2) / (2 * s**2)) / s
    # A root of a reciprocal as the reciprocal of a root (equal wherever either is real).
    assert simplify_formula(c * v * sympy.sqrt(1 / (c**2 - v**2))) == c * v / sympy.sqrt(
        c**2 - v**2
    )
    # A negated product's sign moved into its sum, where that adds no node, or one node and
    # removes a minus sign.
    assert str(simplify_formula(-do * f / (f - do))) == "do*f/(do - f)"
    assert str(simplify_formula(-v * (-1 + sympy.exp(-f * x / c)) / s)) == ("v*(1 - exp(-f*x/c))/s")
    # A cosine of a double angle as a square; a negated logarithm of a ratio as the inverse
    # ratio's.
    assert simplify_formula(c * (sympy.cos(2 * x) + 1) / 2) == c * sympy.cos(x) ** 2
    assert simplify_formula((1 - sympy.cos(2 * f * x)) / 2) == sympy.sin(f * x) ** 2
    assert str(simplify_formula(-8.314 * s * sympy.log(v / c))) == "8.314*s*log(c/v)"
    # A hyperbolic tangent that is a logistic function, written as one.
    assert simplify_formula(sympy.Rational(1, 2) - sympy.tanh((x - m) / (2 * s)) / 2) == 1 / (
        sympy.exp((x - m) / s) + 1
    )
    # Euler's number (an exact constant) joins an exponential whose argument has a constant.
    assert simplify_formula(1 / (sympy.E * sympy.exp(x / s - 1) - 1)) == 1 / (sympy.exp(x / s) - 1)


@pytest.mark.parametrize(
    "expr",
    [
        X * sympy.sin(Y) ** 2 + X * sympy.cos(Y) ** 2,
        sympy.sin(Y) ** 4 - sympy.cos(Y) ** 4 + X,
        (sympy.sin(X + Y) ** 2 - 1) / (Z * sympy.cos(X + Y)),
        -Z * (sympy.cos(Y) - 1) ** 3 + sympy.sin(Y) ** 2 * sympy.cos(X) ** 2,
        sympy.sqrt(1 / (X**2 + 1)) * sympy.exp(-(X**2) / 2 + X * Y - Y**2 / 2),
    ],
)
def test_simplify_formula_with_functions_keeps_values_and_never_grows(expr):
    _assert_simplified_keeps_values_and_never_grows(expr)


def _assert_simplified_keeps_values_and_never_grows(expr):
    simplified = simplify_formula(expr)
    # One node more only to move a minus sign into a sum (see test below).
    assert complexity(simplified) <= complexity(expr) + 1
    point = {X: 0.37, Y: -1.3, Z: 2.1}
    before, after = complex(expr.evalf(subs=point)), complex(simplified.evalf(subs=point))
    assert abs(before - after) <= 1e-9 * max(1.0, abs(before))


def test_simplify_formula_leaves_huge_expansions_alone():
    expr = (X + Y + Z + W) ** 40
    assert simplify_formula(expr) == expr


def _expressions():
    leaves = st.sampled_from([X, Y, Z, sympy.Integer(2), sympy.Rational(1, 3), sympy.Float(0.7)])

    def combine(children):
        pairs = st.tuples(children, children)
        return st.one_of(
            pairs.map(lambda p: p[0] + p[1]),
            pairs.map(lambda p: p[0] * p[1]),
            pairs.map(lambda p: p[0] - p[1]),
            children.map(lambda c: c / (X**2 + 1)),
            children.map(lambda c: c**2),
        )

    return st.recursive(leaves, combine, max_leaves=8)


@settings(max_examples=40, deadline=None)
@given(_expressions())
def test_simplify_formula_never_changes_values_or_grows(expr):
    _assert_simplified_keeps_values_and_never_grows(expr)


def _nau_difference():
    return make_structure([make_term([make_factor([(0, 1), (1, -1)])])])


def test_structure_to_expr_writes_an_nau_as_a_signed_sum():
    assert structure_to_expr(_nau_difference(), [0, 1], [X, Y]) == X - Y


def test_structure_to_expr_writes_an_nmu_with_reciprocals_as_a_quotient():
    features = [X, Y, 1 / X, 1 / Y, sympy.Integer(1)]
    structure = make_structure([make_term([make_factor([(0, 1)]), make_factor([(3, 1)])])])
    assert structure_to_expr(structure, [0, sympy.Rational(1, 2)], features) == X / (2 * Y)


def test_structure_to_expr_writes_a_product_of_sums():
    term = make_term([make_factor([(0, 1), (1, 1)]), make_factor([(2, 1), (3, -1)])])
    expr = structure_to_expr(make_structure([term]), [1, 3], [X, Y, Z, W])
    assert sympy.expand(expr - (1 + 3 * (X + Y) * (Z - W))) == 0
    assert complexity(expr) < complexity(sympy.expand(expr))


def test_structure_to_expr_writes_a_sum_of_products_with_float_coefficients():
    terms = [
        make_term([make_factor([(0, 1)]), make_factor([(1, 1)])]),
        make_term([make_factor([(2, 1)])]),
    ]
    structure = make_structure(terms)
    coefficients = [np.float64(0.25), 2.5, -1]
    expr = structure_to_expr(structure, coefficients, [X, Y, Z])
    rng = np.random.default_rng(0)
    values = rng.uniform(-3, 3, size=(20, 3))
    evaluated = sympy.lambdify([X, Y, Z], expr)(*values.T)
    by_structure = np.full(len(values), 0.25)
    for coefficient, term in zip(coefficients[1:], structure):
        product = np.ones(len(values))
        for factor, exponent in term:
            product *= sum(sign * values[:, index] for index, sign in factor) ** exponent
        by_structure += coefficient * product
    np.testing.assert_allclose(evaluated, by_structure, rtol=1e-12)


def test_structure_to_expr_reports_mismatched_inputs():
    with pytest.raises(ValueError, match="coefficients"):
        structure_to_expr(_nau_difference(), [1], [X, Y])
    with pytest.raises(ValueError, match="feature index 1"):
        structure_to_expr(_nau_difference(), [0, 1], [X])


def test_a_sum_of_separate_symbols_is_shortened_without_factoring(monkeypatch):
    p, q, r = sympy.symbols("p_sep q_sep r_sep")

    def no_factor(expr, *args, **kwargs):
        raise AssertionError(f"factor called on {expr}")

    monkeypatch.setattr(sympy, "factor", no_factor)
    assert str(simplify_formula(p / 3 + q / 3 + r / 3)) == "(p_sep + q_sep + r_sep)/3"
    with pytest.raises(AssertionError, match="factor called"):
        simplify_formula(p**2 + 2 * p + 1)  # one symbol in two terms: worth factoring
