"""Candidate scoring speed: the Numba kernel against the NumPy reference and a torch forward.

For every (candidates x rows) cell the same random candidates are fitted and scored by each
backend; the table reports the best wall time of ``--repeats`` runs, candidates per second, and
how many times faster Numba is. Numba's compile time is measured apart, in a fresh interpreter
with an empty cache, and a second interpreter shows the kernel then loads from the disk cache.

A backend whose cell would take longer than ``--budget`` seconds is timed on the first
candidates only and its time scaled up to the whole cell (candidates are drawn independently and
cost the same on average); the table marks such cells.

Run ``python benchmarks/scoring.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nalu_sr.scoring import PackedCandidates, pack, score
from nalu_sr.structure import Structure, make_factor, make_structure, make_term

N_INPUTS = 4
#: x0..x3, 1/x0..1/x3 and the constant 1.
N_FEATURES = 2 * N_INPUTS + 1
#: Fractions of rows in the train, validation and extrapolation splits.
SPLIT_SHARES = (0.6, 0.2, 0.2)
#: Candidates in the first, untimed call of each backend (Numba's compile, torch's start-up).
WARM_UP = 20


@dataclass
class Timing:
    backend: str
    threads: int
    candidates: int
    seconds: float
    timed_candidates: int
    repeats: int

    @property
    def per_second(self) -> float:
        return self.candidates / self.seconds


def set_threads(backend: str, threads: int) -> None:
    """Threads for ``backend``: Numba's parallel loop or torch's intra-op pool (NumPy has one)."""
    if backend == "numba":
        import numba

        numba.set_num_threads(threads)
    elif backend == "torch":
        torch.set_num_threads(threads)


def random_structures(rng: np.random.Generator, n: int) -> list[Structure]:
    """Candidates shaped like snapped networks: 1-4 terms of 1-3 factors of 1-4 entries."""
    structures = []
    for _ in range(n):
        terms = []
        for _ in range(rng.integers(1, 5)):
            factors = []
            for _ in range(rng.integers(1, 4)):
                index = rng.choice(N_FEATURES, size=rng.integers(1, 5), replace=False)
                factors.append(make_factor((int(i), int(rng.choice([-1, 1]))) for i in index))
            terms.append(make_term(factors))
        structures.append(make_structure(terms))
    return structures


def make_rows(rng: np.random.Generator, n_rows: int) -> tuple[np.ndarray, ...]:
    """Features, target and split of a task whose extrapolation rows lie outside the train range."""
    split = rng.choice(3, size=n_rows, p=SPLIT_SHARES).astype(np.int8)
    x = rng.uniform(1.0, 3.0, size=(n_rows, N_INPUTS))
    far = split == 2
    x[far] = rng.uniform(3.0, 6.0, size=(int(far.sum()), N_INPUTS))
    features = np.column_stack([x, 1.0 / x, np.ones(n_rows)])
    y = x[:, 0] * x[:, 1] + x[:, 2] / x[:, 3] + 0.01 * rng.standard_normal(n_rows)
    return features, y, split


def best_time(packed: PackedCandidates, data: tuple[np.ndarray, ...], backend: str, repeats: int):
    """Best wall time of ``repeats`` calls, and the scores of the last one."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        scores = score(packed, *data, backend=backend)
        best = min(best, time.perf_counter() - start)
    return best, scores


