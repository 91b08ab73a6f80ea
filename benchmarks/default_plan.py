"""How long the default search plan takes when nothing is found, and whether it repeats.

Each case is a table whose target no stage of the search reaches (noise-free, so the search
cannot stop on noise either) or pure noise, searched twice with the default settings
(``effort=1``, no time cap, ``n_jobs`` 1, seed 0): the second time beside processes that keep
every core busy. The table gives the wall time of each run, the stages trained and left out,
and whether the two runs gave the same formula and the same candidates table. It is printed
and written to ``<out>.csv`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from markdown import markdown_table

from nalu_sr.search import find_formula

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "default_plan"


def table(case: str, columns: int, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Inputs on [1, 3] and a target outside the search space, or noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(1, 3, (rows, columns)), columns=[f"x{i}" for i in range(columns)])
    if case == "noise":
        return X, rng.standard_normal(rows)
    wave = X.iloc[:, 0] * np.sin(2 * X.iloc[:, 1 % columns])
    return X, (wave + np.exp(X.iloc[:, -1] / 3)).to_numpy()


def _spinners(count: int, seconds: float) -> list[subprocess.Popen]:
    loop = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]


def run_case(case: str, columns: int, rows: int, seed: int, effort: float = 1.0) -> dict:
    X, y = table(case, columns, rows, seed)
    results, seconds = [], []
    for busy in (False, True):
        spinners = _spinners(os.cpu_count() or 2, 3600) if busy else []
        started = time.perf_counter()
        try:
            results.append(find_formula(X, y, random_state=0, effort=effort))
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
        seconds.append(time.perf_counter() - started)
    idle, loaded = results
    same = idle.formula == loaded.formula and idle.candidates.equals(loaded.candidates)
    return {
        "case": case,
        "columns": columns,
        "rows": rows,
        "idle s": round(seconds[0], 1),
        "busy s": round(seconds[1], 1),
        "jobs": len(idle.jobs),
        "stages left": idle.stages_left,
        "ended on noise": idle.explained,
        "timed out": idle.timed_out or loaded.timed_out,
        "same result": same,
        "formula": str(idle.formula),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", nargs="+", type=int, default=[3, 10])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="seed of the tables (default: 0)")
    parser.add_argument(
        "--effort", type=float, default=1.0, help="the search plan's effort (default: 1)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    cases = [("outside", c) for c in args.columns] + [("noise", args.columns[-1])]
    found = []
    for case, columns in cases:
        found.append(run_case(case, columns, args.rows, args.seed, args.effort))
        print(f"{case} {columns}: {found[-1]}", file=sys.stderr, flush=True)
    frame = pd.DataFrame(found)
    header = (
        f"`{shlex.join(['python', 'benchmarks/default_plan.py', *given])}`: effort "
        f"{args.effort:g}, other settings default, "
        f"seed 0; the busy run beside {os.cpu_count()} spinning processes; Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}."
    )
    text = header + "\n\n" + markdown_table(frame)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0 if frame["same result"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
