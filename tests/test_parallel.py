"""The search gives the same result whichever way its jobs run: one process, loky, Dask."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from nalu_sr.search import TrainingSettings, find_formula

DATA = Path(__file__).resolve().parents[1] / "datasets" / "ohms_law.csv"
SMALL = TrainingSettings(restarts=1, scale_steps=2, steps=300)
# Three groups of jobs (sums; sums of reciprocals and sums on 1/y; sums of products), the
# second with more jobs than workers: jobs can finish out of the order they were sent in, and
# the result must not depend on that order.
ARCHITECTURES = ("NAU", "NAU[1/x]", "NMU->NAU[2]")


def small_search(n_jobs=1):
    frame = pd.read_csv(DATA)
    return find_formula(
        frame[["I", "R"]],
        frame["V"],
        settings=SMALL,
        architectures=ARCHITECTURES,
        n_jobs=n_jobs,
        random_state=3,
    )


def assert_same_result(result, reference):
    assert str(result.formula) == str(reference.formula)
    assert result.exact == reference.exact
    assert result.jobs == reference.jobs
    assert_frame_equal(result.candidates, reference.candidates, check_exact=True)


@pytest.fixture(scope="module")
def reference():
    result = small_search(n_jobs=1)
    assert result.formula is not None
    assert len(result.jobs) > 2
    return result


@pytest.mark.slow
def test_two_loky_workers_give_the_serial_result(reference):
    with joblib.parallel_config(backend="loky"):
        result = small_search(n_jobs=2)
    assert_same_result(result, reference)


@pytest.mark.slow
def test_dask_cluster_gives_the_serial_result(reference):
    pytest.importorskip("distributed")
    from distributed import get_task_stream

    from nalu_sr.search.parallel import dask_backend

    with dask_backend(n_workers=2) as client:
        workers = set(client.scheduler_info()["workers"])
        with get_task_stream(client) as stream:
            result = small_search(n_jobs=2)
    assert_same_result(result, reference)
    assert len(workers) == 2
    assert len(stream.data) >= len(reference.jobs)
    assert {task["worker"] for task in stream.data} <= workers


def test_unreachable_dask_scheduler_is_one_clear_error():
    pytest.importorskip("distributed")
    from nalu_sr.search.parallel import dask_backend

    with (
        pytest.raises(OSError, match="no Dask scheduler answered at tcp://127.0.0.1:9"),
        dask_backend("tcp://127.0.0.1:9", timeout=0.5),
    ):
        pass


SEARCH_IN_A_FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_parallel import small_search
    small_search().candidates.to_pickle(sys.argv[1])
    """
)


@pytest.mark.slow
def test_same_seed_gives_the_same_result_in_a_fresh_process(reference, tmp_path):
    # Another hash seed: nothing may depend on the order of a set or of a str-keyed dict.
    out = tmp_path / "candidates.pkl"
    code = SEARCH_IN_A_FRESH_PROCESS.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=env, timeout=300)
    assert_frame_equal(pd.read_pickle(out), reference.candidates, check_exact=True)


@pytest.mark.slow
def test_cli_runs_the_search_on_a_dask_scheduler(tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster, get_task_stream
    from typer.testing import CliRunner

    from nalu_sr.cli.app import app

    args = ["fit", str(DATA), "--target", "V", "--restarts", "1", "--steps", "300"]
    args += ["--architectures", "NAU,NMU", "--quiet"]
    with (
        LocalCluster(
            # joblib runs the jobs in this process when the cluster has a single thread.
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster.scheduler_address) as client,
        get_task_stream(client) as stream,
    ):
        result = CliRunner().invoke(app, [*args, "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "I*R"
    assert len(stream.data) >= 1


@pytest.mark.slow
def test_cli_with_an_unreachable_scheduler_exits_2_with_one_line(monkeypatch):
    pytest.importorskip("distributed")
    from typer.testing import CliRunner

    from nalu_sr.cli.app import app
    from nalu_sr.search import parallel

    # The message, not the wait, is under test: 2 s instead of 30.
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 2.0)

    args = ["fit", str(DATA), "--target", "V", "--quiet", "--scheduler", "tcp://127.0.0.1:9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Dask scheduler answered at tcp://127.0.0.1:9" in lines[0]


def test_cli_scheduler_without_dask_installed_says_which_extra(monkeypatch):
    from typer.testing import CliRunner

    from nalu_sr.cli.app import app

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    args = ["fit", str(DATA), "--target", "V", "--quiet", "--scheduler", "tcp://127.0.0.1:9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "pip install 'nalu-sr[dask]'" in result.stderr
