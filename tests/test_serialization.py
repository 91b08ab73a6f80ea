import builtins
import json
import sys

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from nalu_sr.export import to_function
from nalu_sr.serialization import (
    MAX_DEPTH,
    ModelFileError,
    dumps,
    expr_to_tree,
    loads,
    tree_to_expr,
)
from nalu_sr.symbolic import feature_symbols, simplify_formula

X, MASS, LAM, PI_COL = feature_symbols(["x", "mass (kg)", "lambda", "pi"])

FORMULAS = [
    X,
    sympy.Integer(0),
    sympy.Integer(-12345678901234567890),
    sympy.Rational(-7, 3) * X / MASS,
    simplify_formula(2 * X + 2 * MASS),
    sympy.Mul(2, X + MASS, evaluate=False),
    sympy.sqrt(2) * X ** sympy.Rational(3, 2),
    X ** sympy.Float(1.5) + sympy.Float(0.1 + 0.2),
    sympy.Float(6.674e-11) * MASS * LAM / X**2,
    sympy.Float("0.1", 40) * sympy.pi * sympy.exp(X),
    sympy.pi * PI_COL + sympy.E,
    sympy.sin(X) + sympy.cos(LAM) * sympy.tan(MASS),
    sympy.log(sympy.Abs(X)) - sympy.sign(LAM),
    sympy.Symbol("plain") + sympy.Symbol("p", positive=True) ** 2,
    sympy.Float(-1e300) + sympy.Float(5e-324),
]


@pytest.mark.parametrize("expr", FORMULAS, ids=range(len(FORMULAS)))
def test_tree_round_trip_is_exact(expr):
    tree = expr_to_tree(expr)
    rebuilt = tree_to_expr(json.loads(json.dumps(tree)))
    assert rebuilt == expr
    assert sympy.srepr(rebuilt) == sympy.srepr(expr)


def test_tree_is_readable_json_with_exact_numbers():
    tree = expr_to_tree(sympy.Rational(1, 3) * X + sympy.Float(0.1))
    assert tree == {
        "op": "Add",
        "args": [
            {"float": "0.1"},
            {"op": "Mul", "args": [{"rational": [1, 3]}, {"symbol": "x"}]},
        ],
    }


@pytest.mark.parametrize(
    "value", [5e-324, 2.2250738585e-311, 2.2250738585072014e-308, 1.7976931348623157e308]
)
def test_float_round_trip_is_bit_exact_at_the_edges_of_double(value):
    rebuilt = tree_to_expr(json.loads(json.dumps(expr_to_tree(sympy.Float(value)))))
    assert rebuilt == sympy.Float(value)
    assert float(rebuilt) == value


def test_float_beyond_the_loading_limits_is_refused_when_saving():
    with pytest.raises(ModelFileError, match="could not be loaded back"):
        expr_to_tree(sympy.Float("1.5e1000000000000000005"))


def test_text_round_trip_keeps_unicode_names():
    alpha = feature_symbols(["α"])[0]
    text = dumps(alpha * MASS, indent=2)
    assert "α" in text
    assert loads(text) == alpha * MASS


def _formulas():
    leaves = st.one_of(
        st.sampled_from([X, MASS, LAM, PI_COL, sympy.pi, sympy.E]),
        # Small numbers: SymPy factors the integers it raises to fractional powers
        # (exp(p/q*log(n)) is n**(p/q)), which takes minutes for some 30-digit ones; the
        # exact integers of 30 digits are tested on their own below.
        st.integers(-1000, 1000).map(sympy.Integer),
        st.fractions(min_value=-1000, max_value=1000, max_denominator=1000).map(
            lambda f: sympy.Rational(f.numerator, f.denominator)
        ),
        st.floats(min_value=-1e20, max_value=1e20).map(sympy.Float),
    )
    functions = [sympy.sin, sympy.cos, sympy.tan, sympy.exp, sympy.log, sympy.Abs, sympy.sign]

    def combine(children):
        pairs = st.tuples(children, children)
        return st.one_of(
            pairs.map(lambda p: p[0] + p[1]),
            pairs.map(lambda p: p[0] * p[1]),
            st.tuples(children, st.integers(-3, 3)).map(lambda p: p[0] ** p[1]),
            st.tuples(st.sampled_from(functions), children).map(lambda p: p[0](p[1])),
            pairs.map(lambda p: sympy.Mul(p[0], p[1], evaluate=False)),
        )

    return st.recursive(leaves, combine, max_leaves=12)


@given(st.integers(-(10**30), 10**30))
def test_exact_integers_of_thirty_digits_round_trip(n):
    expr = sympy.Integer(n) * X + sympy.Rational(n, 7)
    assert tree_to_expr(json.loads(json.dumps(expr_to_tree(expr)))) == expr


@settings(max_examples=150, deadline=None)
@given(_formulas())
def test_tree_round_trip_is_exact_on_random_formulas(expr):
    try:
        tree = expr_to_tree(expr)
    except ModelFileError as error:
        # Saving refuses only what has no place in the format, or what exceeds loading limits.
        unsupported = expr.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo, sympy.I)
        assert unsupported or "could not be loaded back" in str(error)
        return
    assert tree_to_expr(json.loads(json.dumps(tree))) == expr


