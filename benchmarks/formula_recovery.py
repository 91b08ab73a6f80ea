"""Formula recovery on the public suite: is the true formula found, and is the verdict honest?

For every noise level and suite entry the search runs on the entry's training table (the
shipped CSV when the noise is 0; otherwise the same inputs regenerated with Gaussian noise on
the target, see ``--data-seed``) and each result is checked against the ground truth:

- ``recovered``: the chosen formula is the true one (see :func:`same_formula`);
- ``claimed_exact``: the search said its formula is exact (``SearchResult.exact``);
- ``false_claim``: it said exact but the formula is not the truth, the failure that matters
  most, since a user has no other way to tell;
- ``truth_in_candidates``: some row of the candidates table is the true formula (checked
  for at most ``CANDIDATES_SECONDS``; an undecided row counts as not the truth);
- ``architecture`` (CSV only): the stack and target transform that gave the chosen formula;
- ``wide_relative_rmse``: RMSE of the chosen formula on the entry's wide (extrapolation) table
  over the RMS of that table's target.
- ``validation_r2`` (CSV only): the chosen formula's coefficient of determination on the
  search's validation rows (in-range rows it did not fit on).

One table per noise level and a summary are printed; ``<out>.csv`` (one row per run) and
``<out>.md`` (the printed report) are rewritten after every run, so an interrupted benchmark
keeps what it measured. An entry whose search raises is recorded with the error text.

Run ``python benchmarks/formula_recovery.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import platform
import random
import shlex
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import sympy
from sympy.polys.polyerrors import PolynomialError
from sympy.polys.rings import sring

from nalu_sr.data import VALIDATION
from nalu_sr.datasets import SUITE, list_suite, load_suite_entry, write_suite_entry
from nalu_sr.datasets.formulas import check_ranges
from nalu_sr.datasets.suite import DEFAULT_SEED, truth
from nalu_sr.export import to_function
from nalu_sr.search import find_formula
from nalu_sr.search.engine import TrainingSettings

#: Relative tolerance under which two constants count as the same number.
RTOL = 1e-6

#: Searched once, untimed, first: the first search of a process pays for Numba compilation.
WARM_UP_ENTRY = "nac_subtract"

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "formula_recovery"

#: The search's own defaults, which ``--alternatives`` and ``--restarts`` start from.
DEFAULT_ALTERNATIVES = TrainingSettings.alternatives
DEFAULT_RESTARTS = TrainingSettings.restarts

_NOT_FINITE = (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)


# --- Is a formula the truth? ---------------------------------------------------------------


def _by_name(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every symbol replaced by the real symbol of the same name.

    The suite's truths use real symbols; a formula built elsewhere may not, and SymPy treats
    ``Symbol("x")`` and ``Symbol("x", real=True)`` as different variables.
    """
    return expr.xreplace({s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols})


def _close(a: float, b: float, rtol: float) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b))


