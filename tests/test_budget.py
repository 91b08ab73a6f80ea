"""The amount of search is set by work, not by time: a plan of stages that ends on its own
(``effort``), an optional time cap (``max_time``) that says when it ended the search, and an
end as soon as the best formula leaves only noise."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sympy

from nalu_sr import NaluRegressor
from nalu_sr.search import TrainingSettings, find_formula
from nalu_sr.search.engine import Job
from nalu_sr.search.runner import FUNCTION_PLAN_RUNS, PLAN_RUNS, plan_within
from nalu_sr.search.stacks import Family

SMALL = TrainingSettings(restarts=1, steps=60, scale_steps=0)


def _jobs(
    chunks_per_stage: list[int], whitened_stage: int | None = None, beyond: int | None = None
) -> list[Job]:
    """Fake jobs, ``chunks`` runs per stage; stages from ``beyond`` on are of the family
    beyond arithmetic."""
    jobs = []
    for stage, chunks in enumerate(chunks_per_stage):
        family = Family.FUNCTIONS if beyond is not None and stage >= beyond else Family.ARITHMETIC
        architecture = SimpleNamespace(
            whitened=stage == whitened_stage,
            kind=SimpleNamespace(solve=None),
            stage_key=lambda transform, family=family: SimpleNamespace(family=family),
        )
        jobs += [Job(stage, architecture, "y", 0) for _ in range(chunks)]
    return jobs


def test_the_plan_keeps_the_first_stages_whose_runs_fit_the_effort():
    jobs = _jobs([6, 12, 15, 4])
    kept, left = plan_within(jobs, SMALL, effort=1.0)
    assert PLAN_RUNS == 36
    assert {job.stage for job in kept} == {0, 1, 2} and left == 1  # 33 runs; 37 with stage 3
    kept, left = plan_within(jobs, SMALL, effort=0.5)
    assert {job.stage for job in kept} == {0, 1} and left == 2
    kept, left = plan_within(jobs, SMALL, effort=2.0)
    assert len(kept) == len(jobs) and left == 0


def test_the_stages_beyond_arithmetic_have_a_share_of_the_plan_of_their_own():
    # Arithmetic stages of 30 and 10 runs: the second does not fit its 36; the stages beyond
    # arithmetic are planned from their own share all the same, in order, until one does not
    # fit it.
    jobs = _jobs([30, 10, 8, 6, 6], beyond=2)
    kept, left = plan_within(jobs, SMALL, effort=1.0)
    assert FUNCTION_PLAN_RUNS == 16
    assert {job.stage for job in kept} == {0, 2, 3} and left == 2
    kept, left = plan_within(jobs, SMALL, effort=2.0)
    assert len(kept) == len(jobs) and left == 0


def test_the_first_stage_is_always_planned_and_a_whitened_run_counts_its_steps():
    kept, left = plan_within(_jobs([100, 1]), SMALL, effort=0.01)
    assert {job.stage for job in kept} == {0} and left == 1
    settings = TrainingSettings()
    # A whitened chunk trains up to 14000 steps: about nine plain runs of 1500.
    per_run = settings.whitened_steps / settings.steps
    kept, _ = plan_within(_jobs([1, 5], whitened_stage=1), settings, effort=5 * per_run / 36)
    assert {job.stage for job in kept} == {0}
    kept, _ = plan_within(_jobs([1, 5], whitened_stage=1), settings, effort=6 * per_run / 36)
    assert {job.stage for job in kept} == {0, 1}


@pytest.fixture(scope="module")
def wavy():
    """A noise-free target outside the search space (a sine of a product with a cube, which
    neither the listed arguments nor the trained function stacks hold): no stage finds it,
    none leaves noise."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(1, 3, 300), "b": rng.uniform(1, 3, 300)})
    return X, X.a * np.sin(X.a * X.b**3 / 8) + X.b


def test_effort_sets_how_many_stages_run_and_the_verdict_says_what_was_left(wavy):
    small = find_formula(*wavy, settings=SMALL, effort=3.5 / 36)
    larger = find_formula(*wavy, settings=SMALL, effort=6.5 / 36)
    assert 0 < len(small.jobs) < len(larger.jobs)
    assert small.stages_left > larger.stages_left > 0
    assert not small.explained and not small.timed_out
    assert f"{small.stages_left} stages of wider stacks left" in small.message
    assert "raise effort" in small.message


def test_pure_noise_ends_the_search_once_a_formula_leaves_only_noise():
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(200, 3))
    y = rng.normal(size=200)  # a target no input explains
    result = find_formula(X, y, settings=SMALL)
    assert result.explained and not result.exact and not result.timed_out
    # The first stage's trained jobs (NAU and NMU), then only the closed-form stages left in
    # the plan, which a search stopped on noisy data still runs.
    closed_form = ("P/Q", "f(u) listed", "m*f(u)*exp(v) listed", "f(u) + g(v) listed")
    trained = [job for job in result.jobs if not job.startswith(closed_form)]
    assert trained == ["NAU on y", "NMU on y"]
    assert "residual that the inputs do not predict" in result.message


def test_a_noise_free_miss_leaves_structure_so_the_search_goes_on(wavy):
    chosen = ["NAU", "NMU", "NAU->NMU[2]", "NAU[x, f(x)]"]
    result = find_formula(*wavy, settings=SMALL, architectures=chosen)
    assert not result.explained and not result.exact
    # Every stage of the chosen stacks, those beyond arithmetic included.
    assert result.jobs == ["NAU on y", "NMU on y", "NAU->NMU[2] on y", "NAU[x, f(x)] on y"]


