"""Beyond arithmetic: transforms of the target (y**2, 1/y**2, log(y), sqrt(y)), functions of
single inputs as feature columns (sqrt, log, exp, sin, cos), their domains, and every surface
a formula with them goes through."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import sympy
from surfaces import assert_every_surface_matches_predict

from nalu_sr import NaluRegressor
from nalu_sr.estimator import DomainWarning
from nalu_sr.search import find_formula
from nalu_sr.search.runner import plan_stages
from nalu_sr.search.space import build_feature_table, offered_functions
from nalu_sr.search.stacks import Family, Space, architectures
from nalu_sr.search.transforms import (
    TRANSFORMS,
    apply_transform,
    invert_formula,
    invert_values,
    offered,
)
from nalu_sr.serialization import expr_to_tree, tree_to_expr
from nalu_sr.symbolic import domain_arguments, feature_symbols


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_inverts_on_values_and_on_formulas(name):
    y = np.linspace(0.5, 4.0, 9)
    assert np.allclose(invert_values(apply_transform(y, name), name), y, rtol=1e-14)
    x = sympy.Symbol("x", positive=True)
    assert sympy.simplify(invert_formula(TRANSFORMS[name].forward(x), name) - x) == 0


def test_each_transform_is_offered_only_where_it_is_defined():
    every = ["y", "1/y", "y**2", "1/y**2", "log(y)", "sqrt(y)", "exp(y)"]
    assert offered(np.array([1.0, 2.0, 3.0])) == every
    assert offered(np.array([-1.0, -2.0])) == ["y", "1/y", "exp(y)"]
    assert offered(np.array([-1.0, 2.0])) == ["y", "exp(y)"]
    # The exponential only of a target of moderate span (its constants would otherwise be
    # fitted to the largest rows alone).
    assert offered(np.array([-1.0, 200.0])) == ["y"]
    # Undefined rows are NaN, which the fit leaves out.
    assert np.isnan(apply_transform(np.array([-1.0]), "log(y)")).all()


def test_functions_of_an_input_are_columns_only_inside_their_domain():
    assert offered_functions(np.array([0.5, 2.0])) == ["sqrt", "log", "exp", "sin", "cos"]
    assert offered_functions(np.array([-1.0, 2.0])) == ["exp", "sin", "cos"]
    assert offered_functions(np.array([200.0, 300.0])) == ["sqrt", "log"]
    assert offered_functions(np.array([3.0, 3.0])) == []
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(1, 2, 50), rng.uniform(-1, 1, 50)])
    a, b = feature_symbols(["a", "b"])
    table = build_feature_table(X, [a, b], np.arange(50))
    assert set(table.functions) == {"sqrt", "log", "exp", "sin", "cos"}
    held = {table.expressions[c] for c in table.function_columns}
    assert sympy.log(a) in held and sympy.sqrt(a) in held and sympy.sin(b) in held
    assert sympy.log(b) not in held and sympy.sqrt(b) not in held
    for column in table.function_columns:
        function = sympy.lambdify([a, b], table.expressions[column], "numpy")
        assert np.allclose(table.values[:, column], function(X[:, 0], X[:, 1]))
    assert table.constant == table.n_columns - 1


def test_the_stages_beyond_arithmetic_come_after_every_arithmetic_stage_but_closed_forms():
    X = np.random.default_rng(0).uniform(1, 3, (200, 2))
    a, b = feature_symbols(["a", "b"])
    y = X[:, 0] + X[:, 1]
    table = build_feature_table(X, [a, b], np.arange(200))
    space = Space(table, np.arange(200), y)
    stages = plan_stages(architectures(space), offered(y))
    families = [
        max(arch.stage_key(transform).family for arch, transform in stage) for stage in stages
    ]
    assert families == sorted(families) and families[-1] == Family.FUNCTIONS
    for stage, family in zip(stages, families, strict=True):
        for arch, transform in stage:
            beyond = not TRANSFORMS[transform].arithmetic or arch.kind.family == Family.FUNCTIONS
            # A kind solved in closed form (P/Q) costs too little to wait on any transform.
            beyond = beyond and arch.kind.solve is None
            assert beyond == (family == Family.FUNCTIONS), (arch.name, transform)
    early = {t for stage in stages[:2] for arch, t in stage if arch.name == "P/Q"}
    assert early == {"y", "1/y", "y**2", "1/y**2", "sqrt(y)", "log(y)", "exp(y)"} & set(offered(y))
    over_functions = [
        i for i, stage in enumerate(stages) for arch, _ in stage if arch.name.startswith("P/Q[x")
    ]
    assert over_functions and max(over_functions) < families.index(Family.FUNCTIONS)


@pytest.mark.parametrize(
    "formula, stack, ranges",
    [
        (lambda a, b: np.sqrt(a**2 + b**2), "NMU->NAU[2]", (1, 5)),  # on y**2
        (lambda a, b: 1 / np.sqrt(a**2 + b**2), "NMU->NAU[2]", (1, 5)),  # on 1/y**2
        (lambda a, b: a**1.5 * b, "NPU", (1, 5)),  # on y**2: half-integer powers
        (lambda a, b: np.exp(-a / b), "NMU", (1, 3)),  # on log(y)
        (lambda a, b: a * (1 - np.cos(b)), "NAU[x, sin, cos]->NMU[2]", (0.3, 1.5)),
        (lambda a, b: np.log(a) - np.log(b), "NAU[x, f(x)]", (1, 5)),
        # On exp(y) in closed form (the trained units no longer train there).
        (lambda a, b: np.log(a + b), "P/Q", (1, 5)),
        (lambda a, b: np.log(1 + a / b), "P/Q", (1, 5)),
        # A listed function of a sum of two inputs.
        (lambda a, b: np.log(a + b), "f(u) listed", (1, 5)),
    ],
    ids=[
        "root-of-sum",
        "reciprocal-root",
        "real-power",
        "exponential",
        "versine",
        "log-ratio",
        "log-of-sum",
        "log-of-sum-of-products",
        "log-of-sum-listed",
    ],
)
def test_each_new_stack_finds_its_form_exactly(formula, stack, ranges):
    X = np.random.default_rng(0).uniform(*ranges, (300, 2))
    y = formula(*X.T)
    result = find_formula(X, y, feature_names=["a", "b"], architectures=[stack])
    assert result.exact, result.formula
    a, b = result.symbols
    assert np.allclose(sympy.lambdify([a, b], result.formula)(*X.T), y, rtol=1e-9)
    assert not result.formula.has(sympy.Abs)  # inputs positive on the fitted rows


def test_the_root_of_a_power_is_written_as_a_real_power():
    X = np.random.default_rng(0).uniform(1, 5, (300, 2))
    result = find_formula(
        X, X[:, 0] ** 1.5 * X[:, 1], feature_names=["a", "b"], architectures=["NPU"]
    )
    a, b = result.symbols
    assert result.formula == a ** sympy.Rational(3, 2) * b


def test_domain_arguments_name_what_roots_and_logarithms_need_positive():
    a, b = feature_symbols(["a", "b"])
    assert domain_arguments(sympy.sqrt(a + b) * sympy.log(a) + b**2) == [a, a + b]
    assert domain_arguments(a**2 / b) == []


@pytest.fixture(scope="module")
def root_model():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.uniform(1, 3, 300), "b": rng.uniform(1, 3, 300)})
    y = np.sqrt(frame.a**2 + frame.b)
    return NaluRegressor(architectures=["NMU->NAU[2]"]).fit(frame, y), frame, y


def test_predict_warns_where_a_root_leaves_its_domain(root_model):
    model, frame, y = root_model
    assert model.exact_, model.formula_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(model.predict(frame), y)
    outside = pd.DataFrame({"a": [1.0, 3.0], "b": [-4.0, -1.0]})
    with pytest.warns(DomainWarning, match="outside its domain on 1 of the 2 rows"):
        values = model.predict(outside)
    assert np.isnan(values[0]) and values[1] == pytest.approx(math.sqrt(8.0))


def test_a_formula_beyond_arithmetic_goes_through_every_surface(root_model, tmp_path):
    model, frame, _ = root_model
    assert "sqrt" in model.latex() and r"\sqrt" in model.latex()
    assert_every_surface_matches_predict(model, frame, tmp_path)


@pytest.mark.parametrize(
    "expr",
    [
        lambda a, b: sympy.exp(-a / b) * sympy.sqrt(a),
        lambda a, b: a * sympy.sin(b) ** 2 + sympy.cos(a) * sympy.log(b),
        lambda a, b: a ** sympy.Rational(3, 2) / sympy.sqrt(b),
    ],
)
def test_model_files_hold_every_new_function_exactly(expr):
    a, b = feature_symbols(["a", "b"])
    formula = expr(a, b)
    assert tree_to_expr(expr_to_tree(formula)) == formula


def test_the_cli_prediction_names_rows_outside_a_root_s_domain(root_model, tmp_path):
    from typer.testing import CliRunner

    from nalu_sr.cli import app

    model, _, _ = root_model
    model.save(tmp_path / "model.json")
    pd.DataFrame({"a": [1.0, 3.0], "b": [-4.0, -1.0]}).to_csv(tmp_path / "new.csv", index=False)
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "model.json"), str(tmp_path / "new.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "outside its domain on 1 of the 2 rows" in result.stderr
    assert "a root of a negative number" in result.stderr
    assert "Traceback" not in result.output


def test_an_exponential_of_a_ratio_times_an_input_comes_from_the_logarithm_of_the_target():
    X = np.random.default_rng(0).uniform(1, 3, (300, 3))
    y = X[:, 0] * np.exp(-X[:, 1] / X[:, 2])
    result = find_formula(
        X, y, feature_names=["N0", "t", "tau"], architectures=["NMU[x, log]->NAU[2]"]
    )
    n0, t, tau = result.symbols
    assert result.exact and result.formula == n0 * sympy.exp(-t / tau)
    # The candidates table says which form of the target each formula was fitted to.
    assert result.candidates.loc[result.chosen, "transform"] == "log(y)"


def test_a_square_of_a_cosine_comes_from_the_nmu_over_sines_and_cosines():
    from nalu_sr.datasets import load_suite_entry

    frame = load_suite_entry("malus_law")
    result = find_formula(frame[["I0", "theta"]], frame["I"], architectures=["NMU[x, sin, cos]"])
    i0, theta = result.symbols
    assert result.exact and result.formula == i0 * sympy.cos(theta) ** 2