def _relative_gaps(
    a: sympy.Expr, b: sympy.Expr, signed: bool, points: int, seed: int = 0
) -> list[float]:
    """``|a - b| / max(|a|, |b|)`` at random points (inputs in [1, 2], or +-[0.5, 3] if
    ``signed``, positive for positive symbols), skipping points where either side is not
    finite."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    rng = random.Random(seed)
    gaps = []
    for _ in range(points):
        if signed:
            values = {
                s: sympy.Float(
                    (1 if s.is_positive else rng.choice((-1, 1))) * rng.uniform(0.5, 3.0)
                )
                for s in symbols
            }
        else:
            values = {s: sympy.Float(rng.uniform(1.0, 2.0)) for s in symbols}
        va, vb = a.xreplace(values).evalf(), b.xreplace(values).evalf()
        if not (va.is_number and vb.is_number and va.is_finite and vb.is_finite):
            continue
        va, vb = complex(va), complex(vb)
        scale = max(abs(va), abs(vb))
        gaps.append(abs(va - vb) / scale if scale else 0.0)
    return gaps


def _same_rational_function(found: sympy.Expr, truth_rhs: sympy.Expr, rtol: float) -> bool:
    """``P1/Q1 == P2/Q2`` exactly when ``P1*Q2 == P2*Q1`` as polynomials.

    Both cross products are compared monomial by monomial, each pair of coefficients within
    ``rtol`` of the larger one. A monomial present on one side only (even with a tiny
    coefficient) is a difference: it is a term the truth does not have.
    """
    (p1, q1), (p2, q2) = (sympy.fraction(sympy.together(e)) for e in (found, truth_rhs))
    if q1 == 0 or q2 == 0:
        return False
    symbols = sorted(found.free_symbols | truth_rhs.free_symbols, key=lambda s: s.name)
    if not symbols:
        return _close(float(p1 * q2), float(p2 * q1), rtol)
    # Sparse polynomials: the dense ones are slow with the 100 inputs of static_product_100.
    _, (P1, Q1, P2, Q2) = sring([p1, q1, p2, q2], *symbols)
    left, right = dict(P1 * Q2), dict(P2 * Q1)
    return all(
        _close(float(left.get(m, 0)), float(right.get(m, 0)), rtol) for m in left.keys() | right
    )


def _round_floats(expr: sympy.Expr, digits: int = 6) -> sympy.Expr:
    return expr.xreplace(
        {f: sympy.Rational(f"{float(f):.{digits}g}") for f in expr.atoms(sympy.Float)}
    )


def _constants_as_floats(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every irrational constant (``pi``, ``sqrt(2)``, ``exp(-1)``) a Float."""
    return expr.replace(
        lambda e: e.is_number and e.is_finite and not e.is_Rational and not e.is_Float,
        lambda e: sympy.Float(e.evalf(30), 30),
    )


SIMPLIFY_SECONDS = 30.0
"""Longest time one SymPy ``simplify`` of the checker may take before it gives up."""


class CheckTimeout(BaseException):
    """SymPy could not decide within ``SIMPLIFY_SECONDS`` whether two formulas are equal.

    Not an ``Exception``: SymPy catches those inside ``simplify`` and would go on."""


def _raise_timeout(signum: int, frame: object) -> None:
    raise CheckTimeout


