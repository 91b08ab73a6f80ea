"""Runs repeat exactly: the same data and seed give the same formula and the same candidates
table for any n_jobs, and the same model file in separate processes."""

import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from nalu_sr import NaluRegressor
from nalu_sr.datasets import load_suite_entry

pytestmark = pytest.mark.slow

# Two groups of architectures and a target outside the search space, so that every job runs.
SEARCH = dict(
    max_time=30, restarts=1, steps=200, scale_steps=2, architectures=["NAU", "NMU", "NAU->NMU[2]"]
)
CLI_SEARCH = ["--restarts", "1", "--steps", "200", "--architectures", "NAU,NMU,NAU->NMU[2]"]


@pytest.fixture(scope="module")
def data():
    frame = load_suite_entry("ohms_law")
    return frame[["I", "R"]], frame.V + 0.01 * np.sin(frame.I)


def test_n_jobs_1_and_2_give_the_same_formula_and_candidates(data):
    one = NaluRegressor(**SEARCH, n_jobs=1, random_state=7).fit(*data)
    two = NaluRegressor(**SEARCH, n_jobs=2, random_state=7).fit(*data)
    assert len(one.result_.jobs) > 2
    assert one.formula_ == two.formula_
    pd.testing.assert_frame_equal(one.candidates_, two.candidates_, check_exact=True)
    assert one.result_.jobs == two.result_.jobs
    np.testing.assert_array_equal(one.result_.split.labels, two.result_.split.labels)
    np.testing.assert_array_equal(one.predict(data[0]), two.predict(data[0]))


def test_another_seed_gives_another_split(data):
    one = NaluRegressor(**SEARCH, random_state=7).fit(*data)
    other = NaluRegressor(**SEARCH, random_state=8).fit(*data)
    assert not np.array_equal(one.result_.split.labels, other.result_.split.labels)


def test_two_processes_write_the_same_model_file_and_print_the_same_report(data, tmp_path):
    executable = shutil.which("nalu-sr")
    assert executable, "the nalu-sr executable is not installed; run `pip install -e .`"
    path = tmp_path / "data.csv"
    data[0].assign(V=data[1]).to_csv(path, index=False, float_format="%.17g")
    folders = [tmp_path / "first", tmp_path / "second"]
    processes = []
    # Different hash seeds: nothing may depend on the order of sets of strings.
    for folder, hash_seed in zip(folders, ("1", "2")):
        folder.mkdir()
        processes.append(
            subprocess.Popen(
                [executable, "fit", str(path), "-t", "V", "--seed", "7", *CLI_SEARCH,
                 "-o", "model.json"],
                cwd=folder,
                env={**os.environ, "PYTHONHASHSEED": hash_seed, "COLUMNS": "120"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )  # fmt: skip
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 3, stderr  # V + 0.01 sin(I) has no exact formula
    assert outputs[0][0] == outputs[1][0]
    first, second = ((folder / "model.json").read_bytes() for folder in folders)
    different = [
        (a, b) for a, b in zip(first.splitlines(), second.splitlines(), strict=True) if a != b
    ]
    # Only the wall time of the search may differ.
    assert all(a.strip().startswith(b'"seconds": ') for a, _ in different), different


def test_a_job_trained_in_chunks_gives_the_same_candidates_for_any_n_jobs():
    # A product over 36 columns is trained in several chunks of copies, each promoting its
    # share of formulas as it arrives: the same ones whichever worker trained it.
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.uniform(-2, 2, size=(300, 36)), columns=[f"x{i}" for i in range(36)])
    y = X.x0 * X.x1 + X.x2
    search = dict(SEARCH, architectures=["NMU->NAU[2]"], steps=100)
    one = NaluRegressor(**search, n_jobs=1, random_state=7).fit(X, y)
    two = NaluRegressor(**search, n_jobs=2, random_state=7).fit(X, y)
    assert one.formula_ == two.formula_
    pd.testing.assert_frame_equal(one.candidates_, two.candidates_, check_exact=True)
