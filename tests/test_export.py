import ast
import inspect
import math

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from nalu_sr.export import to_function, to_latex, to_python, to_srepr
from nalu_sr.symbolic import feature_symbols, python_identifiers

NAMES = ["mass (kg)", "lambda", "E", "pi", "α"]
M, LAM, E_COL, PI_COL, ALPHA = feature_symbols(NAMES)

FORMULAS = [
    M * LAM,
    sympy.Rational(1, 3) * M - 2 * LAM + sympy.Float(6.674e-11) * E_COL / PI_COL**2,
    sympy.pi * ALPHA**2 + sympy.E,
    sympy.Float(0.1 + 0.2) * (M + LAM) * (E_COL - ALPHA),
    sympy.sqrt(M**2 + LAM**2) + sympy.sin(ALPHA) * sympy.exp(-(PI_COL**2)),
    sympy.log(sympy.Abs(E_COL) + 1) + sympy.Abs(LAM) ** sympy.Rational(3, 2),
    M / (LAM**2 + 1) - sympy.cos(E_COL) + sympy.tan(ALPHA / 10),
    sympy.sign(M) * sympy.Float(1 / 7),
]


def _reference(expr, modules):
    # lambdify puts every symbol into its namespace by name, even with dummify=True, so a
    # column called "pi" would shadow the constant: rename the symbols before calling it.
    safe = sympy.symbols(f"v0:{len(NAMES)}")
    renamed = expr.xreplace(dict(zip([M, LAM, E_COL, PI_COL, ALPHA], safe)))
    return sympy.lambdify(safe, renamed, modules=modules)


def _compile(source, name="formula"):
    namespace = {}
    exec(compile(source, "<exported>", "exec"), namespace)
    return namespace[name]


def _random_columns(size=50, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-5, 5, size=size) for _ in NAMES]


@pytest.mark.parametrize("expr", FORMULAS, ids=range(len(FORMULAS)))
def test_numpy_export_matches_lambdify(expr):
    function = _compile(to_python(expr, NAMES))
    reference = _reference(expr, "numpy")
    columns = _random_columns()
    np.testing.assert_allclose(function(*columns), reference(*columns), rtol=1e-12, atol=0)


@pytest.mark.parametrize("expr", FORMULAS, ids=range(len(FORMULAS)))
def test_math_export_matches_lambdify_on_scalars(expr):
    function = _compile(to_python(expr, NAMES, backend="math"))
    reference = _reference(expr, "math")
    for row in np.array(_random_columns(size=10, seed=1)).T:
        values = [float(v) for v in row]
        assert function(*values) == pytest.approx(reference(*values), rel=1e-12, abs=0)


def test_export_parameters_are_the_python_identifiers_in_column_order():
    function = _compile(to_python(M + ALPHA, NAMES))
    parameters = list(inspect.signature(function).parameters)
    assert parameters == list(python_identifiers(NAMES).values())
    assert "mass (kg)" in function.__doc__
    assert "Column 'lambda'" in function.__doc__


@pytest.mark.parametrize("backend", ["numpy", "math"])
def test_export_imports_at_most_its_own_module(backend):
    source = to_python(FORMULAS[4], NAMES, backend=backend)
    tree = ast.parse(source)
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    allowed = {"numpy": ("numpy", "np"), "math": ("math", None)}[backend]
    assert [(alias.name, alias.asname) for node in imports for alias in node.names] == [allowed]


def test_export_writes_floats_that_round_trip():
    value = 0.1 + 0.2
    function = _compile(to_python(sympy.Float(value) * M, NAMES, backend="math"))
    assert function(1.0, 0.0, 0.0, 0.0, 0.0) == value


def test_constant_formula_returns_an_array_of_the_broadcast_shape():
    function = _compile(to_python(sympy.Integer(3), ["a", "b"]))
    result = function(np.ones(4), np.ones((2, 1)))
    assert result.shape == (2, 4)
    assert np.all(result == 3.0)
    result[0, 0] = 7.0


def test_formula_using_some_columns_still_broadcasts_over_all():
    a, _ = feature_symbols(["a", "b"])
    function = _compile(to_python(2 * a, ["a", "b"]))
    np.testing.assert_array_equal(
        function([1.0, 2.0], np.zeros((3, 1))), np.tile([2.0, 4.0], (3, 1))
    )


def test_export_accepts_lists_as_numpy_inputs():
    function = _compile(to_python(M * LAM, NAMES))
    np.testing.assert_array_equal(function([1, 2], [3, 4], 0, 0, 0), [3.0, 8.0])