def _simplifies_to_zero(expr: sympy.Expr) -> bool:
    """Whether ``sympy.simplify`` reduces ``expr`` to 0; `CheckTimeout` past ``SIMPLIFY_SECONDS``.

    The bound is an interval timer, so it holds only in the main thread of a Unix process;
    elsewhere the simplification runs unbounded.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        return sympy.simplify(expr) == 0
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, SIMPLIFY_SECONDS)
    try:
        return sympy.simplify(expr) == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def same_formula(
    found: sympy.Expr | None,
    truth_rhs: sympy.Expr,
    rtol: float = RTOL,
    positive: frozenset[str] = frozenset(),
) -> bool:
    """Whether ``found`` is the same function as ``truth_rhs``, constants within ``rtol``.

    Symbols are matched by name. A formula more than 0.1% off the truth at each of three
    random points is rejected at once. When both sides are rational functions of their symbols
    (every arithmetic entry), the check is exact algebra: the two cross-multiplied numerator
    polynomials must have the same monomials with coefficients within ``rtol`` relative
    (products of two perturbed constants may drift up to about ``2 * rtol``). Otherwise
    (``sin`` and the like) both must agree at 20 random points within ``10 * rtol`` *and*
    ``sympy.simplify`` must reduce their difference to 0 once every float is rounded to 6
    significant digits (hyperbolic functions written through exponentials); two constants on
    either side of a rounding boundary can then be judged different although they are within
    ``rtol``. Each ``simplify`` has ``SIMPLIFY_SECONDS``; past that `CheckTimeout` is raised,
    because the check could not decide.

    Parameters
    ----------
    found : sympy.Expr or None
        A formula; ``None`` (no formula) is never the truth.
    truth_rhs : sympy.Expr
        The ground truth's right-hand side.
    rtol : float, default=1e-6
        Relative tolerance on constants.
    positive : set of str, optional
        Names of the symbols that are positive wherever the formula is meant to hold (an
        entry's inputs whose ranges are positive): there ``sqrt(2*g*h)`` and
        ``sqrt(2)*sqrt(g)*sqrt(h)`` are the same function, and both sides are compared as such.

    Returns
    -------
    bool
    """
    if found is None:
        return False
    # Exact constants such as 1/(4*pi) or sqrt(2)/2 are compared as numbers (the suite writes
    # them as floats, and polynomial coefficients must be numbers).
    found = _constants_as_floats(_by_name(sympy.sympify(found, strict=True)))
    truth_rhs = _constants_as_floats(_by_name(sympy.sympify(truth_rhs, strict=True)))
    if found.has(*_NOT_FINITE) or truth_rhs.has(*_NOT_FINITE):
        return False
    # Cheap rejection first: equal formulas cannot differ by 0.1% at three random points
    # unless each point is within ~1e-3 of a root, which random points are not.
    gaps = _relative_gaps(found, truth_rhs, signed=False, points=3)
    if gaps and min(gaps) > 1e-3:
        return False
    symbols = found.free_symbols | truth_rhs.free_symbols
    if found.is_rational_function(*symbols) and truth_rhs.is_rational_function(*symbols):
        try:
            return _same_rational_function(found, truth_rhs, rtol)
        except PolynomialError:
            pass
    # Symbols positive on the formula's domain are positive symbols (and positive points).
    swap = {s: sympy.Symbol(s.name, positive=True) for s in symbols if s.name in positive}
    found, truth_rhs = found.xreplace(swap), truth_rhs.xreplace(swap)
    gaps = _relative_gaps(found, truth_rhs, signed=True, points=20)
    if not gaps or max(gaps) > 10 * rtol:
        return False
    difference = _round_floats(found) - _round_floats(truth_rhs)
    if _simplifies_to_zero(difference):
        return True
    # Hyperbolic functions through exponentials: K*(tanh(r*t/2) + 1)/2 is K/(1 + exp(-r*t)).
    hyperbolic = (sympy.tanh, sympy.sinh, sympy.cosh)
    return difference.has(*hyperbolic) and _simplifies_to_zero(difference.rewrite(sympy.exp))


#: The coefficient of determination on the validation rows a chosen formula, exact or
#: not, should reach: an approximation worth having.
R2_TARGET = 0.999

CANDIDATES_SECONDS = 120.0
"""Longest time the check of one run's candidates against the truth may take in all."""


def _truth_among(
    candidates: Sequence[sympy.Expr], truth_rhs: sympy.Expr, positive: frozenset[str]
) -> bool:
    """Whether a candidate is the truth; an undecided check reads as different, and the scan
    stops (no) after ``CANDIDATES_SECONDS``, so it says "not seen" rather than "not there"."""
    started = time.perf_counter()
    for expr in candidates:
        if time.perf_counter() - started > CANDIDATES_SECONDS:
            return False
        try:
            if same_formula(expr, truth_rhs, positive=positive):
                return True
        except CheckTimeout:
            continue
    return False


# --- One search, checked ------------------------------------------------------------------


@dataclass
class Run:
    """One search on one entry at one noise level, and what the checks found."""

    noise: float
    entry: str
    arithmetic: bool
    truth: str
    found: str = ""
    architecture: str = ""
    recovered: bool = False
    claimed_exact: bool = False
    false_claim: bool = False
    truth_in_candidates: bool = False
    candidates: int = 0
    seconds: float = math.nan
    wall_seconds: float = math.nan
    timed_out: bool = False
    wide_relative_rmse: float = math.nan
    validation_r2: float = math.nan
    message: str = ""
    error: str = ""


def training_table(name: str, noise: float, data_seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The table the search sees: the shipped CSV, or a regenerated one with noise.

    With the shipped seed the generator draws the inputs first and the noise afterwards, so a
    noisy table has exactly the shipped inputs; only the target differs.
    """
    if noise == 0 and data_seed == DEFAULT_SEED:
        return load_suite_entry(name)
    with tempfile.TemporaryDirectory() as folder:
        write_suite_entry(name, folder, noise=noise, random_state=data_seed)
        return load_suite_entry(name, directory=folder)


def wide_relative_rmse(expr: sympy.Expr, name: str) -> float:
    """RMSE of ``expr`` on the entry's wide table over the RMS of its target (inf if not finite)."""
    entry = SUITE[name]
    wide = load_suite_entry(name, wide=True)
    function = to_function(expr, list(entry.inputs))
    with np.errstate(all="ignore"):
        predicted = np.asarray(function(*(wide[c].to_numpy() for c in entry.inputs)), dtype=float)
    target = wide[entry.target].to_numpy()
    if not np.all(np.isfinite(predicted)):
        return math.inf
    rms = float(np.sqrt(np.mean(target**2))) or 1.0
    return float(np.sqrt(np.mean((predicted - target) ** 2))) / rms


def r_squared(expr: sympy.Expr, rows: pd.DataFrame, inputs: Sequence[str], target: str) -> float:
    """The coefficient of determination of ``expr`` on ``rows`` (-inf where it is not finite)."""
    function = to_function(expr, list(inputs))
    with np.errstate(all="ignore"):
        predicted = np.asarray(function(*(rows[c].to_numpy() for c in inputs)), dtype=float)
    actual = rows[target].to_numpy()
    predicted = np.broadcast_to(predicted, actual.shape)
    if not np.all(np.isfinite(predicted)):
        return -math.inf
    spread = float(np.sum((actual - actual.mean()) ** 2))
    residual = float(np.sum((actual - predicted) ** 2))
    return 1.0 - residual / spread if spread > 0 else math.nan


def run_entry(
    name: str,
    noise: float,
    *,
    max_time: float | None = None,
    effort: float = 1.0,
    seed: int,
    n_jobs: int,
    data_seed: int = DEFAULT_SEED,
    settings: TrainingSettings | None = None,
) -> Run:
    """Search one entry and check the result; an exception becomes a failed run."""
    entry = SUITE[name]
    truth_rhs = truth(name).rhs
    run = Run(noise=noise, entry=name, arithmetic=entry.is_arithmetic, truth=str(truth_rhs))
    started = time.perf_counter()
    try:
        table = training_table(name, noise, data_seed)
        result = find_formula(
            table[list(entry.inputs)],
            table[entry.target],
            feature_names=list(entry.inputs),
            max_time=max_time,
            effort=effort,
            n_jobs=n_jobs,
            random_state=seed,
            settings=settings,
        )
        run.wall_seconds = time.perf_counter() - started
        run.seconds = float(result.seconds)
        run.timed_out = bool(result.timed_out)
        run.message = result.message
        run.claimed_exact = bool(result.exact)
        run.candidates = len(result.candidates)
        run.found = "" if result.formula is None else str(result.formula)
        if result.chosen is not None:
            chosen = result.candidates.iloc[result.chosen]
            run.architecture = f"{chosen['architecture']} on {chosen['transform']}"
        positive = frozenset(
            name
            for name, intervals in check_ranges(entry.wide_ranges).items()
            if min(lo for lo, _ in intervals) > 0
        )
        try:
            run.recovered = same_formula(result.formula, truth_rhs, positive=positive)
        except CheckTimeout:
            # Undecided is not recovered: a claimed formula then counts as a false claim, the
            # pessimistic reading, and the error column says why.
            run.error = f"checker: SymPy undecided after {SIMPLIFY_SECONDS:g} s"
        run.false_claim = run.claimed_exact and not run.recovered
        run.truth_in_candidates = run.recovered or _truth_among(
            result.candidates["sympy_format"], truth_rhs, positive
        )
        if result.formula is not None:
            run.wide_relative_rmse = wide_relative_rmse(result.formula, name)
            # The split labels the rows searched, the table's own unless some repeated.
            if len(result.split.labels) == len(table):
                validation = table.iloc[result.split.rows(VALIDATION)]
                run.validation_r2 = r_squared(
                    result.formula, validation, list(entry.inputs), entry.target
                )
    except Exception as error:  # one broken entry must not stop the benchmark
        run.error = f"{type(error).__name__}: {error}"
        if math.isnan(run.wall_seconds):
            run.wall_seconds = time.perf_counter() - started
    return run


# --- Report -------------------------------------------------------------------------------


def _cell(text: str, width: int = 60) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.0%})" if total else "0/0"


