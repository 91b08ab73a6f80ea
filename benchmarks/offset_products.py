"""Products of sums over columns of very different sizes: is the exact formula found?

Physical formulas often multiply a difference of two large, similar quantities by a quantity
of another size: ``k*(T1 - T2)`` with temperatures near 300 K, ``A*(p1 - p2)`` with pressures
near 1e5 Pa. Each case draws its inputs uniformly from the ranges below (seed ``--seed``),
adds Gaussian noise of ``--noise`` times the target's RMS, runs the search with default
settings and checks the chosen formula against the truth symbolically.

Prints one table and writes it to ``<out>.md`` and ``<out>.csv``.

Run ``python benchmarks/offset_products.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import numpy as np
import sympy

from nalu_sr.search import find_formula

#: name -> (truth as a SymPy string, {input: (low, high)}).
CASES: dict[str, tuple[str, dict[str, tuple[float, float]]]] = {
    "temperature difference": ("k*(T1 - T2)", {"T1": (290, 310), "T2": (290, 310), "k": (1, 2)}),
    "pressure difference": (
        "A*(p1 - p2)",
        {"p1": (1.0e5, 1.2e5), "p2": (0.9e5, 1.0e5), "A": (0.01, 0.05)},
    ),
    "net force": ("d*(F - f)", {"F": (900, 1100), "f": (100, 300), "d": (0.5, 2)}),
    "scaled difference": (
        "5*k*(T1 - T2)/2",
        {"T1": (290, 310), "T2": (290, 310), "k": (1, 2)},
    ),
    "heat (three sizes)": (
        "m*c*(T1 - T2)",
        {"m": (0.5, 2), "c": (4000, 4400), "T1": (330, 370), "T2": (290, 310)},
    ),
    "same sizes (control)": ("c*(a - b)", {"a": (1, 5), "b": (1, 5), "c": (1, 5)}),
}

COLUMNS = ["case", "truth", "noise", "found", "recovered", "exact", "seconds", "last job"]


def run_case(name: str, rows: int, noise: float, seed: int, max_time: float) -> dict:
    truth_text, ranges = CASES[name]
    rng = np.random.default_rng(seed)
    symbols = sympy.symbols(list(ranges))
    X = np.column_stack([rng.uniform(low, high, rows) for low, high in ranges.values()])
    truth = sympy.sympify(truth_text, locals=dict(zip(ranges, symbols, strict=True)))
    y = sympy.lambdify(symbols, truth, "numpy")(*X.T)
    y = y + noise * np.sqrt(np.mean(y**2)) * rng.standard_normal(rows)
    started = time.perf_counter()
    result = find_formula(X, y, feature_names=list(ranges), random_state=seed, max_time=max_time)
    seconds = time.perf_counter() - started
    found = result.formula
    recovered = (
        found is not None
        and sympy.simplify(found - truth.subs(dict(zip(symbols, result.symbols, strict=True)))) == 0
    )
    return {
        "case": name,
        "truth": truth_text,
        "noise": noise,
        "found": str(found),
        "recovered": "yes" if recovered else "no",
        "exact": "yes" if result.exact else "no",
        "seconds": f"{seconds:.1f}",
        "last job": result.jobs[-1] if result.jobs else "",
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [f"`{row[c]}`" if c in ("truth", "found") else str(row[c]) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/offset_products"))
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-time", type=float, default=120.0)
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M")
    rows = []
    for noise in args.noise:
        for name in CASES:
            rows.append(run_case(name, args.rows, noise, args.seed, args.max_time))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    table = markdown(rows)
    header = (
        f"# Products of sums over columns of different sizes\n\n"
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {started}; {args.rows} rows, "
        f"seed {args.seed}, max_time {args.max_time:g} s.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(f"{header}\n{table}\n")
    with args.out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print("\n" + table)


if __name__ == "__main__":
    main()