def test_docstring_with_awkward_names_still_compiles():
    names = ['say """hi"""', "back\\slash", "tab\there"]
    symbols = feature_symbols(names)
    function = _compile(to_python(sympy.Add(*symbols), names))
    assert function(1.0, 2.0, 3.0) == 6.0
    assert 'say """hi"""' in function.__doc__


def test_export_reports_what_is_wrong():
    with pytest.raises(ValueError, match="not among the feature names"):
        to_python(M + sympy.Symbol("z"), NAMES)
    with pytest.raises(ValueError, match="backend"):
        to_python(M, NAMES, backend="torch")
    with pytest.raises(ValueError, match="function_name"):
        to_python(M, NAMES, function_name="1st formula")
    with pytest.raises(ValueError, match="cannot print"):
        to_python(sympy.Function("f")(M), NAMES)


def test_function_name_names_the_exported_function():
    function = _compile(to_python(M, NAMES, function_name="gravity"), name="gravity")
    assert function.__name__ == "gravity"


def _is_balanced(latex):
    depth = 0
    escaped = False
    for char in latex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("R1", "R_{1}"),
        ("v_max", "v_{max}"),
        ("lambda", r"\lambda"),
        ("α", r"\alpha"),
        ("θ_0", r"\theta_{0}"),
        ("mass (kg)", r"\text{mass (kg)}"),
        ("a_b_c", r"\text{a\_b\_c}"),
        ("50% {x} & #1", r"\text{50\% \{x\} \& \#1}"),
    ],
)
def test_latex_renders_user_names(name, expected):
    symbol = sympy.Symbol(name, real=True)
    assert to_latex(symbol) == expected
    assert _is_balanced(to_latex(2 * symbol + 1))


def test_latex_keeps_lookalike_names_apart():
    pi_col, x1, x_1 = feature_symbols(["pi", "x1", "x_1"])
    latex = to_latex(sympy.pi * pi_col + x1 - x_1)
    assert r"\text{pi}" in latex
    assert r"\text{x1}" in latex
    assert r"\text{x\_1}" in latex


def test_latex_accepts_explicit_names_by_symbol_or_string():
    assert to_latex(M * LAM, {"mass (kg)": "m"}) == r"\lambda m"
    assert to_latex(M * LAM, {LAM: r"\ell"}) == r"\ell \text{mass (kg)}"


def test_srepr_rebuilds_the_formula():
    expr = FORMULAS[1]
    assert sympy.sympify(to_srepr(expr)) == expr
    assert "Symbol('mass (kg)', real=True)" in to_srepr(expr)


def test_exported_numpy_function_handles_negative_inputs_like_lambdify():
    expr = sympy.sqrt(M) + LAM
    function = _compile(to_python(expr, NAMES))
    reference = _reference(expr, "numpy")
    columns = _random_columns(seed=3)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(np.isnan(function(*columns)), np.isnan(reference(*columns)))
        assert math.isnan(function(-1.0, 0, 0, 0, 0))


def _random_formulas():
    leaves = st.sampled_from(
        [M, LAM, ALPHA, PI_COL, sympy.Integer(3), sympy.Rational(-2, 7), sympy.Float(0.1), sympy.pi]
    )

    def combine(children):
        pairs = st.tuples(children, children)
        return st.one_of(
            pairs.map(lambda p: p[0] + p[1]),
            pairs.map(lambda p: p[0] * p[1]),
            pairs.map(lambda p: p[0] / (p[1] ** 2 + 1)),
            children.map(sympy.sin),
            children.map(lambda c: sympy.sqrt(c**2 + 1)),
        )

    return st.recursive(leaves, combine, max_leaves=10)


@settings(max_examples=30, deadline=None)
@given(_random_formulas())
def test_numpy_export_matches_lambdify_on_random_formulas(expr):
    function = _compile(to_python(expr, NAMES))
    columns = _random_columns(size=20, seed=2)
    expected = np.broadcast_to(_reference(expr, "numpy")(*columns), (20,))
    np.testing.assert_allclose(function(*columns), expected, rtol=1e-12, atol=1e-300)


def test_compiled_function_keeps_columns_and_constants_of_the_same_name_apart():
    pi_col, e_col, sin_col = feature_symbols(["pi", "e", "sin"])
    expr = sympy.pi * pi_col + sympy.E * e_col + sympy.sin(sin_col)
    for backend in ("numpy", "math"):
        function = to_function(expr, ["pi", "e", "sin"], backend=backend)
        expected = math.pi * 2.0 + math.e * 3.0 + math.sin(0.5)
        assert float(function(2.0, 3.0, 0.5)) == pytest.approx(expected, rel=1e-15)