def noise_table(runs: Sequence[Run]) -> str:
    """Markdown table of the runs of one noise level."""
    lines = [
        "| entry | truth | found | recovered | claimed exact | false claim | truth in candidates "
        "| seconds | timed out | wide-range error |",
        "|---|---|---|---|---|---|---|---:|---|---:|",
    ]
    for r in runs:
        found = f"error: {_cell(r.error)}" if r.error else f"`{_cell(r.found)}`"
        lines.append(
            f"| {r.entry} | `{_cell(r.truth)}` | {found} | {_yes(r.recovered)} "
            f"| {_yes(r.claimed_exact)} | {'**FALSE CLAIM**' if r.false_claim else 'no'} "
            f"| {_yes(r.truth_in_candidates)} | {r.seconds:.1f} | {_yes(r.timed_out)} "
            f"| {r.wide_relative_rmse:.2e} |"
        )
    return "\n".join(lines)


def summary(runs: Sequence[Run]) -> dict[str, object]:
    """Rates and times of the runs of one noise level."""
    arithmetic = [r for r in runs if r.arithmetic]
    beyond = [r for r in runs if not r.arithmetic]
    among = [r for r in arithmetic if r.truth_in_candidates]
    seconds = [r.seconds for r in runs if not math.isnan(r.seconds)]
    return {
        "runs": len(runs),
        "failed": [r.entry for r in runs if r.error],
        "recovered": (sum(r.recovered for r in arithmetic), len(arithmetic)),
        "recovered_beyond": (sum(r.recovered for r in beyond), len(beyond)),
        "claimed": (sum(r.claimed_exact for r in runs), len(runs)),
        "false_claims": [r.entry for r in runs if r.false_claim],
        "unclaimed": [r.entry for r in runs if r.recovered and not r.claimed_exact],
        "in_candidates": (len(among), len(arithmetic)),
        "chosen": (sum(r.recovered for r in among), len(among)),
        "timed_out": [r.entry for r in runs if r.timed_out],
        "r2": (sum(r.validation_r2 >= R2_TARGET for r in runs), len(runs)),
        "median_seconds": statistics.median(seconds) if seconds else math.nan,
        "max_seconds": max(seconds) if seconds else math.nan,
    }