def _deep_formula(levels):
    expr = X
    for _ in range(levels):
        expr = sympy.sin(expr, evaluate=False)
    return expr


@pytest.mark.parametrize(
    "expr",
    [
        sympy.nan,
        sympy.zoo,
        sympy.oo,
        sympy.I * X,
        sympy.Function("f")(X),
        sympy.Dummy("d"),
        _deep_formula(MAX_DEPTH + 5),
        sympy.Integer(2**5000) * X,
    ],
    ids=["nan", "zoo", "oo", "I", "undefined function", "dummy", "too deep", "huge integer"],
)
def test_saving_rejects_what_cannot_be_loaded(expr):
    with pytest.raises(ModelFileError, match="cannot store"):
        expr_to_tree(expr)


def _nested(levels):
    tree = {"symbol": "x"}
    for _ in range(levels):
        tree = {"op": "sin", "args": [tree]}
    return tree


MALICIOUS = {
    "import operator": {"op": "__import__", "args": [{"symbol": "os"}]},
    "eval operator": {"op": "eval", "args": [{"symbol": "1"}]},
    "dunder operator": {"op": "__class__", "args": [{"symbol": "x"}, {"symbol": "y"}]},
    "code as float": {"float": "__import__('os').system('echo owned')"},
    "code as integer": {"integer": "__import__('os')"},
    "code as constant": {"constant": "__import__('os')"},
    "unknown leaf": {"lambda": "x: x"},
    "two kinds": {"symbol": "x", "integer": 1},
    "extra key": {"integer": 1, "__reduce__": "os.system"},
    "not an object": ["Add", 1, 2],
    "string node": "x + 1",
    "args not a list": {"op": "Add", "args": "x, y"},
    "one-term sum": {"op": "Add", "args": [{"integer": 1}]},
    "binary sin": {"op": "sin", "args": [{"integer": 1}, {"integer": 2}]},
    "boolean integer": {"integer": True},
    "zero denominator": {"rational": [1, 0]},
    "nan float": {"float": "nan"},
    "infinite float": {"float": "inf"},
    "huge float exponent": {"float": "1e" + "9" * 300},
    "huge precision": {"float": "1.0", "precision": 10**9},
    "huge integer": {"integer": 2**5000},
    "huge power": {"op": "Pow", "args": [{"integer": 10}, {"integer": 10**9}]},
    "power tower": {
        "op": "Pow",
        "args": [{"integer": 2}, {"op": "Pow", "args": [{"integer": 2}, {"integer": 4000}]}],
    },
    "nested powers": {
        "op": "Pow",
        "args": [{"op": "Pow", "args": [{"integer": 10}, {"integer": 1000}]}, {"integer": 1000}],
    },
    "huge product": {"op": "Mul", "args": [{"integer": 2**4000}] * 3},
    "deep nesting": _nested(10 * MAX_DEPTH),
    "bad assumption": {"symbol": "x", "assumptions": {"__init__": True}},
    "contradictory assumptions": {"symbol": "x", "assumptions": {"positive": True, "zero": True}},
    "empty symbol": {"symbol": ""},
}


@pytest.mark.parametrize("tree", MALICIOUS.values(), ids=MALICIOUS.keys())
def test_malformed_or_hostile_trees_raise_model_file_error(tree):
    with pytest.raises(ModelFileError, match="node|formula"):
        tree_to_expr(tree)


def test_model_file_error_names_the_offending_node():
    tree = {"op": "Add", "args": [{"symbol": "x"}, {"op": "system", "args": [{"symbol": "y"}]}]}
    with pytest.raises(ModelFileError, match=r"\$\.args\[1\].*'system'"):
        tree_to_expr(tree)
    assert issubclass(ModelFileError, ValueError)


def test_symbol_names_that_look_like_code_stay_inert(monkeypatch):
    calls = []
    real_import = builtins.__import__

    def watching_import(name, *args, **kwargs):
        calls.append(name)
        return real_import(name, *args, **kwargs)

    name = "__import__('nalu_sr_sentinel_module')"
    tree = {"op": "Add", "args": [{"symbol": name}, {"integer": 1}]}
    monkeypatch.setattr(builtins, "__import__", watching_import)
    expr = tree_to_expr(tree)
    function = to_function(expr, [name], backend="math")
    assert function(2.0) == 3.0
    monkeypatch.undo()
    assert "nalu_sr_sentinel_module" not in calls
    assert "nalu_sr_sentinel_module" not in sys.modules
    assert expr.free_symbols == {sympy.Symbol(name, real=True)}


@pytest.mark.parametrize(
    "text", ["{not json", "[" * 100_000 + "]" * 100_000, '{"integer": ' + "9" * 5000 + "}"]
)
def test_loads_turns_unreadable_text_into_model_file_error(text):
    with pytest.raises(ModelFileError):
        loads(text)
