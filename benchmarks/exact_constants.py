"""How often the exact-constant rule names a constant, rightly and wrongly, on noisy data.

For each noise level, many tables ``y = c*a*b`` (a, b uniform in [1, 5], 300 fitted rows, the
suite's training share of 500) are made with Gaussian noise on ``y`` of that share of its RMS,
and the constant is fitted by least squares with an intercept and passed through the search's
rule (:func:`nalu_sr.search.candidates.exact_coefficients`: three standard errors and the
coincidence bound). Three kinds of constant:

- ``measured``: ``c = 10**u``, ``u`` uniform in [-3, 3] (a measured physical constant; any exact
  name for it is a false naming, the failure the rule must keep rare);
- ``pi``: constants physics writes with pi (``1/(4*pi)``, ``1/(16*pi**2)``, ``4*pi/3``, ...);
- ``roots and e``: ``1/sqrt(2*pi)``, ``sqrt(2)``, ``2/sqrt(pi)``, ``e``, ..., as the slope of
  ``y = c*a*b`` and, fitted on ``log(y)``, as the factor of ``y = c*exp(-a/b)`` (whose fitted
  number is ``log(c)``);
- ``logarithms``: ``log(2)``, ``1/log(2)``, ``1/log(10)`` and small multiples (a half-life's,
  bits', decades') as the slope of ``y = c*a*b``;
- ``simple``: integers and small fractions (``1``, ``1/2``, ``9/5``, ``32``, ...).

For ``pi`` and ``simple`` the rate reported is how often the true form is named. The table is
printed and written to ``<out>.csv`` and ``<out>.md``. Run with ``--help`` for the options.
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
import sympy
from markdown import markdown_table

from nalu_sr.search.candidates import exact_coefficients

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "exact_constants"

PI_CONSTANTS = [
    1 / (4 * sympy.pi),
    1 / (2 * sympy.pi),
    1 / sympy.pi,
    3 / (4 * sympy.pi),
    1 / (16 * sympy.pi**2),
    4 * sympy.pi / 3,
    sympy.pi / 2,
    2 * sympy.pi,
    sympy.pi**2 / 6,
]
ROOT_CONSTANTS = [
    1 / sympy.sqrt(2 * sympy.pi),
    sympy.sqrt(2),
    sympy.sqrt(2) / 2,
    2 / sympy.sqrt(sympy.pi),
    sympy.sqrt(sympy.pi) / 2,
    sympy.sqrt(2 * sympy.pi),
    sympy.E,
    1 / sympy.E,
]
LOG_CONSTANTS = [
    sympy.log(2),
    sympy.log(2) / 2,
    1 / sympy.log(2),
    1 / sympy.log(10),
    2 / sympy.log(10),
]
SIMPLE_CONSTANTS = [
    sympy.Integer(1),
    sympy.Integer(2),
    sympy.Rational(1, 2),
    sympy.Rational(3, 2),
    sympy.Rational(9, 5),
    sympy.Rational(1, 3),
    sympy.Integer(32),
    sympy.Rational(4, 3),
]


def name_constant(
    c: float, noise: float, rng: np.random.Generator, rows: int
) -> tuple[sympy.Expr, bool]:
    """The name the rule gives the slope of one noisy table ``y = c*a*b``, and whether it
    counts as pinned (exact) rather than estimated."""
    a, b = rng.uniform(1, 5, rows), rng.uniform(1, 5, rows)
    clean = c * a * b
    y = clean + rng.normal(0, noise * np.sqrt(np.mean(clean**2)), rows)
    design = np.column_stack([np.ones(rows), a * b])
    coefficients = np.linalg.lstsq(design, y, rcond=None)[0]
    fitted = exact_coefficients(design, coefficients, y, np.ones(rows, bool), "y", 1e-6)
    return fitted.values[1], 1 not in fitted.estimated


def name_factor_of_exponential(
    c: float, noise: float, rng: np.random.Generator, rows: int
) -> tuple[sympy.Expr, bool]:
    """The name the rule gives the factor ``c`` of one noisy table ``y = c*exp(-a/b)`` fitted
    on ``log(y)``, where the fitted number is ``log(c)``. The noise is relative (``y`` stays
    positive): Gaussian of the given share times ``y``."""
    a, b = rng.uniform(1, 5, rows), rng.uniform(1, 5, rows)
    y = c * np.exp(-a / b) * (1 + rng.normal(0, noise, rows))
    design = np.column_stack([np.ones(rows), a / b])
    coefficients = np.linalg.lstsq(design, np.log(y), rcond=None)[0]
    fitted = exact_coefficients(design, coefficients, y, np.ones(rows, bool), "log(y)", 1e-6)
    return sympy.exp(fitted.values[0]), 0 not in fitted.estimated


KINDS = {
    "pi": (PI_CONSTANTS, name_constant),
    "roots and e": (ROOT_CONSTANTS, name_constant),
    "roots and e, on log(y)": (ROOT_CONSTANTS, name_factor_of_exponential),
    "logarithms": (LOG_CONSTANTS, name_constant),
    "simple": (SIMPLE_CONSTANTS, name_constant),
}


def run(noise_levels, trials: int, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    records = []
    for noise in noise_levels:
        for _ in range(trials):
            c = float(10 ** rng.uniform(-3, 3))
            name, pinned = name_constant(c, noise, rng, rows)
            exact = pinned and _is_exact(name)
            records.append(("measured", noise, f"{c:.6g}", str(name), exact, False))
        for kind, (constants, namer) in KINDS.items():
            for k in range(trials):
                truth = constants[k % len(constants)]
                name, pinned = namer(float(truth), noise, rng, rows)
                exact = pinned and _is_exact(name)
                right = exact and sympy.simplify(name - truth) == 0
                records.append((kind, noise, str(truth), str(name), exact, right))
    return pd.DataFrame(
        records, columns=["kind", "noise", "constant", "named", "exact_name", "right_name"]
    )


def _is_exact(name: sympy.Expr) -> bool:
    """A name that claims an exact number (an estimate written with few digits may read as an
    integer; the rule's ``estimated`` list tells them apart)."""
    return not name.atoms(sympy.Float) and name != 0


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for noise, part in frame.groupby("noise", sort=True):
        measured = part[part.kind == "measured"]
        row = {
            "noise": noise,
            "measured named exact (false)": f"{measured.exact_name.sum()}/{len(measured)}",
        }
        for kind in KINDS:
            cell = part[part.kind == kind]
            row[f"{kind}: right"] = f"{cell.right_name.sum()}/{len(cell)}"
            row[f"{kind}: wrong"] = f"{(cell.exact_name & ~cell.right_name).sum()}/{len(cell)}"
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.001, 0.01])
    parser.add_argument("--trials", type=int, default=400, help="tables per kind and noise")
    parser.add_argument("--rows", type=int, default=300, help="fitted rows per table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    frame = run(args.noise, args.trials, args.rows, args.seed)
    table = summary(frame)
    seconds = time.perf_counter() - started
    command = "python benchmarks/exact_constants.py " + shlex.join(argv or sys.argv[1:])
    report = "\n".join(
        [
            f"Command: `{command.strip()}`",
            f"Machine: {platform.machine()}, Python {platform.python_version()}; {seconds:.0f} s",
            "",
            markdown_table(table),
            "",
        ]
    )
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out.with_suffix(".csv"), index=False)
    args.out.with_suffix(".md").write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
