import dataclasses
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

import nalu_sr.estimator as estimator_module
from nalu_sr import NaluRegressor, __version__, find_formula
from nalu_sr.cli import app, render
from nalu_sr.datasets import list_suite

REPO = Path(__file__).resolve().parents[1]
OHMS = REPO / "datasets" / "ohms_law.csv"
CELSIUS = REPO / "datasets" / "celsius_to_fahrenheit.csv"
CELSIUS_WIDE = REPO / "datasets" / "celsius_to_fahrenheit_wide.csv"
# Small searches that still find I*R and 9*C/5 + 32.
PRODUCT = ["--restarts", "1", "--steps", "300", "--architectures", "NAU,NMU", "--max-time", "10"]
LINEAR = ["--restarts", "1", "--steps", "100", "--architectures", "NAU", "--max-time", "5"]

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    result = run("fit", OHMS, "--target", "V", *PRODUCT, "--output", folder / "model.json")
    return result, folder / "model.json"


def test_fit_prints_candidates_and_the_checked_formula(fitted):
    result, _ = fitted
    assert result.exit_code == 0, result.output
    assert "Candidates" in result.stdout
    assert "Formula: V = I*R" in result.stdout
    assert "Exact: yes" in result.stdout
    assert "Checked on: 100 rows" in result.stdout
    assert "Exact formula found" in result.stdout


def test_fit_writes_a_model_file_that_loads(fitted):
    result, path = fitted
    assert f"Wrote {path}" in result.stdout.replace("\n", "")
    model = NaluRegressor.load(path)
    assert str(model.formula_) == "I*R" and model.exact_


def test_fit_refuses_to_overwrite_without_force_before_searching(fitted):
    _, path = fitted
    before = path.read_text(encoding="utf-8")
    result = run("fit", OHMS, "--target", "V", "--output", path)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path} already exists; pass --force to overwrite it."
    assert path.read_text(encoding="utf-8") == before


