"""How the search scales: time to formula and peak memory against rows, columns and n_jobs.

Every case reads a generated CSV file (written to a temporary folder, never kept) in a fresh
interpreter, the way a user's file is read: only the needed columns, as float64, with pandas'
C parser. It then runs :func:`~nalu_sr.search.find_formula` with default settings and checks
the formula against the truth. A fresh interpreter per case keeps one case's caches, imports
and memory out of the next; the search's modules are loaded first, in every worker when
``n_jobs`` > 1, so that the time to formula leaves out starting worker processes and loading
torch in them (reported apart as the warm-up).

Sweeps (inputs uniform in [1, 5], all but the formula's inputs irrelevant):

- rows: 1e3 .. 1e6 rows of 10 columns, n_jobs 1, on ``y = x0*x2*x4`` (found by the first
  group of two jobs) and on ``y = x4*(x0 + x2)`` (three groups, seven jobs, so seven times
  the formulas built and checked on every row);
- columns: 5, 20 and 100 columns, 3 of them relevant, ``y = x0*x2*x4``;
- jobs: n_jobs 1 and 2 on ``y = x0*x2*x4`` (one group of two jobs) and on
  ``y = x4*(x0 + x2)`` (three groups, seven jobs).

Memory: ``peak MB`` is the case's own peak resident set (``ru_maxrss``); ``workers MB`` the
largest peak of its worker processes; ``tree MB`` the largest sum of the resident sets of the
case and its workers, sampled every 0.1 s with psutil when it is installed (shared pages,
e.g. torch's libraries, count once per process).

Run ``python benchmarks/scaling.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

#: name -> (formula over a sequence of columns, its inputs); works on arrays and on symbols.
FORMULAS: dict[str, tuple[Callable, tuple[int, ...]]] = {
    "x0*x2*x4": (lambda x: x[0] * x[2] * x[4], (0, 2, 4)),
    "x4*(x0 + x2)": (lambda x: x[4] * (x[0] + x[2]), (0, 2, 4)),
}
TARGET = "y"
SECONDS_PER_POLL = 0.1


@dataclass
class Case:
    sweep: str
    rows: int
    columns: int
    n_jobs: int
    formula: str
    seed: int = 0
    max_time: float | None = None
    run: int = 1


@dataclass
class Outcome:
    case: Case
    found: str = ""
    exact: bool = False
    correct: bool = False
    jobs_run: int = 0
    read_seconds: float = float("nan")
    warm_up_seconds: float = float("nan")
    search_seconds: float = float("nan")
    cpu_seconds: float = float("nan")
    process_seconds: float = float("nan")
    peak_mb: float = float("nan")
    workers_mb: float = float("nan")
    tree_mb: float = float("nan")
    error: str = ""
    extra: dict = field(default_factory=dict)


def feature_names(columns: int) -> list[str]:
    return [f"x{j}" for j in range(columns)]


def write_table(path: Path, rows: int, columns: int, formula: str, seed: int) -> None:
    """A CSV of ``rows`` rows: ``columns`` inputs uniform in [1, 5] and the formula's value."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.uniform(1.0, 5.0, size=(rows, columns))
    frame = pd.DataFrame(X, columns=feature_names(columns))
    frame[TARGET] = FORMULAS[formula][0](X.T)
    # Shortest round-trip floats: the file holds exactly the values generated.
    frame.to_csv(path, index=False)


def _max_rss_mb(who: int) -> float:
    # Linux reports kilobytes.
    return resource.getrusage(who).ru_maxrss / 1024


def _load_search() -> int:
    import torch

    import nalu_sr.search.runner  # noqa: F401  (torch, SymPy and the engine)

    # torch loads its compiler stack (about 1 s) when a process builds its first optimizer;
    # a long-lived session pays that once per process, like the imports.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    return os.getpid()


def warm_up(n_jobs: int) -> float:
    """Seconds to start the workers and load the search's libraries in each of them.

    A long-lived session pays this once; timing the search after it separates the start-up
    of worker processes from the search itself. (A warm-up search would not do: a search
    that stops early cancels its queued jobs, and joblib restarts the workers to do so.)
    """
    started = time.perf_counter()
    if n_jobs == 1:
        _load_search()
    else:
        from joblib import Parallel, delayed

        Parallel(n_jobs=n_jobs)(delayed(_load_search)() for _ in range(4 * n_jobs))
    return time.perf_counter() - started


