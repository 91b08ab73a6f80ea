"""``find_formula``: the whole search, from a table of numbers to a checked formula."""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import sympy
from joblib import Parallel, delayed, effective_n_jobs

from ..data import EXTRAPOLATION, TRAIN, VALIDATION, Split, split_rows
from ..scoring import SplitRows, group_rows, pack, score_rows
from ..structure import Structure
from ..symbolic import feature_symbols
from .candidates import (
    Candidate,
    apply_transform,
    build_candidate,
    candidates_table,
    choose,
    mark_exact,
)
from .engine import JobResult, TrainingSettings, copy_chunks, run_job
from .space import (
    Architecture,
    FeatureTable,
    build_feature_table,
    default_architectures,
    with_scale_group_variants,
    with_whitened_variants,
)

#: Fewest rows a search accepts: enough to hold out, validate and fit a few constants.
MIN_SAMPLES = 10

#: Fitted rows on which each formula's residual is checked for structure (noisy data).
PROBE_ROWS = 1000

#: Structures per architecture and transform promoted to full (symbolic) candidates. A job
#: trained in chunks promotes a share from each chunk as it arrives (see :func:`_promoted`).
PROMOTED = 12

#: Below this many candidate-rows, ``scoring_backend="auto"`` scores with NumPy: Numba's
#: one-off compilation (seconds, cached on disk afterwards) would cost more than it saves.
NUMBA_WORTHWHILE = 2_000_000

#: ``progress(done, total, description)`` after each trained architecture.
Progress = Callable[[int, int, str], None]


@dataclass
class SearchResult:
    """What :func:`find_formula` found.

    Attributes
    ----------
    formula : sympy.Expr or None
        The chosen formula over symbols named after the columns.
    exact : bool
        Whether the chosen formula holds on the held-out extrapolation rows within tolerance
        and the data pin each of its constants (see :attr:`holds`).
    candidates : pandas.DataFrame
        One row per distinct formula (see :func:`~nalu_sr.search.candidates.candidates_table`).
    chosen : int or None
        Row of ``candidates`` holding ``formula``.
    feature_names : list of str
    symbols : list of sympy.Symbol
    split : Split
        Which rows were train, validation and extrapolation rows.
    tolerance : float
        Relative error under which a formula counted as exact.
    message : str
        A one-line verdict for people.
    """

    formula: sympy.Expr | None
    exact: bool
    candidates: pd.DataFrame
    chosen: int | None
    feature_names: list[str]
    symbols: list[sympy.Symbol]
    split: Split
    tolerance: float
    message: str
    seconds: float = 0.0
    reseeded: int = 0
    interrupted: bool = False
    timed_out: bool = False
    jobs: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        """Whether the chosen formula holds on the held-out extrapolation rows within
        tolerance, exact or with constants that are estimates (noisy data)."""
        if self.chosen is None:
            return False
        row = self.candidates.loc[self.chosen]
        return bool(row["holds"]) if "holds" in row else self.exact

    @property
    def extrapolation(self) -> dict:
        """The held-out ranges and the chosen formula's errors there."""
        counts = self.split.counts()
        report = {
            "rows": counts["extrapolation"],
            "explicit": self.split.explicit,
            "fitted_ranges": {
                name: (float(lo), float(hi))
                for name, (lo, hi) in zip(self.feature_names, self.split.train_ranges, strict=True)
            },
            "tolerance": self.tolerance,
            "exact": self.exact,
        }
        if self.chosen is not None:
            row = self.candidates.loc[self.chosen]
            report["relative_rmse"] = float(row["loss_extrapolation"])
            report["max_relative_error"] = float(row["max_error_extrapolation"])
        return report


def _check_inputs(X, y, feature_names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if isinstance(X, pd.DataFrame):
        feature_names = feature_names or [str(c) for c in X.columns]
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D table of inputs, got an array of shape {X.shape}.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; they must match.")
    if feature_names is None:
        feature_names = [f"x{j}" for j in range(X.shape[1])]
    feature_names = [str(n) for n in feature_names]
    if len(feature_names) != X.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names given for {X.shape[1]} columns of X.")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite: remove or fill rows with NaN or inf first.")
    if X.shape[0] < MIN_SAMPLES:
        raise ValueError(f"the search needs at least {MIN_SAMPLES} rows, got {X.shape[0]}.")
    return X, y, feature_names


