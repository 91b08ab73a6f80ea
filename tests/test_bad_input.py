"""Bad input gets one clear line and exit code 2 on the command line, and a ValueError subclass
from the library; input that is merely unusual (odd names, separators, magnitudes, constant or
repeated columns, zeros) works."""

import io
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from typer.testing import CliRunner

from nalu_sr import NaluRegressor
from nalu_sr.cli import app
from nalu_sr.cli.csv_input import read_table
from nalu_sr.datasets import load_suite_entry
from nalu_sr.errors import (
    ColumnError,
    CSVError,
    InputError,
    MagnitudeError,
    NonFiniteError,
    TooFewRowsError,
)

# Small searches that still find products of two inputs.
TINY = ["--restarts", "1", "--steps", "300", "--architectures", "NAU,NMU", "--max-time", "10"]
FAST = dict(max_time=10, restarts=1, steps=300, scale_steps=6, architectures=["NAU", "NMU"])
#: Values a formula must not hold anywhere in its expression.
UNDEFINED = (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)

runner = CliRunner()


def fit_cli(path, *args, target="y"):
    return runner.invoke(app, ["fit", str(path), "--target", target, *TINY, *map(str, args)])


def one_error_line(result) -> str:
    """The single ``error:`` line of a failed command, after checking the exit code."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def rows(*names, n=40, seed=0):
    """``n`` rows of independent columns, alternately in the ranges of Ohm's law's I and R."""
    rng = np.random.default_rng(seed)
    ranges = [(0.1, 2.0), (1.0, 100.0)]
    return pd.DataFrame({name: rng.uniform(*ranges[j % 2], n) for j, name in enumerate(names)})


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# name -> (file text or None for no file, error class, what the message must say)
CSV_CASES = {
    "missing file": (None, CSVError, r"missing\.csv does not exist; check the path"),
    "empty file": ("", CSVError, r"is empty; it needs a header line and rows of numbers"),
    "blank lines only": ("\n\n  \n", CSVError, r"is empty"),
    "header only": ("a,b,y\n", CSVError, r"has a header but no data rows; add rows"),
    "not UTF-8": (None, CSVError, r"is not UTF-8 text; save it as a UTF-8 CSV file"),
    "one column": ("a b y\n1 2 3\n", CSVError, r"single column .*Spaces do not separate"),
    "extra field": (
        "a,b,y\n1,2,3\n4,5,6,7\n",
        CSVError,
        r"line 3 has 4 fields but the header names 3 columns; remove the extra fields",
    ),
    "target missing": (
        "a,b,Y_total\n1,2,3\n",
        ColumnError,
        r"has no target column 'y'; its columns are 'a', 'b', 'Y_total'\. Did you mean 'Y_total'",
    ),
    "no header": ("1,2,3\n4,5,6\n", ColumnError, r"The first line holds numbers: add a header"),
    "duplicate names": (
        "a,b,a,y\n1,2,3,4\n",
        ColumnError,
        r"column names 'a' appear more than once in the header; rename them",
    ),
    "unnamed column with values": (
        "a,,y\n1,2,3\n",
        ColumnError,
        r"column 2 has no name in the header but holds '2' on line 2; name it",
    ),
    "non-numeric columns": (
        "a,b,y\n1,2,3\n1,x7,3\nred,2,3\n",
        ColumnError,
        r"columns 'a', 'b' must hold numbers only \('a' holds 'red' on line 4; "
        r"'b' holds 'x7' on line 3\)",
    ),
    "decimal commas": ("a;b;y\n1,5;2;3\n", ColumnError, r"decimal comma .*\(1\.5, not 1,5\)"),
    "boolean text": ("a,b,y\nTrue,1,2\n", ColumnError, r"'a' holds 'True' on line 2"),
    "NaN, inf and empty cells": (
        "a,b,y\n1,2,3\n1,,3\n\n2,2,nan\n3,inf,3\n-inf,NA,1\n",
        NonFiniteError,
        r"4 rows with missing or infinite values \(lines 3, 5, 6, 7\): 'a' has 1 infinite "
        r"value \(line 7\); 'b' has 1 empty cell \(line 3\), 1 NaN \(line 7\), 1 infinite "
        r"value \(line 6\); 'y' has 1 NaN \(line 5\); fill them in, or pass --dropna",
    ),
    "too few rows": (
        "a;b;y\n1;2;2\n2;2;4\n",
        TooFewRowsError,
        r"has 2 data rows; the search needs at least 10 samples, because it holds rows out "
        r"for validation and for the extrapolation check\. Add rows\.",
    ),
    "values beyond 1e150": (
        "a,b,y\n" + "".join(f"{i}e200,{i},{i}\n" for i in range(1, 13)),
        MagnitudeError,
        r"'a' reaches 1\.2e\+201; values beyond 1e\+150 overflow when squared\. Divide 'a' by a "
        r"power of ten \(e\.g\. 1e201\) and scale the formula back\.",
    ),
}
# Found once the table is read: by the command line, and by NaluRegressor.fit.
AFTER_READING = {"too few rows", "values beyond 1e150"}


def _make(case, tmp_path) -> Path:
    text = CSV_CASES[case][0]
    if case == "not UTF-8":
        path = tmp_path / "data.csv"
        path.write_bytes(b"a,b,y\n\xff\xfe,1,2\n")
        return path
    if text is None:
        return tmp_path / "missing.csv"
    return write(tmp_path, text)


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_bad_csv_exits_2_with_one_line_saying_what_where_and_what_to_do(case, tmp_path):
    path = _make(case, tmp_path)
    line = one_error_line(fit_cli(path))
    assert re.search(CSV_CASES[case][2], line), line
    assert str(path) in line


@pytest.mark.parametrize("case", [c for c in CSV_CASES if c not in AFTER_READING])
def test_the_csv_loader_raises_the_documented_error_class(case, tmp_path):
    path = _make(case, tmp_path)
    error_class = CSV_CASES[case][1]
    with pytest.raises(error_class, match=CSV_CASES[case][2]):
        read_table(path, target="y", features=None)
    assert issubclass(error_class, InputError) and issubclass(error_class, ValueError)


def test_too_few_rows_left_after_dropna_says_so(tmp_path):
    path = write(tmp_path, "a,b,y\n" + "1,2,3\n" * 9 + "1,,3\n")
    line = one_error_line(fit_cli(path, "--dropna"))
    assert "has 9 data rows left after dropping rows with missing values" in line


def test_the_estimator_raises_the_documented_error_classes():
    X = rows("a", "b")
    y = X.a * X.b
    gaps = X.copy()
    gaps.loc[[3, 7], "a"] = np.nan
    gaps.loc[9, "b"] = np.inf
    with pytest.raises(NonFiniteError, match=r"X holds NaN or infinite values in 3 rows "):
        NaluRegressor(**FAST).fit(gaps, y)
    with pytest.raises(NonFiniteError, match=r"'a' has 2 NaN \(rows 3, 7\); 'b' has 1 infinite"):
        NaluRegressor(**FAST).fit(gaps, y)
    with pytest.raises(NonFiniteError, match=r"y holds NaN .* 'y' has 1 NaN \(row 5\)"):
        NaluRegressor(**FAST).fit(X, y.where(y.index != 5))
    words = X.astype(object)
    words.loc[2, "b"] = "seven"
    with pytest.raises(ColumnError, match=r"'b' holds 'seven' \(row 2\)"):
        NaluRegressor(**FAST).fit(words, y)
    with pytest.raises(ColumnError, match=r"columns named 'a' more than once"):
        NaluRegressor(**FAST).fit(X.set_axis(["a", "a"], axis=1), y)
    with pytest.raises(TooFewRowsError, match=r"X has 9 samples; the search needs at least 10"):
        NaluRegressor(**FAST).fit(X[:9], y[:9])
    with pytest.raises(MagnitudeError, match=r"'a' reaches .*e\+200.*Divide 'a' by a power"):
        NaluRegressor(**FAST).fit(X.assign(a=X.a * 1e200), y)
    with pytest.raises(
        MagnitudeError,
        match=r"'y' is at most .*e-19.*underflow.*Multiply 'y' by a power of ten \(e\.g\. 1e198\)",
    ):
        NaluRegressor(**FAST).fit(X, y * 1e-200)
    for error in (NonFiniteError, ColumnError, TooFewRowsError, MagnitudeError):
        assert issubclass(error, ValueError)


@pytest.mark.slow
def test_predict_names_the_bad_cells_too():
    X = rows("a", "b")
    model = NaluRegressor(**FAST).fit(X, X.a * X.b)
    gaps = X.copy()
    gaps.loc[4, "b"] = -np.inf
    with pytest.raises(NonFiniteError, match=r"'b' has 1 infinite \(row 4\)\. Drop or fill"):
        model.predict(gaps)
    with pytest.raises(NonFiniteError, match=r"'x1' has 1 infinite \(row 4\)"):
        NaluRegressor(**FAST).fit(X.to_numpy(), X.a * X.b).predict(gaps.to_numpy())


def test_a_constant_target_is_fitted_exactly_by_its_constant(tmp_path):
    # A scikit-learn user expects fitting a constant to work, so it is not an error.
    path = tmp_path / "constant.csv"
    rows("a", "b").assign(y=4.5).to_csv(path, index=False)
    result = fit_cli(path)
    assert result.exit_code == 0, result.output
    assert "Formula: y = 9/2" in result.stdout and "Exact: yes" in result.stdout


def test_constant_and_repeated_features_are_left_out_and_reported(tmp_path):
    ohms = load_suite_entry("ohms_law")
    data = ohms.assign(unit=1.0, I_copy=ohms.I)[["unit", "I", "R", "I_copy", "V"]]
    path = tmp_path / "ohms.csv"
    data.to_csv(path, index=False, float_format="%.17g")
    output = tmp_path / "model.json"
    result = fit_cli(path, "-o", output, target="V")
    assert result.exit_code == 0, result.output
    assert "Formula: V = I*R" in result.stdout
    assert (
        "Left out of the search: 'unit' (constant 1), 'I_copy' (same values as 'I'); the "
        "formula does not use them." in result.stdout
    )
    model = NaluRegressor.load(output)
    assert model.dropped_features_ == {"unit": "constant 1", "I_copy": "same values as 'I'"}
    assert list(model.feature_names_in_) == ["unit", "I", "R", "I_copy"]
    np.testing.assert_allclose(model.predict(data.drop(columns="V")), data.V, rtol=1e-12)
    predicted = runner.invoke(app, ["predict", str(output), str(path)])
    assert predicted.exit_code == 0, predicted.output
    assert predicted.stdout.splitlines()[0] == "unit,I,R,I_copy,prediction"


def test_a_search_without_the_left_out_columns_is_the_same_search():
    X = rows("a", "b").assign(k=-2.0)[["a", "k", "b"]]
    y = X.a + 2 * X.b
    full = NaluRegressor(**FAST).fit(X.assign(a2=X.a), y)
    reduced = NaluRegressor(**FAST).fit(X[["a", "b"]], y)
    assert full.formula_ == reduced.formula_
    assert full.formula_.free_symbols <= {s for s in full.result_.symbols if s.name in "ab"}
    pd.testing.assert_frame_equal(full.candidates_, reduced.candidates_)
    assert full.extrapolation_["fitted_ranges"]["k"] == (-2.0, -2.0)


def test_left_out_columns_are_also_left_out_of_explicit_extrapolation_data():
    train, wide = (load_suite_entry("celsius_to_fahrenheit", wide=w) for w in (False, True))
    X, X_wide = (f[["C"]].assign(k=3.0, C2=f.C) for f in (train, wide))
    linear = dict(max_time=5, restarts=1, steps=100, scale_steps=1, architectures=["NAU"])
    model = NaluRegressor(**linear).fit(X, train.F, X_wide, wide.F)
    assert str(model.formula_) == "9*C/5 + 32" and model.exact_
    assert model.extrapolation_["rows"] == len(wide)
    np.testing.assert_allclose(model.predict(X_wide), wide.F, rtol=1e-12)


def test_only_constant_features_give_the_constant_formula():
    X = pd.DataFrame({"c": np.full(30, 2.0), "d": np.full(30, 5.0)})
    model = NaluRegressor(**FAST).fit(X, np.full(30, 7.0))
    # Thirty copies of one row are that row with weight 30: none is left to hold out, so the
    # constant is not claimed exact (copies of the fitted row would check nothing).
    assert model.formula_ == 7 and not model.exact_
    assert "no row was left to hold out" in model.message_
    assert model.dropped_features_ == {"d": "constant 5"}


@pytest.mark.parametrize(
    "names, target",
    [(["lambda", "pi", "E"], "N"), (["I", "S", "mass (kg)", "α"], "class")],
)
def test_column_names_that_are_keywords_or_sympy_names_work(names, target, tmp_path):
    frame = rows(*names)
    frame[target] = frame[names[0]] * frame[names[1]]
    path = tmp_path / "names.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    output = tmp_path / "model.json"
    result = fit_cli(path, "-o", output, target=target)
    assert result.exit_code == 0, result.output
    assert f"Formula: {target} = {names[0]}*{names[1]}" in result.stdout
    source = runner.invoke(app, ["export", str(output), "--format", "python", "--backend", "math"])
    namespace = {}
    exec(source.stdout, namespace)
    assert namespace["formula"](*[3.0, 0.5, 1.0, 1.0][: len(names)]) == 1.5
    predicted = runner.invoke(app, ["predict", str(output), str(path), "--column", "guess"])
    assert predicted.exit_code == 0, predicted.output
    values = pd.read_csv(io.StringIO(predicted.stdout))
    np.testing.assert_allclose(values["guess"], frame[target], rtol=1e-12)


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_semicolon_tab_and_bar_separators_are_detected(separator, tmp_path):
    frame = rows("a", "b").assign(y=lambda f: f.a * f.b)
    path = tmp_path / "data.txt"
    frame.to_csv(path, sep=separator, index=False, float_format="%.17g")
    table = read_table(path, target="y", features=None)
    pd.testing.assert_frame_equal(table.X, frame[["a", "b"]])
    pd.testing.assert_series_equal(table.y, frame.y)
    result = fit_cli(path, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == "a*b\n"


@pytest.mark.slow
def test_magnitudes_from_1e_minus_12_to_1e12_give_a_finite_formula(tmp_path):
    frame = rows("a", "b") * [1e-12, 1e12]
    model = NaluRegressor(**FAST).fit(frame, frame.a * frame.b)
    assert str(model.formula_) == "a*b" and model.exact_
    for y in (frame.a / frame.b, frame.a + frame.b, frame.a * 1e12 + frame.b * 1e-12):
        model = NaluRegressor(**FAST).fit(frame, y)
        assert not model.formula_.has(*UNDEFINED), model.formula_
        assert np.isfinite(model.predict(frame)).all(), model.formula_


def test_zeros_and_negatives_never_give_nan(tmp_path):
    rng = np.random.default_rng(7)
    x = np.concatenate([[0.0, -0.0, 0.0], rng.uniform(-3, 3, 57)])
    z = np.concatenate([rng.uniform(-3, 3, 57), [0.0, 0.0, 0.0]])
    frame = pd.DataFrame({"x": x, "z": z, "y": x * z - z})
    path = tmp_path / "zeros.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    output = tmp_path / "model.json"
    result = fit_cli(path, "-o", output)
    assert result.exit_code in (0, 3), result.output
    assert "nan" not in result.stdout.split("Formula:")[1].lower()
    model = NaluRegressor.load(output)
    assert not model.formula_.has(*UNDEFINED), model.formula_
    for index in model.candidates_.index:
        assert np.isfinite(model.predict(frame[["x", "z"]], index=index)).all()
    predicted = runner.invoke(app, ["predict", str(output), str(path)])
    assert predicted.exit_code == 0 and "warning" not in predicted.stderr
    assert "nan" not in predicted.stdout.lower()


def test_predict_warns_about_rows_where_the_formula_is_undefined(tmp_path):
    frame = rows("a", "b")
    model = NaluRegressor(**FAST).fit(frame, frame.a / frame.b)
    assert str(model.formula_) == "a/b"
    model.save(tmp_path / "model.json")
    data = write(tmp_path, "a,b\n1,2\n3,0\n0,0\n")
    result = runner.invoke(app, ["predict", str(tmp_path / "model.json"), str(data)])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1:] == ["1,2,0.5", "3,0,inf", "0,0,nan"]
    assert (
        f"warning: the formula a/b is undefined or infinite on 2 rows of {data} (lines 3, 4)"
        in result.stderr.replace("\n", "")
    )


def test_an_existing_output_is_left_untouched_without_force(tmp_path):
    path = tmp_path / "data.csv"
    rows("a", "b", "y").to_csv(path, index=False)
    output = write(tmp_path, "precious\n", name="model.json")
    line = one_error_line(fit_cli(path, "-o", output))
    assert line == f"error: {output} already exists; pass --force to overwrite it."
    assert output.read_text(encoding="utf-8") == "precious\n"
    for command in (["predict", output, path], ["export", output]):
        line = one_error_line(runner.invoke(app, [*map(str, command), "-o", str(output)]))
        assert "already exists; pass --force" in line
    assert output.read_text(encoding="utf-8") == "precious\n"


@pytest.mark.parametrize("case", ["missing file", "NaN, inf and empty cells"])
def test_the_installed_executable_answers_bad_input_in_one_line(case, tmp_path):
    executable = shutil.which("nalu-sr")
    assert executable, "the nalu-sr executable is not installed; run `pip install -e .`"
    path = _make(case, tmp_path)
    completed = subprocess.run(
        [executable, "fit", str(path), "--target", "y"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(CSV_CASES[case][2], lines[0]), completed.stderr


# --- properties -----------------------------------------------------------------------

NUMBERS = st.floats(-1e12, 1e12, allow_nan=False)
SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf])
NAMES = st.lists(
    st.sampled_from(["a", "b c", "lambda", "E", "I", "pi", "α", "mass (kg)", "x_1", "N"]),
    min_size=2,
    max_size=4,
    unique=True,
)


@st.composite
def tables(draw, rows: st.SearchStrategy[int], columns: st.SearchStrategy[int]) -> np.ndarray:
    """Finite numbers (zeros, repeats and constant columns included), then up to three cells
    made NaN or infinite."""
    shape = (draw(rows), draw(columns))
    values = draw(arrays(np.float64, shape, elements=NUMBERS | st.sampled_from([0.0, 1.0, -2.0])))
    for _ in range(draw(st.integers(1, 3)) if draw(st.booleans()) else 0):
        cell = (draw(st.integers(0, shape[0] - 1)), draw(st.integers(0, shape[1] - 1)))
        values[cell] = draw(SPECIAL)
    return values


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=NAMES,
    data=st.data(),
    separator=st.sampled_from([",", ";", "\t"]),
    dropna=st.booleans(),
)
def test_the_csv_loader_returns_the_written_frame_or_a_documented_error(
    names, data, separator, dropna, tmp_path
):
    values = data.draw(tables(st.integers(1, 12), st.just(len(names))))
    frame = pd.DataFrame(values, columns=names)
    path = tmp_path / "data.csv"
    frame.to_csv(path, sep=separator, index=False)
    # A row of NaN is written as empty cells only, which reads as a blank line: skipped.
    blank = np.isnan(values).all(axis=1)
    finite = np.isfinite(values).all(axis=1)
    try:
        table = read_table(path, target=names[-1], features=None, dropna=dropna)
    except CSVError as error:
        assert blank.all() and "has a header but no data rows" in str(error)
        return
    except NonFiniteError as error:
        assert not (finite | blank).all() and (not dropna or not finite.any())
        assert "missing or infinite" in str(error)
        return
    assert (finite | blank).all() or dropna
    expected = frame[finite] if dropna else frame[~blank]
    expected = expected.reset_index(drop=True)
    pd.testing.assert_frame_equal(table.X, expected[names[:-1]])
    pd.testing.assert_series_equal(table.y, expected[names[-1]])
    assert table.dropped_lines == [i + 2 for i in np.flatnonzero(~finite & ~blank)]


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(values=tables(st.integers(10, 16), st.integers(2, 4)))
def test_fit_raises_an_input_error_or_predicts_finite_values(values):
    X = pd.DataFrame(values[:, :-1], columns=[f"x{j}" for j in range(values.shape[1] - 1)])
    y = values[:, -1]
    tiny = dict(max_time=5, restarts=1, steps=100, scale_steps=0, architectures=["NAU", "NMU"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = NaluRegressor(**tiny).fit(X, y)
    except InputError as error:
        event(type(error).__name__)
        assert isinstance(error, NonFiniteError | MagnitudeError), error
        assert isinstance(error, MagnitudeError) or not np.isfinite(values).all()
        return
    event("fitted")
    assert np.isfinite(values).all()
    assert not model.formula_.has(*UNDEFINED), model.formula_
    assert np.isfinite(model.predict(X)).all(), model.formula_