def time_cell(
    packed: PackedCandidates,
    data: tuple[np.ndarray, ...],
    backend: str,
    threads: list[int],
    repeats: int,
    budget: float,
):
    """Time one backend on one cell with the fastest of ``threads`` (picked on a pilot run).

    When the whole cell would take more than ``budget`` seconds, only the first candidates are
    timed and the time is scaled up to all of them. Returns the timing and the scores.
    """
    n = packed.n_candidates
    pilot = packed.subset(slice(0, min(n, 50)))
    pilot_times = {}
    for count in threads:
        set_threads(backend, count)
        pilot_times[count] = best_time(pilot, data, backend, 1)[0] / pilot.n_candidates
    count = min(pilot_times, key=pilot_times.get)
    set_threads(backend, count)
    per_candidate = pilot_times[count]
    timed = n
    if per_candidate * n > budget:
        timed = max(pilot.n_candidates, int(budget / per_candidate))
    subset = packed if timed == n else packed.subset(slice(0, timed))
    runs = int(max(1, min(repeats, budget // max(per_candidate * timed, 1e-9))))
    seconds, scores = best_time(subset, data, backend, runs)
    set_threads(backend, max(threads))
    return Timing(backend, count, n, seconds * n / timed, timed, runs), scores


def relative_difference(scores, reference) -> float:
    """Largest relative difference of the finite RMSEs of the candidates both scored."""
    n = scores.rmse.shape[0]
    a, b = scores.rmse, reference.rmse[:n]
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return np.inf
    finite = np.isfinite(a)
    return float(np.max(np.abs(a - b)[finite] / np.maximum(np.abs(b[finite]), 1e-300)))


_JIT_PROBE = """
import importlib, json, sys, time
import numpy as np
start = time.perf_counter()
importlib.import_module("nalu_sr.scoring.numba_backend")
imported = time.perf_counter() - start
from nalu_sr.scoring import pack, score
from nalu_sr.scoring.numba_backend import compiled_kernel
x = np.linspace(1.0, 2.0, 64)
data = (np.column_stack([x, 1 / x, np.ones(64)]), 2 * x, np.arange(64, dtype=np.int8) % 3)
packed = pack([((((0, 1),),),)])
calls = []
for _ in range(2):
    start = time.perf_counter()
    score(packed, *data, backend="numba")
    calls.append(time.perf_counter() - start)
stats = compiled_kernel().stats
print(json.dumps({"import_s": imported, "first_call_s": calls[0], "second_call_s": calls[1],
                  "cache_hits": sum(stats.cache_hits.values()),
                  "cache_misses": sum(stats.cache_misses.values())}))
"""


def measure_jit() -> list[dict]:
    """First-call times of two fresh interpreters sharing one new, empty Numba cache."""
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for process in ("first process (empty cache)", "second process (cache on disk)"):
            done = subprocess.run(
                [sys.executable, "-c", _JIT_PROBE], env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"the compile-time probe failed:\n{done.stderr}")
            runs.append({"process": process, **json.loads(done.stdout)})
    return runs


COLUMNS = {
    "numba": "numba",
    "numba_1": "numba 1 thread",
    "numpy": "numpy",
    "torch": "torch",
}


def markdown(rows: list[dict], jit: list[dict], command: str, machine: str) -> str:
    header = ["candidates", "rows"]
    header += [f"{name} s" for name in COLUMNS.values()]
    header += [f"{name} cand/s" for name in COLUMNS.values()]
    header += ["numba/numpy", "numba/torch", "max rel. diff numpy, torch"]
    lines = [
        f"Command: `{command}`",
        "",
        machine,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---:|" * (len(header) - 1) + "---|",
    ]
    for row in rows:
        cells = [f"{row['candidates']:,}", f"{row['rows']:,}"]
        for key in COLUMNS:
            mark = " *" if row[f"{key}_timed"] < row["candidates"] else ""
            cells.append(f"{row[f'{key}_s']:.3g}{mark}")
        cells += [f"{row[f'{key}_per_s']:,.0f}" for key in COLUMNS]
        cells += [f"{row['numba_vs_numpy']:.1f}x", f"{row['numba_vs_torch']:.1f}x"]
        cells.append(f"{row['diff_numpy']:.1e}, {row['diff_torch']:.1e}")
        lines.append("| " + " | ".join(cells) + " |")
    scaled = [
        f"{COLUMNS[key]} at {row['candidates']:,} x {row['rows']:,}: {row[f'{key}_timed']:,} timed"
        for row in rows
        for key in COLUMNS
        if row[f"{key}_timed"] < row["candidates"]
    ]
    torch_threads = sorted({row["torch_threads"] for row in rows})
    lines += [
        "",
        "Wall-clock seconds to fit and score every candidate on all three splits (60% train, "
        "20% validation, 20% extrapolation rows), best of the repeats. numba/numpy and "
        "numba/torch: how many times faster Numba (all threads) is. Max rel. diff: the largest "
        "relative difference of the finite RMSEs from Numba's. torch ran with "
        f"{' or '.join(map(str, torch_threads))} thread(s), whichever of 1 and all was faster "
        "on a pilot run of the cell.",
    ]
    if scaled:
        lines.append(
            "`*`: too slow to time whole; the first candidates were timed and the time scaled "
            "to the whole cell (" + "; ".join(scaled) + ")."
        )
    lines += [
        "",
        "Numba compile time: a fresh interpreter scores one candidate on 64 rows twice; the "
        "first call compiles (empty cache) or loads the compiled kernel from disk.",
        "",
        "| process | import backend s | first call s | second call s | cache hits | cache misses |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in jit:
        lines.append(
            f"| {run['process']} | {run['import_s']:.2f} | {run['first_call_s']:.2f} "
            f"| {run['second_call_s']:.4f} | {run['cache_hits']} | {run['cache_misses']} |"
        )
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    import numba

    load = os.getloadavg()[0]
    return (
        f"Machine: {os.cpu_count()} CPUs, Numba {numba.__version__} with {numba.get_num_threads()} "
        f"threads, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"NumPy {np.__version__}; load average {load:.1f} when the run started."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rows", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="seconds one backend may spend on one cell before it is timed on a subset",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scoring"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    command = " ".join(["python benchmarks/scoring.py", *(sys.argv[1:] if argv is None else argv)])
    machine = machine_line()
    rng = np.random.default_rng(args.seed)
    structures = random_structures(rng, max(args.candidates))
    print(machine, flush=True)
    jit = measure_jit()
    for run in jit:
        print(f"jit {run}", flush=True)
    rows = []
    all_threads = os.cpu_count() or 1
    for n_rows in args.rows:
        data = make_rows(rng, n_rows)
        for backend in ("numba", "numpy", "torch"):
            score(pack(structures[:WARM_UP]), *data, backend=backend)
        for n in args.candidates:
            packed = pack(structures[:n])
            runs = {
                "numba": time_cell(packed, data, "numba", [all_threads], args.repeats, np.inf),
                "numba_1": time_cell(packed, data, "numba", [1], args.repeats, args.budget),
                "numpy": time_cell(packed, data, "numpy", [1], args.repeats, args.budget),
                "torch": time_cell(
                    packed, data, "torch", sorted({all_threads, 1}), args.repeats, args.budget
                ),
            }
            reference = runs["numba"][1]
            row = {"candidates": n, "rows": n_rows}
            for key, (timing, _) in runs.items():
                row[f"{key}_s"] = timing.seconds
                row[f"{key}_per_s"] = timing.per_second
                row[f"{key}_timed"] = timing.timed_candidates
                row[f"{key}_repeats"] = timing.repeats
                row[f"{key}_threads"] = timing.threads
            row["numba_vs_numpy"] = row["numpy_s"] / row["numba_s"]
            row["numba_vs_torch"] = row["torch_s"] / row["numba_s"]
            for key in ("numpy", "torch"):
                row[f"diff_{key}"] = relative_difference(runs[key][1], reference)
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = markdown(rows, jit, command, machine)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    args.out.with_suffix(".md").write_text("# Candidate scoring benchmark\n\n" + table)


if __name__ == "__main__":
    main()