def _transforms(y: np.ndarray, fit_rows: np.ndarray) -> list[str]:
    """``"y"``, and ``"1/y"`` when y keeps one sign away from zero (sums of reciprocals)."""
    fitted = y[fit_rows]
    same_sign = np.all(fitted > 0) or np.all(fitted < 0)
    if same_sign and np.abs(fitted).min() >= 1e-2 * np.abs(fitted).max():
        return ["y", "1/y"]
    return ["y"]


def _stages(
    architectures: Sequence[Architecture], transforms: Sequence[str]
) -> list[list[tuple[Architecture, str]]]:
    """Jobs (architecture, target transform) in groups, simplest first.

    The search stops after the first group that yields an exact formula, so a group's order
    is the order of preference: small stacks before wide ones, the plain target before its
    reciprocal, NALUs last. A product of inputs and reciprocals is also the reciprocal of one,
    so products are not trained again on ``1/y``. A whitened variant forms a group of its own
    just before the stacks of its width: it exists only where the plain one is expected to
    stall, and a product of sums is not the reciprocal of one, so it is not tried on ``1/y``.
    A scale-group variant (columns of different sizes) forms a group just after the stacks of
    its width, on ``y`` only: it is tried when they found nothing.
    """
    groups: dict[tuple[float, int], list[tuple[Architecture, str]]] = {}
    for transform in transforms:
        for arch in architectures:
            if transform != "y" and (arch.kind == "nmu" or arch.whitened or arch.scale_groups):
                continue
            level = 100 + arch.hidden if arch.kind.startswith("nalu") else arch.hidden
            level -= 0.5 if arch.whitened else 0
            level += 0.5 if arch.scale_groups else 0
            reciprocal = transform != "y" or arch.name.endswith("[1/x]")
            groups.setdefault((level, int(reciprocal)), []).append((arch, transform))
    return [groups[k] for k in sorted(groups)]