def summary_lines(runs: Sequence[Run]) -> list[str]:
    s = summary(runs)

    def names(key: str) -> str:
        found = s[key]
        return f"{len(found)}" + (f" ({', '.join(found)})" if found else "")

    return [
        f"- exact recovery over arithmetic entries: {_rate(*s['recovered'])}",
        f"- exact recovery over entries beyond arithmetic: {_rate(*s['recovered_beyond'])}",
        f"- claimed exact: {_rate(*s['claimed'])}",
        f"- false claims (claimed exact, formula wrong): {names('false_claims')}",
        f"- recovered but not claimed exact: {names('unclaimed')}",
        f"- truth among the candidates (arithmetic entries): {_rate(*s['in_candidates'])}",
        f"- truth chosen when among the candidates: {_rate(*s['chosen'])}",
        f"- seconds per search: median {s['median_seconds']:.1f}, max {s['max_seconds']:.1f}; "
        f"timed out: {names('timed_out')}",
        f"- chosen formula with R² >= {R2_TARGET} on the validation rows: {_rate(*s['r2'])}",
        f"- failed with an error: {names('failed')}",
    ]


def report(runs: Sequence[Run], header: Sequence[str]) -> str:
    """The whole markdown report: settings, then a table and a summary per noise level."""
    parts = ["# Formula recovery on the suite", "", *header]
    for noise in dict.fromkeys(r.noise for r in runs):
        level = [r for r in runs if r.noise == noise]
        parts += ["", f"## Noise {noise:g} (of the target's RMS)", "", noise_table(level), ""]
        parts += summary_lines(level)
    return "\n".join(parts) + "\n"


def write_outputs(runs: Sequence[Run], out: Path, header: Sequence[str]) -> list[Path]:
    """Write ``<out>.csv`` and ``<out>.md``; return their paths."""
    csv_path, md_path = Path(f"{out}.csv"), Path(f"{out}.md")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    columns = [f.name for f in fields(Run)]
    pd.DataFrame([asdict(r) for r in runs], columns=columns).to_csv(csv_path, index=False)
    md_path.write_text(report(runs, header), encoding="utf-8")
    return [csv_path, md_path]


