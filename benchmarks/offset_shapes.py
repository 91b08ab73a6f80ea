"""A product with an offset or a sign around it: ``1 - Tc/Th``, ``2 - a/b``, ``5 - a*b``, ...

These formulas are one product term plus an intercept, the commonest shape in science, and a
copy that matches the target as it is cannot train towards them (the target decreases where
the product grows, or sits on a large offset). Each case is searched with the default
settings and with the affine copies switched off (``TrainingSettings(affine_copies=0)``), on
500 noise-free rows (search seed 0, data seed 0, ``max_time`` 60 s, ``n_jobs`` 1). The table
is printed and written to ``<out>.csv`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nalu_sr.search import TrainingSettings, find_formula

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "offset_shapes"

#: name: (truth, {input: range}, function of the inputs)
CASES = {
    "carnot_efficiency": (
        "1 - Tc/Th",
        {"Tc": (250, 300), "Th": (400, 600)},
        lambda v: 1 - v["Tc"] / v["Th"],
    ),
    "one_plus_ratio": (
        "1 + Tc/Th",
        {"Tc": (250, 300), "Th": (400, 600)},
        lambda v: 1 + v["Tc"] / v["Th"],
    ),
    "two_minus_ratio": ("2 - a/b", {"a": (1, 3), "b": (1, 3)}, lambda v: 2 - v["a"] / v["b"]),
    "five_minus_product": (
        "5 - a*b",
        {"a": (1, 3), "b": (1, 3)},
        lambda v: 5 - v["a"] * v["b"],
    ),
    "input_minus_product": (
        "c - a*b",
        {"a": (1, 3), "b": (1, 3), "c": (1, 3)},
        lambda v: v["c"] - v["a"] * v["b"],
    ),
    "energy_with_offset": (
        "3 + m*v**2/2",
        {"m": (1, 2), "v": (1, 10)},
        lambda v: 3 + 0.5 * v["m"] * v["v"] ** 2,
    ),
}


def run_case(name: str, affine_copies: int, seed: int, rows: int, max_time: float) -> dict:
    truth, ranges, function = CASES[name]
    rng = np.random.default_rng(seed)
    values = {k: rng.uniform(lo, hi, rows) for k, (lo, hi) in ranges.items()}
    X = np.column_stack(list(values.values()))
    started = time.perf_counter()
    result = find_formula(
        X,
        function(values),
        feature_names=list(values),
        max_time=max_time,
        random_state=0,
        settings=TrainingSettings(affine_copies=affine_copies),
    )
    chosen = result.candidates.loc[result.chosen] if result.chosen is not None else None
    return {
        "case": name,
        "truth": truth,
        "affine_copies": affine_copies,
        "found": str(result.formula),
        "exact": bool(result.exact),
        "architecture": "" if chosen is None else chosen["architecture"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--affine-copies", nargs="+", type=int, default=[0, 8])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data")
    parser.add_argument("--max-time", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    records = []
    for name in args.cases:
        for copies in args.affine_copies:
            records.append(run_case(name, copies, args.seed, args.rows, args.max_time))
            print(records[-1], flush=True)
    frame = pd.DataFrame(records)
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns)
    lines = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(False)]
    command = "python benchmarks/offset_shapes.py " + shlex.join(argv or sys.argv[1:])
    report = "\n".join(
        [f"Command: `{command.strip()}`", f"Python {platform.python_version()}", "", header, *lines]
    )
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    args.out.with_suffix(".md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