def test_fit_exports_latex_to_a_file_and_checks_explicit_extrapolation_data(tmp_path):
    output = tmp_path / "formula.tex"
    result = run(
        "fit", CELSIUS, "-t", "F", *LINEAR, "--extrapolation-data", CELSIUS_WIDE,
        "--export", "latex", "-o", output,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf-8") == "\\frac{9 C}{5} + 32\n"
    assert "Checked on: 500 rows from the extrapolation data" in result.stdout


def test_fit_uses_the_listed_features_in_order_and_records_the_seed(tmp_path):
    output = tmp_path / "model.json"
    data = REPO / "datasets" / "rectangle_perimeter.csv"
    result = run("fit", data, "-t", "P", "-f", "h, w", "--seed", 3, *LINEAR, "-q", "-o", output)
    assert result.exit_code == 0, result.output
    model = NaluRegressor.load(output)
    assert result.stdout == f"{model.formula_}\n"
    assert {s.name for s in model.formula_.free_symbols} == {"h", "w"}
    assert list(model.feature_names_in_) == ["h", "w"]
    assert model.random_state == 3


def test_fit_without_exact_formula_exits_3_and_still_writes(tmp_path):
    output = tmp_path / "model.json"
    result = run("fit", OHMS, "-t", "V", *LINEAR, "--quiet", "-o", output)
    assert result.exit_code == 3
    assert NaluRegressor.load(output).exact_ is False
    assert result.stdout.strip() == str(NaluRegressor.load(output).formula_)


def test_a_formula_with_an_estimated_constant_is_reported_as_holding_not_exact(tmp_path):
    rng = np.random.default_rng(4)
    T, V = rng.uniform(1, 3, 400), rng.uniform(1, 2, 400)
    P = 8.314 * T / V * (1 + 0.01 * rng.standard_normal(400))
    data = tmp_path / "gas.csv"
    pd.DataFrame({"T": T, "V": V, "P": P}).to_csv(data, index=False)
    output = tmp_path / "model.json"
    result = run("fit", data, "-t", "P", *PRODUCT, "-o", output)
    assert result.exit_code == 3
    assert "Exact: no: it holds within the noise, with estimated constants" in result.stdout
    model = NaluRegressor.load(output)
    assert model.holds_ and not model.exact_
    assert model.candidates_.loc[model.chosen_, "holds"]


def test_interrupted_fit_prints_and_writes_the_best_so_far_and_exits_130(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        return dataclasses.replace(find_formula(*args, **kwargs), interrupted=True)

    monkeypatch.setattr(estimator_module, "find_formula", interrupted)
    output = tmp_path / "model.json"
    result = run("fit", CELSIUS, "-t", "F", *LINEAR, "-o", output)
    assert result.exit_code == 130
    assert "Formula: F = 9*C/5 + 32" in result.stdout
    assert "interrupted" in result.stderr
    assert NaluRegressor.load(output).result_.interrupted


def test_interrupt_before_any_formula_exits_130_and_writes_nothing(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(NaluRegressor, "fit", interrupt)
    output = tmp_path / "model.json"
    result = run("fit", CELSIUS, "-t", "F", "-o", output)
    assert result.exit_code == 130
    assert "nothing written" in result.stderr
    assert not output.exists()


def test_predict_writes_a_csv_with_a_prediction_column(fitted, tmp_path):
    _, model = fitted
    output = tmp_path / "predictions.csv"
    result = run("predict", model, OHMS, "--output", output)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(output)
    data = pd.read_csv(OHMS)
    assert list(table.columns) == ["I", "R", "prediction"]
    np.testing.assert_allclose(table["prediction"], data["I"] * data["R"], rtol=1e-15)


def test_predict_prints_to_stdout_and_can_use_another_candidate(fitted):
    _, model = fitted
    result = run("predict", model, OHMS, "--index", 1, "--column", "V_hat")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "I,R,V_hat" and len(lines) == 501
    expected = NaluRegressor.load(model).predict(pd.read_csv(OHMS)[["I", "R"]], index=1)
    assert float(lines[1].split(",")[2]) == expected[0]


def test_predict_names_the_missing_feature_column(fitted, tmp_path):
    _, model = fitted
    data = tmp_path / "data.csv"
    data.write_text("I,r\n1,2\n", encoding="utf-8")
    result = run("predict", model, data)
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("Did you mean 'r'?")


def test_export_latex_python_and_sympy(fitted):
    _, model = fitted
    assert run("export", model).stdout == "I R\n"
    srepr = run("export", model, "--format", "sympy").stdout
    assert srepr == "Mul(Symbol('I', real=True), Symbol('R', real=True))\n"
    source = run("export", model, "--format", "python", "--backend", "math").stdout
    namespace = {}
    exec(source, namespace)
    assert namespace["formula"](1.5, 4.0) == 6.0


def test_exported_python_reproduces_predict(fitted, tmp_path):
    _, model = fitted
    output = tmp_path / "formula.py"
    assert run("export", model, "--format", "python", "--index", 2, "-o", output).exit_code == 0
    namespace = {}
    exec(output.read_text(encoding="utf-8"), namespace)
    data = pd.read_csv(OHMS)
    expected = NaluRegressor.load(model).predict(data[["I", "R"]], index=2)
    got = namespace["formula"](data["I"].to_numpy(), data["R"].to_numpy())
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_fit_can_print_the_model_json(tmp_path):
    result = run("fit", CELSIUS, "-t", "F", *LINEAR, "--quiet", "--export", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["formula"]["text"] == "9*C/5 + 32"


def test_datasets_list_shows_every_suite_entry():
    result = run("datasets", "list")
    assert result.exit_code == 0
    for name in list_suite():
        assert name in result.stdout


def test_datasets_make_writes_the_tables_and_refuses_to_overwrite(tmp_path):
    result = run("datasets", "make", "ohms_law", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ohms_law.csv",
        "ohms_law.json",
        "ohms_law_wide.csv",
    ]
    assert (tmp_path / "ohms_law.csv").read_bytes() == OHMS.read_bytes()
    again = run("datasets", "make", "ohms_law", "--out", tmp_path)
    assert again.exit_code == 2 and again.stderr.startswith("error: refusing to overwrite")
    assert run("datasets", "make", "ohms_law", "--out", tmp_path, "--force").exit_code == 0


def test_datasets_make_suggests_a_close_name(tmp_path):
    result = run("datasets", "make", "ohm_law", "--out", tmp_path)
    assert result.exit_code == 2
    assert "Did you mean 'ohms_law'?" in result.stderr


def test_version_prints_the_package_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"nalu-sr {__version__}\n"


@pytest.mark.parametrize("command", [[], ["fit"], ["predict"], ["export"], ["datasets"]])
def test_help_has_examples_and_exit_codes(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "nalu-sr" in result.stdout
    if command != ["datasets"]:
        assert "Example" in result.stdout
    assert "Exit codes" in result.stdout


def squeezed(text: str) -> str:
    """``text`` without white space, so that where the help is wrapped does not matter."""
    return "".join(text.split())


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["fit"],
        ["predict"],
        ["export"],
        ["datasets"],
        ["datasets", "list"],
        ["datasets", "make"],
    ],
)
def test_help_prints_every_help_text_as_written(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    shown = squeezed(result.stdout)
    click_command = typer.main.get_command(app)
    for name in command:
        click_command = click_command.commands[name]
    params = [getattr(param, "help", None) for param in click_command.params]
    for text in filter(None, [click_command.help, click_command.epilog, *params]):
        assert squeezed(text) in shown, text


def test_fit_help_shows_the_dask_extra_in_brackets():
    assert "pipinstall'nalu-sr[dask]'" in squeezed(run("fit", "--help").stdout)


def test_brackets_and_colons_in_column_and_file_names_print_as_written(tmp_path):
    data = pd.read_csv(OHMS).rename(columns={"I": "x[1]", "R": "x[2]", "V": "y[0]"})
    data.loc[3, "x[1]"] = np.nan
    path = tmp_path / "data[1].csv"
    data.to_csv(path, index=False)
    output = tmp_path / "model[red]:smile:.json"
    result = run("fit", path, "-t", "y[0]", *PRODUCT, "--dropna", "-o", output)
    assert result.exit_code == 0, result.output
    assert "Formula: y[0] = x[1]*x[2]" in result.stdout
    assert "Fitted on: x[1] in [" in result.stdout
    assert f"Wrote {output}" in result.stdout.replace("\n", "")
    assert f"{path}: dropped 1 row with missing or infinite values (line 5)." in (
        result.stderr.replace("\n", "")
    )


def test_the_progress_bar_shows_a_description_with_brackets_as_written():
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with render.progress_bar(console) as update:
        update(1, 2, "NAU on 1/y[red]")
    assert "trained NAU on 1/y[red]" in console.file.getvalue()


BAD_INPUTS = {
    "missing file": (None, "does not exist"),
    "empty file": ("", "is empty"),
    "header only": ("I,R,V\n", "has a header but no data rows"),
    "duplicate columns": ("I,I,V\n1,2,3\n", "'I' appear more than once"),
    "unknown target": ("I,R,volts\n1,2,3\n", "no target column 'V'.*Did you mean 'volts'"),
    "text in a column": ("I,R,V\n1,2,3\n1,abc,3\n", "'R' holds 'abc' on line 3"),
    "missing values": ("I,R,V\n1,2,3\n1,,3\n\n2,2,nan\n", r"2 rows .*\(lines 3, 5\).*--dropna"),
    "decimal commas": ("I;R;V\n1,5;2;3\n", "decimal comma"),
    "one column": ("I R V\n1 2 3\n", "single column"),
    "too few rows": ("I;R;V\n1;2;2\n2;2;4\n", "at least 10 samples"),
    "not utf-8": (b"I,R,V\n\xff\xfe,1,2\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_and_no_traceback(case, tmp_path):
    content, message = BAD_INPUTS[case]
    path = tmp_path / "data.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["fit", str(path), "--target", "V", "--quiet"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_dropna_drops_reported_rows_and_fits(tmp_path):
    data = pd.read_csv(CELSIUS)
    data.loc[[3, 7], "C"] = np.nan
    path = tmp_path / "gaps.csv"
    data.to_csv(path, index=False)
    result = run("fit", path, "-t", "F", *LINEAR, "--dropna")
    assert result.exit_code == 0, result.output
    assert f"{path}: dropped 2 rows with missing or infinite values (lines 5, 9)." in (
        result.stderr.replace("\n", "")
    )


def test_semicolon_and_tab_separated_files_are_read(tmp_path):
    data = pd.read_csv(CELSIUS)
    for sep, name in ((";", "semi.csv"), ("\t", "tab.tsv")):
        path = tmp_path / name
        data.to_csv(path, sep=sep, index=False, float_format="%.17g")
        result = run("fit", path, "-t", "F", *LINEAR, "--quiet")
        assert result.stdout.strip() == "9*C/5 + 32", result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["predict", "nope.json", OHMS], "nope.json: No such file or directory"),
        (["predict", REPO / "datasets" / "ohms_law.json", OHMS], "not a nalu-sr model file"),
        (["export", REPO / "datasets" / "ohms_law.csv"], "not valid JSON"),
    ],
)
def test_bad_model_file_exits_2_with_one_line(args, message):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


@pytest.mark.slow
def test_installed_executable_finds_ohms_law(tmp_path):
    executable = shutil.which("nalu-sr")
    assert executable, "the nalu-sr executable is not installed; run `pip install -e .`"
    output = tmp_path / "model.json"
    completed = subprocess.run(
        [executable, "fit", str(OHMS), "--target", "V", "--quiet", *PRODUCT, "-o", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "I*R\n"
    assert completed.stderr == ""
    assert NaluRegressor.load(output).exact_