def _training_rows(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    rows = np.flatnonzero(labels == TRAIN)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
    return rows


def _promoted(chunk: slice, copies: int) -> int:
    """Structures promoted from the chunk ``chunk`` of a job's ``copies`` copies.

    Each chunk's share of :data:`PROMOTED`, rounded up, so every chunk's best structure is
    among them. Promoting from each chunk as it arrives lets its formulas be built while the
    job's other chunks train, instead of all of them after the job's last chunk.
    """
    return math.ceil(PROMOTED * (chunk.stop - chunk.start) / copies)


def _grouped_rows(
    table: FeatureTable, y: np.ndarray, labels: np.ndarray, transform: str
) -> SplitRows:
    """The rows where the ``transform`` of ``y`` is finite, regrouped by split for scoring."""
    target = apply_transform(y, transform)
    finite = np.isfinite(target)
    return group_rows(table.values[finite], target[finite], labels[finite])


def _score_job(
    job: JobResult,
    rows: SplitRows,
    table: FeatureTable,
    y: np.ndarray,
    labels: np.ndarray,
    tolerance: float,
    backend: str,
    seen: set[tuple[str, Structure]],
    probe_rows: np.ndarray,
    promoted: int = PROMOTED,
) -> list[Candidate]:
    """Fit every new structure of ``job`` (or of one chunk of it) at once on ``rows`` (see
    :func:`_grouped_rows`), then promote the ``promoted`` best to formulas."""
    fresh = [s for s in job.structures if (job.transform, s) not in seen]
    seen.update((job.transform, s) for s in fresh)
    if not fresh:
        return []
    if backend == "auto" and len(fresh) * rows.y.size < NUMBA_WORTHWHILE:
        backend = "numpy"
    scores = score_rows(pack(fresh), rows, backend=backend)
    order = np.argsort(scores.relative_rmse[:, VALIDATION], kind="stable")[:promoted]
    candidates = []
    for i in order:
        if not np.isfinite(scores.relative_rmse[i, VALIDATION]):
            continue
        n = len(fresh[i]) + 1
        candidates.append(
            build_candidate(
                fresh[i],
                scores.coefficients[i, :n],
                table=table,
                y=y,
                labels=labels,
                transform=job.transform,
                architecture=job.architecture,
                tolerance=tolerance,
                probe_rows=probe_rows,
            )
        )
    return candidates


def _run_jobs(tasks: Iterable, n_jobs: int | None) -> Iterator[JobResult]:
    """Results of ``tasks`` in their order, computed lazily in this process or by joblib.

    With several workers the next group's jobs start while the current group finishes (and
    are cancelled when the search stops early); the results are consumed in order, so they
    are the same for any number of workers.
    """
    if effective_n_jobs(n_jobs) == 1:
        # joblib's sequential backend would run jobs ahead of the search's need for them.
        return (function(*args, **kwargs) for function, args, kwargs in tasks)
    return Parallel(n_jobs=n_jobs, return_as="generator")(tasks)


def _close(results: Iterator[JobResult]) -> None:
    """Stop the jobs still running or queued, without joblib's warning about it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*tasks which were still being processed")
        results.close()


def find_formula(
    X,
    y,
    feature_names: Sequence[str] | None = None,
    *,
    extrapolation: tuple | None = None,
    holdout_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    tolerance: float = 1e-6,
    max_time: float = 120.0,
    settings: TrainingSettings | None = None,
    architectures: Sequence[str] | None = None,
    max_power: int = 2,
    max_train_rows: int = 256,
    scoring_backend: str = "auto",
    n_jobs: int | None = 1,
    random_state: int = 0,
    progress: Progress | None = None,
) -> SearchResult:
    """Search for the formula behind ``y = f(X)`` and check it on held-out input ranges.

    Stacks of arithmetic units (NAU, NMU, NAU→NMU, NMU→NAU, NALU) are trained on the train
    rows, many copies at once; every trained copy is snapped to discrete weights (with nearby
    alternatives), each distinct structure gets its constants by least squares, constants are
    made exact where the data allows, and every formula is scored on train, validation and
    extrapolation rows. The search stops at the first group of architectures that yields an
    exact formula.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_rows, n_features)
    y : array-like of shape (n_rows,)
    feature_names : sequence of str, optional
        Column names, used as the formula's symbols (a DataFrame's columns by default).
    extrapolation : (X_extra, y_extra), optional
        An explicit extrapolation set; by default the outer band of the input ranges
        (``holdout_fraction`` of the rows) is held out instead.
    holdout_fraction, validation_fraction : float
        Shares of rows held out for the extrapolation check and for validation.
    tolerance : float
        Relative RMSE under which a formula is exact on noise-free data.
    max_time : float
        Time budget in seconds. The first group of architectures always runs to the end;
        after the budget, the search stops (abandoning jobs in training) and reports the
        best formula so far.
    settings : TrainingSettings, optional
        Restarts, steps, learning rate and regularisation of each architecture.
    architectures : sequence of str, optional
        Names of the architectures to try (default: all, see
        :func:`~nalu_sr.search.space.default_architectures`).
    max_power : int
        Largest integer power of an input inside a product.
    max_train_rows : int
        Rows used for training (a fixed random subsample); all rows are scored.
    scoring_backend : {"auto", "numba", "numpy", "torch"}
    n_jobs : int or None
        Architectures trained in parallel (joblib; honours ``joblib.parallel_config``).
    random_state : int
        Seed of everything random; the same seed gives the same result for any ``n_jobs``.
    progress : callable, optional
        ``progress(done, total, description)`` after each trained architecture.

    Returns
    -------
    SearchResult
    """
    started = time.perf_counter()
    settings = settings or TrainingSettings()
    X, y, feature_names = _check_inputs(X, y, feature_names)
    X_extra = None
    if extrapolation is not None:
        X_extra, y_extra, _ = _check_inputs(extrapolation[0], extrapolation[1], feature_names)
        y = np.concatenate([y, y_extra])
    X_all, split = split_rows(
        X,
        holdout_fraction=holdout_fraction,
        validation_fraction=validation_fraction,
        X_extrapolation=X_extra,
        random_state=random_state,
    )
    labels = split.labels
    symbols = feature_symbols(feature_names)
    table = build_feature_table(X_all, symbols, np.flatnonzero(labels != EXTRAPOLATION))
    transforms = _transforms(y, np.flatnonzero(labels != EXTRAPOLATION))
    train_rows = np.flatnonzero(labels == TRAIN)
    available = default_architectures(table, max_power=max_power)
    available = with_whitened_variants(available, table, train_rows)
    available = with_scale_group_variants(available, table, train_rows, y[train_rows])
    if architectures is not None:
        unknown = sorted(set(architectures) - {a.name for a in available})
        if unknown:
            names = ", ".join(a.name for a in available)
            raise ValueError(f"unknown architectures {unknown}; choose from {names}.")
        available = [a for a in available if a.name in set(architectures)]
    stages = _stages(available, transforms)
    total = sum(len(stage) for stage in stages)
    seeds = np.random.SeedSequence(random_state)
    fitted = np.flatnonzero(labels != EXTRAPOLATION)
    probe_rows = np.sort(
        np.random.default_rng(random_state).choice(
            fitted, size=min(PROBE_ROWS, len(fitted)), replace=False
        )
    )
    probe_inputs = X_all[probe_rows]
    # Whitened variants follow a slow direction that a few hundred rows leave ill-determined.
    row_limits = {False: max_train_rows, True: max(max_train_rows, settings.whitened_rows)}
    candidates: dict[str, Candidate] = {}

    def keep(candidate: Candidate) -> None:
        known = candidates.get(candidate.key)
        loss = candidate.relative_rmse[VALIDATION]
        if known is None or loss < known.relative_rmse[VALIDATION]:
            candidates[candidate.key] = candidate

    # The constant formula is always a candidate: the baseline every other one must beat.
    keep(
        build_candidate(
            (),
            np.array([np.mean(y[labels == TRAIN])]),
            table=table,
            y=y,
            labels=labels,
            transform="y",
            architecture="constant",
            tolerance=tolerance,
            probe_rows=probe_rows,
        )
    )
    seen: set[tuple[str, Structure]] = set()
    # Regrouping copies the table (about 0.7 s for 1e6 rows); consecutive jobs mostly share a
    # target transform, and one regrouped table at a time keeps the memory bounded.
    grouped = functools.lru_cache(maxsize=1)(functools.partial(_grouped_rows, table, y, labels))
    result_flags = {"interrupted": False, "timed_out": False, "reseeded": 0}
    jobs_run: list[str] = []
    # Training needs only the training rows; sending the whole table to every worker would
    # copy it once per job.
    training = {}
    for whitened in {arch.whitened for stage in stages for arch, _ in stage}:
        rows = _training_rows(labels, row_limits[whitened], random_state)
        training[whitened] = (replace(table, values=table.values[rows]), y[rows])
    jobs = [
        (number, arch, t, int(s.generate_state(1)[0]))
        for number, stage in enumerate(stages)
        for (arch, t), s in zip(stage, seeds.spawn(len(stage)), strict=True)
    ]
    deadline = time.time() + max_time - (time.perf_counter() - started)
    chunks = [
        (index, chunk)
        for index, (_, arch, *_) in enumerate(jobs)
        for chunk in copy_chunks(arch, settings)
    ]
    trained = _run_jobs(
        (
            delayed(run_job)(
                jobs[index][1],
                training[jobs[index][1].whitened][0],
                apply_transform(training[jobs[index][1].whitened][1], jobs[index][2]),
                transform=jobs[index][2],
                settings=settings,
                seed=jobs[index][3],
                copies=chunk,
                # The first group always runs, so even a tiny budget yields a formula.
                deadline=None if jobs[index][0] == 0 else deadline,
            )
            for index, chunk in chunks
        ),
        n_jobs,
    )
    try:
        for (index, chunk), piece in zip(chunks, trained):
            if piece.timed_out or (jobs[index][0] > 0 and time.perf_counter() - started > max_time):
                result_flags["timed_out"] = True
                break
            result_flags["reseeded"] += piece.reseeded
            copies = settings.copies(jobs[index][1])
            for candidate in _score_job(
                piece,
                grouped(piece.transform),
                table,
                y,
                labels,
                tolerance,
                scoring_backend,
                seen,
                probe_rows,
                promoted=_promoted(chunk, copies),
            ):
                keep(candidate)
            if chunk.stop < copies:
                continue  # more chunks of this job to come
            done = index + 1
            jobs_run.append(f"{piece.architecture} on {piece.transform}")
            if progress is not None:
                progress(done, total, jobs_run[-1])
            if done < total and jobs[done][0] == jobs[index][0]:
                continue  # the group is not complete yet
            mark_exact(list(candidates.values()), tolerance, probe_inputs)
            if any(c.holds for c in candidates.values()):
                break
            if done < total and time.perf_counter() - started > max_time:
                result_flags["timed_out"] = True
                break
    except KeyboardInterrupt:
        result_flags["interrupted"] = True
    finally:
        _close(trained)
    return _result(
        list(candidates.values()),
        feature_names,
        symbols,
        split,
        tolerance,
        probe_inputs,
        seconds=time.perf_counter() - started,
        jobs=jobs_run,
        **result_flags,
    )


def _result(
    candidates, feature_names, symbols, split, tolerance, probe_inputs, **extra
) -> SearchResult:
    used = mark_exact(candidates, tolerance, probe_inputs)
    candidates = sorted(
        candidates, key=lambda c: (c.complexity, c.relative_rmse[VALIDATION], c.key)
    )
    table = candidates_table(candidates)
    chosen = choose(table)
    formula = None if chosen is None else table.loc[chosen, "sympy_format"]
    exact = bool(chosen is not None and table.loc[chosen, "exact"])
    if chosen is None:
        message = "No formula found: the search produced no candidate that could be scored."
    elif exact:
        message = (
            f"Exact formula found: it holds on the held-out extrapolation rows within "
            f"{used:.1e} relative error."
        )
    elif table.loc[chosen, "holds"]:
        message = (
            f"The formula holds on the held-out extrapolation rows within the noise ({used:.1e} "
            f"relative error), but the data determine {_estimated(candidates[chosen])} only "
            "approximately, so it is not claimed exact."
        )
    else:
        error = table.loc[chosen, "loss_extrapolation"]
        if extra.get("interrupted"):
            where = "No exact formula among the architectures trained before the interruption"
        elif extra.get("timed_out"):
            where = (
                "No exact formula among the architectures trained within the time budget "
                "(raise max_time, or --max-time, to train the rest)"
            )
        else:
            where = "No exact formula in the search space"
        message = (
            f"{where}; the best approximation has relative error {error:.3g} on the held-out "
            "extrapolation rows."
        )
    if extra.get("interrupted"):
        message += " (Search interrupted: best result so far.)"
    return SearchResult(
        formula=formula,
        exact=exact,
        candidates=table,
        chosen=chosen,
        feature_names=list(feature_names),
        symbols=list(symbols),
        split=split,
        tolerance=used,
        message=message,
        **extra,
    )


def _estimated(candidate: Candidate) -> str:
    """``"its constant 8.3"``, naming the estimated constants as the formula shows them.

    Simplification can merge constants (``50 + 50*1`` is ``100``); then none is named.
    """
    shown = {abs(float(n)) for n in candidate.expr.atoms(sympy.Number)}
    values = [abs(float(c)) for c in candidate.estimated]
    if not values or not all(any(np.isclose(v, n, rtol=1e-9) for n in shown) for v in values):
        return "its constants"
    listed = ", ".join(f"{v:.6g}" for v in values)
    return f"its constant{'s' if len(values) > 1 else ''} {listed}"
