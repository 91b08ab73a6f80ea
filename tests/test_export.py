import ast
import importlib.util
import inspect
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nalu_sr import NaluRegressor
from nalu_sr.cli import app
from nalu_sr.datasets import load_suite_entry
from nalu_sr.errors import InputError
from nalu_sr.export import TorchFormula, to_function, to_latex, to_python, to_srepr, to_torch
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
        to_python(M, NAMES, backend="jax")
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


# --- PyTorch ---------------------------------------------------------------------------------

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _torch_module(expr, names=NAMES):
    return _compile(to_torch(expr, names), name="Formula")()


def _as_input(columns, dtype=torch.float64):
    return torch.tensor(np.column_stack(columns), dtype=dtype)


@pytest.mark.parametrize("expr", FORMULAS, ids=range(len(FORMULAS)))
def test_torch_export_matches_lambdify(expr):
    columns = _random_columns()
    values = _torch_module(expr)(_as_input(columns))
    expected = np.broadcast_to(_reference(expr, "numpy")(*columns), (50,))
    assert values.shape == (50,) and values.dtype == torch.float64
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-12, atol=0)


@settings(max_examples=30, deadline=None)
@given(_random_formulas())
def test_torch_export_matches_lambdify_on_random_formulas(expr):
    columns = _random_columns(size=20, seed=2)
    expected = np.broadcast_to(_reference(expr, "numpy")(*columns), (20,))
    values = _torch_module(expr)(_as_input(columns))
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("expr", FORMULAS, ids=range(len(FORMULAS)))
def test_torch_export_computes_float32_in_float32(expr):
    columns = _random_columns(seed=4)
    module = _torch_module(expr)
    single, double = module(_as_input(columns, torch.float32)), module(_as_input(columns))
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single.numpy(), double.numpy(), rtol=1e-4, atol=1e-5)


def test_torch_export_keeps_constants_to_the_last_bit():
    # Printed as (1/3)*pi, pi/3 would round twice and end one bit below the nearest double.
    one = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    for expr, expected in [
        (sympy.pi * M / 3, float((sympy.pi / 3).evalf(40))),
        (sympy.Rational(1, 3) * M, 1 / 3),
        (sympy.Float(0.1 + 0.2) * M, 0.1 + 0.2),
        (sympy.sqrt(2) * M + sympy.E, float((sympy.sqrt(2) + sympy.E).evalf(40))),
    ]:
        assert _torch_module(expr)(one).item() == expected, expr


def test_torch_export_module_imports_only_torch():
    tree = ast.parse(to_torch(FORMULAS[4], NAMES))
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [(alias.name, alias.asname) for node in imports for alias in node.names] == [
        ("torch", None)
    ]


def test_torch_export_gradients_flow_through_the_formula():
    X = _as_input(_random_columns(size=10, seed=5)).requires_grad_()
    _torch_module(M * LAM + sympy.sin(ALPHA))(X).sum().backward()
    expected = np.zeros((10, 5))
    expected[:, 0], expected[:, 1] = X[:, 1].detach(), X[:, 0].detach()
    expected[:, 4] = np.cos(X[:, 4].detach().numpy())
    np.testing.assert_allclose(X.grad.numpy(), expected, rtol=1e-12)


def test_torch_constant_formula_returns_one_value_per_row():
    X = torch.ones((4, 2), dtype=torch.float32)
    values = _torch_module(sympy.Rational(1, 3), ["a", "b"])(X)
    assert values.shape == (4,) and values.dtype == torch.float32
    assert torch.all(values == torch.tensor(1 / 3, dtype=torch.float32))


def test_torch_export_computes_integer_input_in_float64():
    a, b = feature_symbols(["a", "b"])
    values = _torch_module(a / b, ["a", "b"])(torch.tensor([[1, 3], [2, 4]]))
    assert values.dtype == torch.float64
    np.testing.assert_array_equal(values.numpy(), [1 / 3, 0.5])


def test_torch_export_keeps_columns_named_like_its_own_names_apart():
    names = ["torch", "self", "input", "Formula"]
    symbols = feature_symbols(names)
    module = _torch_module(sympy.sin(symbols[0]) * symbols[1] + symbols[2] - symbols[3], names)
    values = module(torch.tensor([[0.5, 2.0, 3.0, 4.0]], dtype=torch.float64))
    assert values.item() == pytest.approx(math.sin(0.5) * 2.0 + 3.0 - 4.0, rel=1e-15)
    assert module.feature_names == tuple(names)