def _cpu_seconds() -> float:
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker_cpu_seconds() -> float:
    """CPU seconds of the live worker processes (psutil; NaN without it)."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    for process in psutil.Process().children(recursive=True):
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def run_case(case: Case, path: Path) -> dict:
    """Read ``path`` and search it; runs in the fresh interpreter of one case."""
    import pandas as pd
    import sympy
    from joblib.externals.loky import get_reusable_executor

    from nalu_sr.search import find_formula

    warm_up_seconds = warm_up(case.n_jobs)
    names = feature_names(case.columns)
    started = time.perf_counter()
    frame = pd.read_csv(path, usecols=[*names, TARGET], dtype=np.float64, engine="c")
    read_seconds = time.perf_counter() - started
    read_mb = _max_rss_mb(resource.RUSAGE_SELF)
    timeline = []
    started = time.perf_counter()

    def progress(done: int, total: int, description: str) -> None:
        timeline.append((description, round(time.perf_counter() - started, 2)))

    cpu_before = _cpu_seconds() + _worker_cpu_seconds()
    result = find_formula(
        frame[names],
        frame[TARGET],
        n_jobs=case.n_jobs,
        random_state=case.seed,
        max_time=case.max_time,
        progress=progress,
    )
    search_seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds() + _worker_cpu_seconds() - cpu_before
    if case.n_jobs != 1:
        # Reap the workers so that their peak memory shows in RUSAGE_CHILDREN.
        get_reusable_executor().shutdown(wait=True)
    truth = FORMULAS[case.formula][0](result.symbols)
    correct = result.formula is not None and sympy.simplify(result.formula - truth) == 0
    return {
        "found": str(result.formula),
        "exact": bool(result.exact),
        "correct": bool(correct),
        "jobs_run": len(result.jobs),
        "read_seconds": read_seconds,
        "warm_up_seconds": warm_up_seconds,
        "search_seconds": search_seconds,
        "cpu_seconds": cpu_seconds,
        "peak_mb": _max_rss_mb(resource.RUSAGE_SELF),
        "workers_mb": _max_rss_mb(resource.RUSAGE_CHILDREN),
        "extra": {"read_peak_mb": read_mb, "timeline": timeline},
    }


class TreeMemory:
    """Largest sum of resident sets of a process and its descendants, polled in a thread."""

    def __init__(self, pid: int) -> None:
        self.peak = float("nan")
        try:
            import psutil
        except ImportError:
            self._thread = None
            return
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(psutil, pid), daemon=True)
        self._thread.start()

    def _poll(self, psutil, pid: int) -> None:
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.wait(SECONDS_PER_POLL):
            total = 0
            try:
                processes = [root, *root.children(recursive=True)]
            except psutil.Error:
                # A worker exited between listing and reading it: try again at the next poll.
                continue
            for process in processes:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total / 2**20)

    def stop(self) -> float:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        return self.peak


def measure(case: Case, path: Path, timeout: float) -> Outcome:
    """Run ``case`` on ``path`` in a fresh interpreter and collect what it reports."""
    command = [sys.executable, __file__, "--run-case", json.dumps(asdict(case)), str(path)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        stderr = f"timed out after {timeout:g} s. {stderr}"
    outcome = Outcome(case, process_seconds=time.perf_counter() - started, tree_mb=memory.stop())
    lines = stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        outcome.error = (stderr.strip().splitlines() or ["no output"])[-1]
        return outcome
    for key, value in json.loads(lines[-1]).items():
        setattr(outcome, key, value)
    return outcome


def plan(args: argparse.Namespace) -> list[Case]:
    cases = []
    if "rows" in args.sweeps:
        for formula in FORMULAS:
            cases += [Case("rows", int(n), 10, 1, formula) for n in args.rows]
    if "columns" in args.sweeps:
        cases += [Case("columns", args.column_rows, d, 1, "x0*x2*x4") for d in args.columns]
    if "jobs" in args.sweeps:
        # Speed-ups are ratios of two noisy times: each case runs --repeats times, interleaved
        # (1, 2, 1, 2, ...) so that a slow spell of the machine hits both n_jobs alike.
        for run in range(1, args.repeats + 1):
            for formula in FORMULAS:
                cases += [Case("jobs", args.jobs_rows, 10, n, formula, run=run) for n in args.jobs]
    for case in cases:
        case.seed, case.max_time = args.seed, args.max_time
    return cases


COLUMNS = {
    "sweep": lambda o: o.case.sweep,
    "rows": lambda o: f"{o.case.rows:,}",
    "columns": lambda o: o.case.columns,
    "n_jobs": lambda o: o.case.n_jobs,
    "run": lambda o: o.case.run,
    "truth": lambda o: f"`{o.case.formula}`",
    "found": lambda o: f"`{o.found}`" if not o.error else f"error: {o.error}",
    "exact": lambda o: "yes" if o.exact else "no",
    "correct": lambda o: "yes" if o.correct else "**no**",
    "jobs run": lambda o: o.jobs_run,
    "read s": lambda o: f"{o.read_seconds:.2f}",
    "warm-up s": lambda o: f"{o.warm_up_seconds:.1f}",
    "search s": lambda o: f"{o.search_seconds:.1f}",
    "CPU s": lambda o: f"{o.cpu_seconds:.1f}",
    "process s": lambda o: f"{o.process_seconds:.1f}",
    "peak MB": lambda o: f"{o.peak_mb:,.0f}",
    "workers MB": lambda o: f"{o.workers_mb:,.0f}" if o.case.n_jobs != 1 else "",
    "tree MB": lambda o: f"{o.tree_mb:,.0f}",
}


def markdown_table(outcomes: list[Outcome]) -> str:
    numeric = {"rows", "columns", "n_jobs", "jobs run", "read s", "warm-up s", "search s"}
    numeric |= {"CPU s", "process s"}
    numeric |= {"peak MB", "workers MB", "tree MB"}
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---:" if name in numeric else "---" for name in COLUMNS) + "|",
    ]
    for outcome in outcomes:
        lines.append("| " + " | ".join(str(cell(outcome)) for cell in COLUMNS.values()) + " |")
    return "\n".join(lines)


def _all_seconds(outcomes: list[Outcome], **where) -> list[float]:
    return [
        o.search_seconds
        for o in outcomes
        if all(getattr(o.case, k) == v for k, v in where.items()) and not o.error
    ]


def _seconds(outcomes: list[Outcome], **where) -> float | None:
    """The median search time of the matching cases (None if there is none)."""
    times = _all_seconds(outcomes, **where)
    return float(np.median(times)) if times else None


def targets(outcomes: list[Outcome]) -> list[str]:
    """The scaling targets, each stated with the measured value."""
    notes = []
    for formula in FORMULAS:
        small = _seconds(outcomes, sweep="rows", formula=formula, rows=10_000)
        large = _seconds(outcomes, sweep="rows", formula=formula, rows=1_000_000)
        if small and large:
            ratio = large / small
            verdict = "met" if ratio <= 3 else "NOT met"
            notes.append(
                f"1e6 rows in at most 3x the time of 1e4 rows on `{formula}`: {large:.1f} s / "
                f"{small:.1f} s = {ratio:.2f}x ({verdict})."
            )
    peak = max((o.peak_mb for o in outcomes if not o.error), default=float("nan"))
    if np.isfinite(peak):
        verdict = "met" if peak <= 2048 else "NOT met"
        notes.append(f"Peak resident set of any case at most 2 GB: {peak:,.0f} MB ({verdict}).")
    for formula in FORMULAS:
        serial = _seconds(outcomes, sweep="jobs", formula=formula, n_jobs=1)
        parallel = _seconds(outcomes, sweep="jobs", formula=formula, n_jobs=2)
        if serial and parallel:
            speedup = serial / parallel
            verdict = "met" if speedup >= 1.6 else "NOT met"
            runs = [
                ", ".join(
                    f"{t:.1f}"
                    for t in _all_seconds(outcomes, sweep="jobs", formula=formula, n_jobs=n)
                )
                for n in (1, 2)
            ]
            notes.append(
                f"n_jobs=2 at least 1.6x faster than n_jobs=1 on `{formula}`: median "
                f"{serial:.1f} s / {parallel:.1f} s = {speedup:.2f}x ({verdict}; runs: "
                f"{runs[0]} s with n_jobs=1, {runs[1]} s with n_jobs=2)."
            )
    wide = [o for o in outcomes if o.case.sweep == "columns" and o.case.columns >= 100]
    for o in wide:
        verdict = "met" if o.correct and o.exact else "NOT met"
        notes.append(
            f"{o.case.columns} columns, 3 relevant, formula still exact: found `{o.found}` "
            f"({verdict})."
        )
    return notes


def write_results(outcomes: list[Outcome], out: Path, header: str) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        fields = [f for f in asdict(outcomes[0]) if f not in ("case", "extra")]
        extras = ["read_peak_mb", "csv_mb", "timeline"]
        writer.writerow([*asdict(outcomes[0].case), *fields, *extras])
        for o in outcomes:
            row = asdict(o)
            writer.writerow(
                [*row["case"].values(), *(row[f] for f in fields), *map(o.extra.get, extras)]
            )
    timelines = [
        f"- {o.case.formula}, n_jobs={o.case.n_jobs}, run {o.case.run}: "
        + ", ".join(f"{job} {at:.1f}" for job, at in o.extra.get("timeline", []))
        for o in outcomes
        if o.case.sweep == "jobs" and not o.error
    ]
    parts = [header, markdown_table(outcomes), "\n".join(f"- {n}" for n in targets(outcomes))]
    if timelines:
        parts += [
            "Seconds into the search at which each job's structures were scored (jobs sweep):",
            "\n".join(timelines),
        ]
    text = "\n\n".join(parts)
    out.with_suffix(".md").write_text(text + "\n")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling"))
    parser.add_argument("--sweeps", nargs="+", default=["rows", "columns", "jobs"])
    parser.add_argument("--rows", nargs="+", type=float, default=[1e3, 1e4, 1e5, 1e6])
    parser.add_argument("--columns", nargs="+", type=int, default=[5, 20, 100])
    parser.add_argument("--column-rows", type=int, default=10_000)
    parser.add_argument("--jobs", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--jobs-rows", type=int, default=10_000)
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each jobs-sweep case (median reported)"
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data and the search.")
    parser.add_argument(
        "--max-time", type=float, default=None, help="Optional time cap per search (default: none)."
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="Seconds per case.")
    parser.add_argument("--run-case", nargs=2, metavar=("CASE", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_case:
        case = Case(**json.loads(args.run_case[0]))
        print(json.dumps(run_case(case, Path(args.run_case[1]))))
        return

    cases = plan(args)
    load_before = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M")
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="nalu-sr-scaling-") as folder:
        written: dict[tuple, Path] = {}
        for case in cases:
            key = (case.rows, case.columns, case.formula, case.seed)
            if key not in written:
                written[key] = Path(folder) / f"table_{len(written)}.csv"
                write_table(written[key], case.rows, case.columns, case.formula, case.seed)
            outcome = measure(case, written[key], args.timeout)
            outcome.extra["csv_mb"] = written[key].stat().st_size / 2**20
            outcomes.append(outcome)
            print(markdown_table([outcome]).splitlines()[-1], flush=True)
    header = (
        "# Scaling of the search\n\n"
        f"`python benchmarks/scaling.py {' '.join(argv or sys.argv[1:])}`\n\n"
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {started}; load average "
        f"{load_before:.1f} when the run started and {os.getloadavg()[0]:.1f} when it ended. "
        "The machine is shared with other work, so the timings are noisy.\n\n"
        "Default search settings, seed "
        f"{args.seed}, "
        f"{'no time cap' if args.max_time is None else f'max_time {args.max_time:g} s'}; "
        "each case in a fresh interpreter. "
        "`read s`: pandas reading the CSV (usecols, float64, C parser); `warm-up s`: loading "
        "the search's modules first, in each worker when n_jobs > 1 (starting the workers and "
        "loading torch in them); `search s`: find_formula after it (time to formula); "
        "`CPU s`: CPU seconds of the case and its workers during the search; `process s`: the "
        "whole case with imports and warm-up; `peak MB`: the case's peak resident set; "
        "`workers MB`: its largest worker's; `tree MB`: largest "
        "sampled sum over the case and its workers."
    )
    print("\n" + write_results(outcomes, args.out, header))


if __name__ == "__main__":
    main()