def test_noisy_data_with_the_formula_found_up_to_heavy_noise_stops_there():
    # 30 % noise: more than a formula may hold within, but the residual of a*b is noise.
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.uniform(1, 3, 400), "b": rng.uniform(1, 3, 400)})
    y = X.a * X.b * (1 + 0.3 * rng.standard_normal(400))
    model = NaluRegressor(restarts=1, steps=300, scale_steps=2).fit(X, y)
    assert model.result_.explained and not model.exact_
    assert model.result_.jobs[:2] == ["NAU on y", "NMU on y"]


def test_a_search_ended_by_max_time_says_so_everywhere(tmp_path):
    X = pd.DataFrame({"a": np.linspace(1, 3, 60), "b": np.linspace(3, 1, 60) ** 2})
    y = X.a * np.sin(2 * X.b)
    model = NaluRegressor(max_time=1e-9, restarts=1, steps=60, scale_steps=0).fit(X, y)
    assert model.timed_out_ and model.result_.timed_out
    assert "max_time ended the search" in model.message_ and "a rerun may differ" in model.message_
    model.save(tmp_path / "model.json")
    assert NaluRegressor.load(tmp_path / "model.json").timed_out_
    untimed = NaluRegressor(restarts=1, steps=60, scale_steps=0, effort=0.05).fit(X, y)
    assert not untimed.timed_out_


@pytest.mark.parametrize(
    "params, message",
    [
        ({"effort": 0}, "effort must be a positive number"),
        ({"effort": True}, "effort must be a positive number"),
        ({"max_time": -1}, "max_time must be a positive number or None"),
    ],
)
def test_bad_effort_or_max_time_is_a_clear_error(params, message):
    X = np.linspace(1, 2, 40)[:, None]
    with pytest.raises(ValueError, match=message):
        NaluRegressor(**params).fit(X, X[:, 0])


def _spin(seconds: float) -> subprocess.Popen:
    """A process keeping one core busy."""
    loop = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    return subprocess.Popen([sys.executable, "-c", loop])


@pytest.mark.slow
def test_the_default_plan_gives_the_same_formula_and_table_idle_and_beside_busy_processes():
    # A formula that the first stages cannot reach: the default plan trains stage after
    # stage until one finds it, whatever the machine's load.
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"a": rng.uniform(1, 3, 200), "b": rng.uniform(1, 3, 200)})
    y = X.a * X.b + X.a
    idle = NaluRegressor(random_state=5).fit(X, y)
    spinners = [_spin(600) for _ in range(3)]
    try:
        busy = NaluRegressor(random_state=5, n_jobs=2).fit(X, y)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert not idle.timed_out_ and not busy.timed_out_
    assert len(idle.result_.jobs) > 2
    assert idle.formula_ == busy.formula_
    assert idle.result_.jobs == busy.result_.jobs
    pd.testing.assert_frame_equal(idle.candidates_, busy.candidates_, check_exact=True)


def test_the_cli_says_when_max_time_ended_the_search_and_takes_effort(tmp_path):
    from typer.testing import CliRunner

    from nalu_sr.cli import app

    path = tmp_path / "wavy.csv"
    a = np.linspace(1, 3, 60)
    pd.DataFrame({"a": a, "b": a[::-1] ** 2, "y": a * np.sin(2 * a[::-1] ** 2)}).to_csv(
        path, index=False
    )
    small = ["--restarts", "1", "--steps", "60"]
    capped = CliRunner().invoke(app, ["fit", str(path), "-t", "y", *small, "--max-time", "1e-9"])
    assert capped.exit_code == 3, capped.output
    assert "Stopped by --max-time before the search plan was done" in capped.output
    planned = CliRunner().invoke(app, ["fit", str(path), "-t", "y", *small, "--effort", "0.05"])
    assert planned.exit_code == 3, planned.output
    assert "Stopped by --max-time" not in planned.output
    assert "raise effort, or --effort" in planned.output
    wrong = CliRunner().invoke(app, ["fit", str(path), "-t", "y", "--effort", "0"])
    assert wrong.exit_code == 2
    assert "effort must be a positive number" in wrong.output


@pytest.mark.slow
def test_the_default_plan_benchmark_repeats_beside_busy_processes(monkeypatch, tmp_path):
    import importlib
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    bench = importlib.import_module("default_plan")
    # A small plan: the full one on a table outside the space is the benchmark's to time (the
    # same result idle and busy under the full plan is the test above).
    argv = ["--columns", "1", "--rows", "60", "--effort", "0.1", "--out", str(tmp_path / "plan")]
    assert bench.main(argv) == 0  # 0: the same result idle and busy in every case
    assert (tmp_path / "plan.md").read_text().count("\n| ") == 3  # header, outside, noise
    rows = pd.read_csv(tmp_path / "plan.csv").set_index("case")
    assert rows.loc["noise", "ended on noise"] and not rows["timed out"].any()


def test_class_labels_as_a_target_search_only_the_first_stage_and_say_why():
    rng = np.random.default_rng(2)
    X = rng.uniform(1, 3, (120, 3))
    y = (X[:, 0] + X[:, 1] > 4).astype(float)  # labels of two classes
    result = find_formula(X, y, settings=SMALL)
    assert not result.exact and result.stages_left > 0
    assert result.jobs == ["NAU on y", "NMU on y", "P/Q on y"]
    assert "the target takes only 2 distinct values, as class labels do" in result.message


def test_a_target_of_two_values_from_an_input_of_two_values_is_still_found_exactly():
    rng = np.random.default_rng(3)
    s = rng.choice([-1.0, 1.0], 120)
    X = np.column_stack([s, rng.uniform(1, 3, 120)])  # a sign and a distractor
    result = find_formula(X, 2 * s + 1, feature_names=["s", "x"], settings=SMALL)
    assert result.exact, result.formula
    assert sympy.simplify(result.formula - (2 * result.symbols[0] + 1)) == 0
