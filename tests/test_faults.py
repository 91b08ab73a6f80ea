"""Faults lose nothing: a diverging copy is re-seeded and counted, Ctrl-C keeps the best formula
so far, files are written whole or not at all, and broken model files are named as such."""

import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import nalu_sr.files as files
import nalu_sr.model_file as model_file
import nalu_sr.search.engine as engine
import nalu_sr.search.runner as runner_module
from nalu_sr import NaluRegressor
from nalu_sr.cli import app
from nalu_sr.datasets import load_suite_entry
from nalu_sr.errors import ModelFileError
from nalu_sr.files import write_text_atomic
from nalu_sr.training import per_copy_mse

OHMS = Path(__file__).resolve().parents[1] / "datasets" / "ohms_law.csv"
TINY = ["--restarts", "1", "--steps", "300", "--architectures", "NAU,NMU", "--max-time", "10"]
FAST = dict(max_time=10, restarts=1, steps=300, scale_steps=2, architectures=["NAU", "NMU"])

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def ohms():
    frame = load_suite_entry("ohms_law")
    return frame[["I", "R"]], frame["V"]


@pytest.fixture(scope="module")
def saved_model(ohms, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.json"
    NaluRegressor(**FAST).fit(*ohms).save(path)
    return path


# --- NaN and Inf during training ---------------------------------------------------------


@pytest.fixture
def poisoned(monkeypatch):
    """Every training run sees a NaN loss on its first copy at its first step."""
    real_train = engine.train

    def train(ensemble, data, **kwargs):
        calls = itertools.count()
        inner = kwargs.pop("loss", per_copy_mse)

        def loss(prediction, target):
            mse = inner(prediction, target)
            if next(calls) == 0:
                mse = torch.where(torch.arange(len(mse)) == 0, torch.nan, mse)
            return mse

        return real_train(ensemble, data, loss=loss, **kwargs)

    monkeypatch.setattr(engine, "train", train)


@pytest.mark.slow
def test_a_nan_during_training_is_reseeded_counted_and_the_search_goes_on(poisoned, ohms):
    model = NaluRegressor(**FAST).fit(*ohms)
    assert str(model.formula_) == "I*R" and model.exact_
    assert model.result_.reseeded == len(model.result_.jobs) >= 1


def test_the_command_line_reports_reseeded_copies_and_the_model_file_keeps_the_count(
    poisoned, tmp_path
):
    output = tmp_path / "model.json"
    result = run("fit", OHMS, "-t", "V", *TINY, "-o", output)
    assert result.exit_code == 0, result.output
    reseeded = NaluRegressor.load(output).result_.reseeded
    assert reseeded >= 1
    assert (
        f"Re-seeded: {reseeded} trained cop{'ies' if reseeded > 1 else 'y'} went NaN or "
        "infinite and started afresh; the search went on." in result.stdout
    )
    assert "Formula: V = I*R" in result.stdout


# --- Ctrl-C --------------------------------------------------------------------------------


def interrupt_after(monkeypatch, jobs: int) -> None:
    """Ctrl-C arrives when the search starts training job number ``jobs + 1``."""
    real_run_job = runner_module.run_job
    started = itertools.count()

    def run_job(*args, **kwargs):
        if next(started) >= jobs:
            raise KeyboardInterrupt
        return real_run_job(*args, **kwargs)

    monkeypatch.setattr(runner_module, "run_job", run_job)


def test_ctrl_c_keeps_the_best_formula_so_far_in_the_library(monkeypatch, ohms):
    interrupt_after(monkeypatch, 1)
    with pytest.warns(UserWarning, match="interrupted; the model keeps the best formula"):
        model = NaluRegressor(**FAST).fit(*ohms)
    assert model.result_.interrupted and model.result_.jobs == ["NAU on y"]
    assert model.formula_.free_symbols and not model.exact_
    assert np.isfinite(model.predict(ohms[0])).all()
    # The architectures not trained may hold the formula: the message must not say otherwise.
    assert model.message_.startswith(
        "No exact formula among the architectures trained before the interruption;"
    )


def test_a_spent_time_budget_is_named_as_the_reason_for_no_exact_formula(ohms):
    two_groups = ["NAU", "NAU->NMU[2]"]  # sums first, then products of sums
    model = NaluRegressor(**{**FAST, "max_time": 1e-12, "architectures": two_groups}).fit(*ohms)
    assert model.result_.timed_out and model.result_.jobs == ["NAU on y"]
    assert not model.exact_
    assert "trained before max_time ended the search (a rerun may differ" in model.message_
    assert model.timed_out_


@pytest.mark.parametrize("jobs", [0, 1])
def test_ctrl_c_during_fit_prints_and_writes_the_best_so_far_and_exits_130(
    monkeypatch, jobs, tmp_path
):
    interrupt_after(monkeypatch, jobs)
    output = tmp_path / "model.json"
    result = run("fit", OHMS, "-t", "V", *TINY, "-o", output)
    assert result.exit_code == 130, result.output
    model = NaluRegressor.load(output)
    assert model.result_.interrupted and len(model.result_.jobs) == jobs
    assert f"Formula: V = {model.formula_}" in result.stdout
    assert f"Wrote {output}" in result.stdout.replace("\n", "")
    assert "Search interrupted: the result above is the best found so far." in result.stderr
    if jobs == 0:
        # Nothing trained yet: the best so far is the constant every search starts from.
        assert model.formula_.is_number


@pytest.mark.slow
def test_a_real_ctrl_c_ends_fit_with_exit_130_and_never_a_partial_file(tmp_path):
    executable = shutil.which("nalu-sr")
    assert executable, "the nalu-sr executable is not installed; run `pip install -e .`"
    output = tmp_path / "model.json"
    process = subprocess.Popen(
        [executable, "fit", str(OHMS), "-t", "V", "--restarts", "1", "--steps", "200000",
         "--architectures", "NAU,NMU", "-o", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        # A shell running us in the background ignores SIGINT, and children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    time.sleep(12)  # usually inside the first training run by then; any moment must do
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["model.json"])
    if output.exists():
        model = NaluRegressor.load(output)
        assert model.result_.interrupted
        assert f"Formula: V = {model.formula_}" in stdout
        assert "Search interrupted: the result above is the best found so far." in stderr
    else:
        assert "Interrupted" in stderr


# --- atomic writes -------------------------------------------------------------------------


class _FailingFile:
    """A text file that writes half of what it is given, then fails with ``error``."""

    def __init__(self, handle, error: BaseException):
        self.handle, self.error = handle, error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        raise self.error

    def __getattr__(self, name):
        return getattr(self.handle, name)


def fail_mid_write(monkeypatch, error: BaseException) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        files.os, "fdopen", lambda *a, **k: _FailingFile(real_fdopen(*a, **k), error)
    )


def test_a_failure_mid_write_leaves_the_old_file_and_no_temporary_one(monkeypatch, tmp_path):
    path = tmp_path / "model.json"
    path.write_text("old\n", encoding="utf-8")
    fail_mid_write(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space left on device") as raised:
        write_text_atomic(path, "new text\n" * 1000, overwrite=True)
    assert raised.value.filename == str(path)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["model.json"]


def test_ctrl_c_mid_write_leaves_no_file_behind(monkeypatch, tmp_path):
    fail_mid_write(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(tmp_path / "model.json", "new text\n" * 1000)
    assert os.listdir(tmp_path) == []


def test_a_failed_rename_leaves_the_old_file(monkeypatch, tmp_path):
    path = tmp_path / "model.json"
    path.write_text("old\n", encoding="utf-8")

    def replace(source, target):
        raise PermissionError(errno.EACCES, "Permission denied", str(source))

    monkeypatch.setattr(files.os, "replace", replace)
    with pytest.raises(PermissionError) as raised:
        write_text_atomic(path, "new\n", overwrite=True)
    assert raised.value.filename == str(path)  # the user's file, not the temporary one
    assert path.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["model.json"]


def test_a_file_that_appears_during_the_write_is_not_overwritten(monkeypatch, tmp_path):
    path = tmp_path / "model.json"
    real_mkstemp = files.tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        path.write_text("written by someone else\n", encoding="utf-8")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    with pytest.raises(FileExistsError, match="already exists"):
        write_text_atomic(path, "ours\n", overwrite=False)
    assert path.read_text(encoding="utf-8") == "written by someone else\n"
    assert os.listdir(tmp_path) == ["model.json"]


def test_fit_prints_the_formula_even_when_the_output_cannot_be_written(monkeypatch, tmp_path):
    output = tmp_path / "model.json"
    output.write_text("old\n", encoding="utf-8")
    fail_mid_write(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    result = run("fit", OHMS, "-t", "V", *TINY, "-o", output, "--force")
    line = one_error_line(result)
    assert line == f"error: {output}: No space left on device"
    assert "Formula: V = I*R" in result.stdout
    assert output.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["model.json"]


def test_predict_and_export_keep_an_existing_output_on_a_failed_write(
    monkeypatch, saved_model, tmp_path
):
    output = tmp_path / "out.txt"
    output.write_text("old\n", encoding="utf-8")
    fail_mid_write(monkeypatch, OSError(errno.EIO, "Input/output error"))
    for command in (["predict", saved_model, OHMS], ["export", saved_model]):
        line = one_error_line(run(*command, "-o", output, "--force"))
        assert line == f"error: {output}: Input/output error"
        assert output.read_text(encoding="utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["out.txt"]


# --- broken model files --------------------------------------------------------------------


def _broken(text: str) -> dict[str, str | bytes]:
    data = json.loads(text)
    chosen_out_of_range = dict(data, chosen=len(data["candidates"]["rows"]) + 5)
    code_in_a_formula = json.loads(text)
    code_in_a_formula["formula"]["tree"] = {"op": "__import__", "args": [{"integer": 1}]}
    wrong_type = json.loads(text)
    wrong_type["candidates"]["rows"][0]["complexity"] = "three"
    return {
        "empty": "",
        "truncated at 10%": text[: len(text) // 10],
        "truncated at 50%": text[: len(text) // 2],
        "truncated by one character": text.rstrip()[:-1],
        "binary": bytes(range(256)),
        "a list": "[1, 2, 3]",
        "null": "null",
        "another program's JSON": json.dumps({"name": "left-pad", "version": "1.3.0"}),
        "nested too deep": "[" * 100_000 + "]" * 100_000,
        "newer format": json.dumps(dict(data, format_version=99)),
        "chosen out of range": json.dumps(chosen_out_of_range),
        "code in a formula": json.dumps(code_in_a_formula),
        "text where a number belongs": json.dumps(wrong_type),
    }


BROKEN = {
    "empty": "not valid JSON",
    "truncated at 10%": "not valid JSON",
    "truncated at 50%": "not valid JSON",
    "truncated by one character": "not valid JSON",
    "binary": "not UTF-8 text",
    "a list": 'has no "format": "nalu-sr-model" field',
    "null": 'has no "format": "nalu-sr-model" field',
    "another program's JSON": 'has no "format": "nalu-sr-model" field',
    "nested too deep": "not valid JSON",
    "newer format": "format version 99, newer than the 1 this nalu-sr",
    "chosen out of range": r"\$\.chosen = \d+ is not a row of the candidates table",
    "code in a formula": r"\$\.formula\.tree",
    "text where a number belongs": r"\$\.candidates\.rows\[0\]\.complexity must be int",
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_model_file_is_a_model_file_error_and_exit_2(case, saved_model, tmp_path):
    content = _broken(saved_model.read_text(encoding="utf-8"))[case]
    path = tmp_path / "model.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelFileError, match=BROKEN[case]) as raised:
        NaluRegressor.load(path)
    assert str(raised.value).startswith(f"{path}: ")
    for command in (["predict", path, OHMS], ["export", path]):
        line = one_error_line(run(*command))
        assert line == f"error: {raised.value}"


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_damage_to_a_model_file_loads_or_is_a_model_file_error(saved_model, data):
    text = saved_model.read_text(encoding="utf-8")
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 40)))
    insert = data.draw(st.text(alphabet='{}[]":,0123456789.-eE nulltrfasIRopx\\', max_size=12))
    damaged = text[:start] + insert + text[end:]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record = model_file.loads_record(damaged, NaluRegressor().get_params())
            model = NaluRegressor.from_record(record)
    except ModelFileError:
        return
    # What loads is a usable model: its formula gives one value per row.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rows given without the names fitted on
        values = model.predict(np.full((3, model.n_features_in_), 2.0))
    assert values.shape == (3,)