def test_torch_export_reports_what_is_wrong():
    with pytest.raises(ValueError, match="not among the feature names"):
        to_torch(M + sympy.Symbol("z"), NAMES)
    with pytest.raises(ValueError, match="cannot print"):
        to_torch(sympy.Min(M, LAM), NAMES)
    with pytest.raises(ValueError, match="cannot print"):
        to_torch(sympy.Piecewise((M, LAM > 0), (1, True)), NAMES)
    with pytest.raises(ValueError, match="class_name"):
        to_torch(M, NAMES, class_name="torch")
    with pytest.raises(ValueError, match="at least one feature"):
        to_torch(sympy.Integer(1), [])
    with pytest.raises(ValueError, match=r"expected shape \(n_rows, 5\), got \(3, 4\)"):
        _torch_module(M)(torch.ones((3, 4)))


def test_torch_formula_checks_the_shape_of_its_input():
    with pytest.raises(InputError, match=r"shape \(n_rows, 5\).*got shape \(5,\)"):
        TorchFormula(M, NAMES)(torch.ones(5))


def test_torch_formula_survives_pickle_and_torch_save(tmp_path):
    module = TorchFormula(sympy.pi * M / 3 + LAM**2, NAMES)
    X = _as_input(_random_columns(size=7, seed=6))
    restored = pickle.loads(pickle.dumps(module))
    torch.save(module, tmp_path / "formula.pt")
    loaded = torch.load(tmp_path / "formula.pt", weights_only=False)
    for copy in (restored, loaded):
        assert copy.expr == module.expr and copy.feature_names == module.feature_names
        assert torch.equal(copy(X), module(X))


def test_torch_formula_moves_with_to_and_keeps_the_input_device():
    module = TorchFormula(M * LAM, NAMES).to(torch.device("cpu")).to(torch.float32)
    X = _as_input(_random_columns(size=3, seed=7))
    assert module(X).dtype == torch.float64 and module(X).device == X.device


@CUDA
def test_torch_formula_runs_on_cuda():
    module = TorchFormula(FORMULAS[4] + FORMULAS[1], NAMES).to("cuda")
    X = _as_input(_random_columns(size=9, seed=8))
    on_device = module(X.to("cuda").requires_grad_())
    assert on_device.device.type == "cuda"
    on_device.sum().backward()
    np.testing.assert_allclose(on_device.detach().cpu().numpy(), module(X).numpy(), rtol=1e-12)


# A tiny search whose formula, 9*C/5 + 32, has a fraction, with a constant column left out
# of the search before the one the formula uses.
CELSIUS_SEARCH = dict(max_time=5, restarts=1, steps=100, scale_steps=1, architectures=["NAU"])


@pytest.fixture(scope="module")
def celsius_model():
    train = load_suite_entry("celsius_to_fahrenheit")
    X = pd.DataFrame({"unit": 1.0, "C": train["C"]})
    model = NaluRegressor(**CELSIUS_SEARCH).fit(X, train["F"])
    assert model.dropped_features_ == {"unit": "constant 1"}
    return model, X


def test_pytorch_module_matches_predict_on_every_candidate(celsius_model):
    model, X = celsius_model
    assert str(model.formula_) == "9*C/5 + 32"
    inputs = torch.tensor(X.to_numpy(), dtype=torch.float64)
    for index in [None, *model.candidates_.index]:
        values = model.pytorch(index)(inputs)
        assert values.shape == (len(X),)
        np.testing.assert_allclose(values.numpy(), model.predict(X, index=index), rtol=1e-12)


def test_pytorch_module_takes_float32_and_gives_gradients(celsius_model):
    model, X = celsius_model
    inputs = torch.tensor(X.to_numpy(), dtype=torch.float32, requires_grad=True)
    values = model.pytorch()(inputs)
    assert values.dtype == torch.float32
    expected = model.predict(X)
    # float32's rounding, relative to the largest value (9*C/5 + 32 crosses zero).
    scale = np.abs(expected).max()
    np.testing.assert_allclose(values.detach().numpy(), expected, rtol=0, atol=1e-6 * scale)
    values.sum().backward()
    np.testing.assert_allclose(inputs.grad.numpy(), np.tile([0.0, 1.8], (len(X), 1)), rtol=1e-6)


def test_cli_torch_export_is_a_module_that_matches_predict(celsius_model, tmp_path):
    model, X = celsius_model
    model.save(tmp_path / "model.json")
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "model.json"), "--format", "torch"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    path = tmp_path / "celsius_formula.py"
    path.write_text(result.stdout, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("celsius_formula", path)
    exported = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exported)
    module = exported.Formula()
    assert isinstance(module, torch.nn.Module) and exported.Formula.feature_names == ("unit", "C")
    values = module(torch.tensor(X.to_numpy(), dtype=torch.float64))
    np.testing.assert_allclose(values.numpy(), model.predict(X), rtol=1e-12)


def test_docstring_examples_run():
    import doctest

    import nalu_sr.export

    result = doctest.testmod(nalu_sr.export)
    assert result.attempted > 0 and result.failed == 0