# --- Command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run the formula search on suite entries and check the formulas it finds."
    )
    parser.add_argument(
        "--entries", nargs="+", default=None, help="suite entries (default: all of them)"
    )
    parser.add_argument(
        "--noise",
        nargs="+",
        type=float,
        default=[0.0, 0.001, 0.01],
        help="noise levels, as fractions of the target's RMS (default: 0 0.001 0.01)",
    )
    parser.add_argument(
        "--effort",
        type=float,
        default=1.0,
        help="the search plan's effort (default: 1, the search's own default)",
    )
    parser.add_argument(
        "--max-time",
        type=float,
        default=None,
        help="optional time cap per search in seconds (default: none, as the search's own)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default: 0)")
    parser.add_argument(
        "--data-seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the noisy tables; the default keeps the shipped inputs (default: 0)",
    )
    parser.add_argument(
        "--n-jobs", type=int, default=1, help="architectures trained in parallel (default: 1)"
    )
    parser.add_argument(
        "--alternatives",
        type=int,
        default=DEFAULT_ALTERNATIVES,
        help="snapped structures tried per trained copy: the nearest snap and its nearby "
        f"alternatives (default: {DEFAULT_ALTERNATIVES}, the search's own default)",
    )
    parser.add_argument(
        "--restarts",
        type=int,
        default=DEFAULT_RESTARTS,
        help="trained copies per scale of the grid (the centre gets more; default: "
        f"{DEFAULT_RESTARTS}, the search's own default)",
    )
    parser.add_argument(
        "--warm-up",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run one untimed search first, so that the first entry's time does not include "
        "one-off Numba compilation (default: on)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output path without suffix; .csv and .md are written "
        "(default: benchmarks/results/formula_recovery)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    entries = args.entries or list_suite()
    for name in entries:
        if name not in SUITE:
            close = difflib.get_close_matches(name, list_suite(), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            parser.error(f"unknown entry {name!r}.{hint} Valid: {', '.join(list_suite())}.")
    if any(not (math.isfinite(n) and n >= 0) for n in args.noise):
        parser.error(f"noise levels must be finite and >= 0, got {args.noise}.")
    capped = args.max_time is not None
    if (
        (capped and args.max_time <= 0)
        or args.effort <= 0
        or args.data_seed < 0
        or min(args.alternatives, args.restarts) < 1
    ):
        parser.error(
            "--max-time and --effort must be positive, --data-seed non-negative, and "
            "--alternatives and --restarts at least 1."
        )
    noises = list(dict.fromkeys(args.noise))
    given = sys.argv[1:] if argv is None else list(argv)
    command = ["python", "benchmarks/formula_recovery.py", *given]
    header = [
        f"`{shlex.join(command)}`",
        "",
        f"effort {args.effort:g}, "
        f"{f'max_time {args.max_time:g} s' if capped else 'no time cap'} per search, "
        f"search seed {args.seed}, data seed "
        f"{args.data_seed}, n_jobs {args.n_jobs}, restarts {args.restarts}, "
        f"alternatives per copy {args.alternatives}, "
        f"warm-up {'on' if args.warm_up else 'off'}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        f"`recovered`: the chosen formula equals the truth, constants within {RTOL:g} relative "
        "(cross-multiplied polynomials compared monomial by monomial; see `same_formula`). "
        "`false claim`: the search reported an exact formula that is not the truth. "
        "`wide-range error`: relative RMSE of the chosen formula on the entry's wide table.",
    ]
    if args.warm_up:
        warm = run_entry(WARM_UP_ENTRY, 0.0, max_time=args.max_time, seed=0, n_jobs=args.n_jobs)
        print(f"warm-up on {WARM_UP_ENTRY}: {warm.wall_seconds:.1f} s", file=sys.stderr)
    settings = TrainingSettings(alternatives=args.alternatives, restarts=args.restarts)
    runs: list[Run] = []
    total = len(noises) * len(entries)
    for noise in noises:
        for name in entries:
            run = run_entry(
                name,
                noise,
                max_time=args.max_time,
                effort=args.effort,
                seed=args.seed,
                n_jobs=args.n_jobs,
                data_seed=args.data_seed,
                settings=settings,
            )
            runs.append(run)
            status = run.error or f"{run.found} ({'recovered' if run.recovered else 'missed'})"
            print(
                f"[{len(runs)}/{total}] noise {noise:g} {name}: {status}, {run.wall_seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            paths = write_outputs(runs, args.out, header)
    print(report(runs, header))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
