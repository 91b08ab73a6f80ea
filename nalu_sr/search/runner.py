"""``find_formula``: the whole search, from a table of numbers to a checked formula."""

from __future__ import annotations

import collections
import functools
import inspect
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
from ..snapping import Composition
from ..structure import (
    Factor,
    Structure,
    Term,
    denominators,
    features_used,
    make_factor,
    make_structure,
    make_term,
    raise_term,
)
from ..symbolic import feature_symbols
from ..validation import check_search_inputs
from ..weights import merge_weighted_rows
from . import stacks
from .candidates import (
    MISFIT,
    STOP_TERMS,
    Candidate,
    build_candidate,
    candidates_table,
    choose,
    leaves_noise,
    mark_exact,
    term_values,
)
from .compositions import (
    MAX_OUTERS,
    FittedRate,
    argument_groups,
    composed_structures,
    fit_rate,
    function_column,
    misfit_for,
    steady_inputs,
)
from .engine import Job, JobResult, TrainingSettings, copy_chunks, run_job
from .function_pairs import fit_pair, pair_multipliers
from .function_products import fit_product
from .space import FeatureTable, build_feature_table, divides_safely, keeps_sign
from .sparse_ratios import fixed_denominator_structures
from .stacks import SOLVE_RUNS, Architecture, Family, Space
from .transforms import apply_transform, offered

#: Fitted rows on which each formula's residual is checked for structure (noisy data).
PROBE_ROWS = 1000

#: Structures per architecture and transform promoted to full (symbolic) candidates. A job
#: trained in chunks promotes a share from each chunk as it arrives (see :func:`_promoted`).
PROMOTED = 12

#: The target transforms whose closed-form jobs still run after a stop on noisy data (see
#: :func:`_search`): the ratios over the functions of one input on every transform cost tens
#: of seconds on four inputs, which every noisy table would pay.
NOISY_STOP_TRANSFORMS = ("y", "1/y")

#: Most train rows the sparse ratios over a function column are solved on (see
#: :meth:`Scoring.ratios_over`).
RATIO_ROWS = 512

#: Below this many candidate-rows, ``scoring_backend="auto"`` scores with NumPy: Numba's
#: one-off compilation (seconds, cached on disk afterwards) would cost more than it saves.
NUMBA_WORTHWHILE = 2_000_000

#: Training runs in the search plan at ``effort=1`` (see :func:`plan_within`): about two
#: minutes of training on 2 cores. A run is one chunk of a job's copies (see
#: :func:`~nalu_sr.search.engine.copy_chunks`), 1 to 5 s each there.
PLAN_RUNS = 36

#: Training runs of the stages beyond arithmetic at ``effort=1``: a share of their own, so
#: that a table whose arithmetic stages fill the plan still reaches them. The closed-form
#: stages (ratios on every transform, the listed functions of groups of inputs) find every
#: formula of the suite beyond arithmetic that any stage finds, before these; on 2 to 6
#: inputs this share holds the functions of single inputs inside sums and products and the
#: trained functions of a product (11 to 17 runs), and keeps a table with no formula to
#: find near two minutes (48 runs took three to five).
FUNCTION_PLAN_RUNS = 16

#: ``progress(done, total, description)`` after each trained architecture; a callback with a
#: parameter named ``best`` also gets ``best=``, the formula with the lowest validation error so
#: far (see :func:`takes_best`).
Progress = Callable[..., None]


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
        Which rows were train, validation and extrapolation rows: the rows searched, which
        are the given ones unless some had weight 0 or repeated (see ``sample_weight``).
    tolerance : float
        Relative error under which a formula counted as exact.
    message : str
        A one-line verdict for people.
    seconds : float
        How long the search took.
    reseeded : int
        Trained copies that went NaN or infinite and were started afresh.
    interrupted : bool
        Whether the user interrupted the search (Ctrl-C).
    timed_out : bool
        Whether ``max_time`` ended the search before its plan did: a rerun may then train more
        or less and give another formula.
    jobs : list of str
        The architectures trained, in order, with their target transform.
    explained : bool
        Whether the search ended because the best formula left a residual that is only noise
        (see :func:`~nalu_sr.search.candidates.leaves_noise`).
    stages_left : int
        Stages of the search space beyond the plan that ``effort`` allowed.
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
    explained: bool = False
    stages_left: int = 0

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


@dataclass(frozen=True)
class SearchData:
    """The table being searched, split, with the feature columns the units see.

    Attributes
    ----------
    X, y : ndarray
        Every row: the given ones (weight-0 rows left out and repeated rows merged, see
        :func:`~nalu_sr.weights.merge_weighted_rows`), then those of an explicit extrapolation
        set.
    feature_names : list of str
    symbols : list of sympy.Symbol
    split : Split
    table : FeatureTable
    probe_rows : ndarray of int
        A sample of the fitted rows on which residuals are checked for structure.
    weights : ndarray or None
        Each row's weight (see :func:`~nalu_sr.weights.merge_weighted_rows`); None when all
        rows weigh the same.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    symbols: list[sympy.Symbol]
    split: Split
    table: FeatureTable
    probe_rows: np.ndarray
    weights: np.ndarray | None = None

    @property
    def labels(self) -> np.ndarray:
        return self.split.labels

    @functools.cached_property
    def probe_inputs(self) -> np.ndarray:
        """The inputs on the probe rows (every stage's exactness check reads them)."""
        return self.X[self.probe_rows]

    @property
    def fitted_rows(self) -> np.ndarray:
        """Rows the formulas are fitted on: all but the held-out extrapolation rows."""
        return np.flatnonzero(self.labels != EXTRAPOLATION)

    @property
    def train_rows(self) -> np.ndarray:
        return np.flatnonzero(self.labels == TRAIN)


def prepare_data(
    X,
    y,
    feature_names: Sequence[str] | None,
    extrapolation: tuple | None,
    holdout_fraction: float,
    validation_fraction: float,
    random_state: int,
    sample_weight=None,
) -> SearchData:
    """Check the inputs, weigh and split the rows and build the feature table (see
    :func:`find_formula`)."""
    X, y, feature_names = check_search_inputs(X, y, feature_names)
    X, y, weights = merge_weighted_rows(X, y, sample_weight)
    X_extra = None
    if extrapolation is not None:
        X_extra, y_extra, _ = check_search_inputs(extrapolation[0], extrapolation[1], feature_names)
        y = np.concatenate([y, y_extra])
        if weights is not None:
            # Errors are weighted means within each split: any equal weight would do here.
            weights = np.concatenate([weights, np.ones(len(y_extra))])
    X_all, split = split_rows(
        X,
        holdout_fraction=holdout_fraction,
        validation_fraction=validation_fraction,
        X_extrapolation=X_extra,
        random_state=random_state,
    )
    symbols = feature_symbols(feature_names)
    fitted = np.flatnonzero(split.labels != EXTRAPOLATION)
    probe_rows = np.sort(
        np.random.default_rng(random_state).choice(
            fitted, size=min(PROBE_ROWS, len(fitted)), replace=False
        )
    )
    table = build_feature_table(X_all, symbols, fitted)
    return SearchData(X_all, y, feature_names, symbols, split, table, probe_rows, weights)


def _transforms(y: np.ndarray, fit_rows: np.ndarray) -> list[str]:
    """The target transforms defined on the fitted rows (see
    :func:`~nalu_sr.search.transforms.offered`)."""
    return offered(y[fit_rows])


def plan_stages(
    available: Sequence[Architecture], transforms: Sequence[str]
) -> list[list[tuple[Architecture, str]]]:
    """Jobs (architecture, target transform) in stages, simplest first.

    The search stops after the first stage that yields a formula that holds, so the order of
    stages is the order of preference: each job's :meth:`~Architecture.stage_key` (small
    stacks before wide ones, the plain target before its reciprocal, NALUs last, a kind's
    variants before or after the plain stacks of their width). Each kind is tried only on
    the transforms it lists. Within a stage, jobs keep the order of ``transforms``, then of
    ``available``.
    """
    stages: dict = {}
    for transform in transforms:
        for arch in available:
            if transform in arch.kind.transforms:
                stages.setdefault(arch.stage_key(transform), []).append((arch, transform))
    return [stages[key] for key in sorted(stages)]


def plan_jobs(
    stages: Sequence[Sequence[tuple[Architecture, str]]],
    settings: TrainingSettings,
    random_state: int,
) -> list[Job]:
    """Every job's chunks, stage by stage, each job with its own seed (so the same for any
    number of workers)."""
    seeds = np.random.SeedSequence(random_state)
    return [
        Job(number, arch, transform, int(seed.generate_state(1)[0]), chunk)
        for number, stage in enumerate(stages)
        for (arch, transform), seed in zip(stage, seeds.spawn(len(stage)), strict=True)
        for chunk in copy_chunks(arch, settings)
    ]


def _runs(job: Job, settings: TrainingSettings) -> float:
    """Training runs one chunk of a job counts as: one, the whitened variant's steps in plain
    default runs (it may stop early, but the plan cannot know), or :data:`SOLVE_RUNS` for a
    kind fitted in closed form."""
    if job.architecture.whitened:
        return settings.whitened_steps / TrainingSettings.steps
    if job.architecture.kind.solve is not None:
        return SOLVE_RUNS
    return 1.0


#: A target with at most this many distinct values (on at least
#: :data:`LABEL_ROWS_PER_VALUE` times as many train rows) is a set of labels, not a measured
#: quantity: only the first stage is searched (see :func:`label_count`).
MAX_LABELS = 3
LABEL_ROWS_PER_VALUE = 2


def label_count(y: np.ndarray) -> int:
    """How many distinct values ``y`` (the train rows' target) takes, where they are so few
    for so many rows that it is a set of class labels (see :data:`MAX_LABELS`); 0 otherwise.

    A formula of inputs that vary takes a new value on every row (the search merges repeated
    rows): three values on six rows or more means the target depends on the inputs only
    through steps, or on inputs that take two or three values, whose every function the first
    stage's sums, products and ratios already write (a function of an input of two values is
    affine in it). The wider
    stages could only fit the steps; class labels given to a regressor by mistake would
    otherwise cost the whole plan.

    Examples
    --------
    >>> label_count(np.array([0.0, 1.0] * 10)), label_count(np.arange(20.0))
    (2, 0)
    """
    distinct = np.unique(y[np.isfinite(y)]).size
    return distinct if distinct <= MAX_LABELS and len(y) >= LABEL_ROWS_PER_VALUE * distinct else 0


def plan_within(
    jobs: list[Job], settings: TrainingSettings, effort: float
) -> tuple[list[Job], int]:
    """The jobs of the first stages whose training runs add up to at most
    ``effort * PLAN_RUNS`` (stage 0 always), and of the first stages beyond arithmetic
    (:attr:`~nalu_sr.search.stacks.Family.FUNCTIONS`) whose runs add up to at most
    ``effort * FUNCTION_PLAN_RUNS``; and how many stages are left out.

    The plan is set by work, not by time, so the same data and seed give the same search on
    any machine, busy or idle, for any number of workers. Each share is filled in stage order
    and closes at its first stage that does not fit.
    """
    work: dict[int, float] = {}
    beyond: dict[int, bool] = {}
    for job in jobs:
        work[job.stage] = work.get(job.stage, 0.0) + _runs(job, settings)
        beyond[job.stage] = job.architecture.stage_key(job.transform).family == Family.FUNCTIONS
    allowed = {False: effort * PLAN_RUNS, True: effort * FUNCTION_PLAN_RUNS}
    used = {False: 0.0, True: 0.0}
    closed: set[bool] = set()
    planned: set[int] = set()
    for stage in sorted(work):
        share = beyond[stage]
        if share in closed:
            continue
        used[share] += work[stage]
        if stage > 0 and used[share] > allowed[share]:
            closed.add(share)
            continue
        planned.add(stage)
    return [job for job in jobs if job.stage in planned], len(work) - len(planned)


def _select(available: list[Architecture], names: Sequence[str] | None) -> list[Architecture]:
    if names is None:
        return available
    chosen = set(names)
    unknown = sorted(chosen - {a.name for a in available})
    if unknown:
        listed = ", ".join(a.name for a in available)
        raise ValueError(f"unknown architectures {unknown}; choose from {listed}.")
    return [a for a in available if a.name in chosen]


def _training_rows(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    rows = np.flatnonzero(labels == TRAIN)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
    return rows


def _training_data(
    data: SearchData,
    jobs: Sequence[Job],
    settings: TrainingSettings,
    max_train_rows: int,
    random_state: int,
) -> dict[bool, tuple[FeatureTable, np.ndarray, np.ndarray | None]]:
    """The training rows' feature table, target and weights, by whether the job is whitened.

    Training needs only these rows; sending the whole table to every worker would copy it
    once per job. Whitened stacks follow a slow direction that a few hundred rows leave
    ill-determined, so they get more.
    """
    limits = {False: max_train_rows, True: max(max_train_rows, settings.whitened_rows)}
    training = {}
    for whitened in {job.architecture.whitened for job in jobs}:
        rows = _training_rows(data.labels, limits[whitened], random_state)
        weights = None if data.weights is None else data.weights[rows]
        table = replace(data.table, values=data.table.values[rows])
        training[whitened] = (table, data.y[rows], weights)
    return training


def _promoted(chunk: slice, copies: int) -> int:
    """Structures promoted from the chunk ``chunk`` of a job's ``copies`` copies.

    Each chunk's share of :data:`PROMOTED`, rounded up, so every chunk's best structure is
    among them. Promoting from each chunk as it arrives lets its formulas be built while the
    job's other chunks train, instead of all of them after the job's last chunk.
    """
    return math.ceil(PROMOTED * (chunk.stop - chunk.start) / copies)


def _grouped_rows(
    table: FeatureTable,
    y: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None,
    transform: str,
) -> SplitRows:
    """The rows where the ``transform`` of ``y`` is finite, regrouped by split for scoring."""
    target = apply_transform(y, transform)
    finite = np.isfinite(target)
    kept = None if weights is None else weights[finite]
    return group_rows(table.values[finite], target[finite], labels[finite], kept)


class Scoring:
    """Scores trained jobs' structures and keeps the best candidate per formula.

    Parameters
    ----------
    data : SearchData
    tolerance : float
        Relative error under which a formula is exact on noise-free data.
    backend : {"auto", "numba", "numpy", "torch"}
    """

    def __init__(self, data: SearchData, tolerance: float, backend: str) -> None:
        self.data, self.tolerance, self.backend = data, tolerance, backend
        self.candidates: dict[str, Candidate] = {}
        self.seen: set[tuple[str, Structure]] = set()
        self.denominators: dict[Factor, bool] = {}
        # Functions of products made columns of the table: their column (None where no rate
        # fits), and the rates of those that are estimates.
        self.composed: dict[tuple[str, Term, str], int | None] = {}
        self.columns: dict[tuple[str, Term, sympy.Expr], int] = {}
        self.roots: dict[tuple[str, int], int | None] = {}
        self.estimated_rates: dict[int, sympy.Expr] = {}
        # Regrouping copies the table (about 0.7 s for 1e6 rows); consecutive jobs mostly
        # share a target transform, and one regrouped table at a time keeps memory bounded.
        self.rows = functools.lru_cache(maxsize=1)(self._grouped_rows)
        # The constant formula is always a candidate: the baseline every other one must beat.
        train = data.labels == TRAIN
        w_train = None if data.weights is None else data.weights[train]
        mean = np.average(data.y[train], weights=w_train)
        self.keep(self._build((), np.array([mean]), "y", "constant"))

    def _grouped_rows(self, transform: str) -> SplitRows:
        data = self.data
        return _grouped_rows(data.table, data.y, data.labels, data.weights, transform)

    def divides_safely(self, factor: Factor) -> bool:
        """Whether the signed sum ``factor`` keeps one sign away from zero on the fitted rows,
        as a denominator must (see :func:`~nalu_sr.search.space.divides_safely`); a single
        column only needs to keep one sign."""
        if factor not in self.denominators:
            values = self.data.table.values
            rows = self.data.fitted_rows
            total = sum(sign * values[rows, i] for i, sign in factor)
            # A column of one sign has no pole (x**-2 with x over many decades is fine).
            safe = keeps_sign(total) if len(factor) == 1 else divides_safely(total)
            self.denominators[factor] = safe
        return self.denominators[factor]

    def keep(self, candidate: Candidate) -> None:
        known = self.candidates.get(candidate.key)
        loss = candidate.relative_rmse[VALIDATION]
        if known is None or loss < known.relative_rmse[VALIDATION]:
            self.candidates[candidate.key] = candidate

    def _build(
        self, structure: Structure, coefficients: np.ndarray, transform: str, architecture: str
    ) -> Candidate:
        candidate = build_candidate(
            structure,
            coefficients,
            table=self.data.table,
            y=self.data.y,
            labels=self.data.labels,
            transform=transform,
            architecture=architecture,
            tolerance=self.tolerance,
            probe_rows=self.data.probe_rows,
            weights=self.data.weights,
        )
        rates = [
            self.estimated_rates[i]
            for i in sorted(features_used(structure))
            if i in self.estimated_rates
        ]
        if rates:
            candidate.estimated = (*candidate.estimated, *rates)
        return candidate

    def function_column(
        self,
        function: str,
        argument: Term,
        found: list[Composition],
        frequent: Sequence[Term] = (),
        transform: str = "y",
        listed: bool = False,
    ) -> int | None:
        """The table column of ``function(rate * argument)``, its rate fitted against the
        outer products most frequent among ``found``, the ``frequent`` ones of the whole job
        and each input (see :func:`~nalu_sr.search.compositions.fit_rate`), on the
        ``transform`` of the target; added to the table the first time, ``None`` where no
        rate fits. A ``listed`` composition's rate is only refined (see
        :func:`~nalu_sr.search.compositions.fit_rate`)."""
        key = (function, argument, transform)
        if key in self.composed:
            return self.composed[key]
        data = self.data
        train = data.labels == TRAIN
        values = data.table.values[train]
        outers = [o for o, _ in collections.Counter(c.outer for c in found).most_common() if o]
        outers = list(dict.fromkeys([*outers[:MAX_OUTERS], *frequent, *self.single_inputs()]))
        used = features_used((argument,))
        outer_values = np.column_stack(
            [np.empty((values.shape[0], 0)), *(term_values(o, values) for o in outers)]
        )
        misfit = self.misfit(transform)
        rate = fit_rate(
            function,
            term_values(argument, values),
            outer_values,
            apply_transform(data.y[train], transform),
            start=[c.rate for c in found],
            apart=[k for k, o in enumerate(outers) if not features_used((o,)) & used],
            tolerance=self.tolerance,
            weights=None if data.weights is None else data.weights[train],
            near=listed,
            misfit=misfit,
        )
        column = None
        # A function that fits this badly with every outer product at hand makes no formula
        # worth a column (the table grows by one column over all its rows for each).
        if rate is not None and rate.error <= misfit:
            column = self.column_of(function, argument, rate)
        self.composed[key] = column
        return column

    def noise(self) -> float | None:
        """The validation RMSE of the best formula so far: on noisy data, about the noise
        (``None`` before any formula, or where one is exact to the last digit)."""
        errors = [c.rmse[VALIDATION] for c in self.candidates.values()]
        noise = min((e for e in errors if np.isfinite(e)), default=np.inf)
        return noise if np.isfinite(noise) and noise > 0 else None

    def misfit(self, transform: str) -> float:
        """The error of a function's fit to the ``transform`` of the target above which it is
        an approximation rather than the formula with noise (see
        :func:`~nalu_sr.search.compositions.misfit_for`), the noise carried through the
        transform."""
        noise = self.noise()
        if noise is None:
            return MISFIT
        y = self.data.y[self.data.labels == TRAIN]
        target = apply_transform(y, transform)
        with np.errstate(all="ignore"):
            carried = apply_transform(y + noise, transform) - target
        return misfit_for(target, carried)

    def column_of(self, function: str, argument: Term, rate: FittedRate) -> int:
        """The table column of ``function(rate * argument)`` at a fitted ``rate``, added to
        the table the first time; an estimated rate is remembered with the column."""
        key = (function, argument, rate.expression)
        if key not in self.columns:
            values, expression = function_column(self.data.table, function, argument, rate)
            self.columns[key] = self.add_column(values, expression)
            if rate.estimated:
                self.estimated_rates[self.columns[key]] = rate.expression
        return self.columns[key]

    def add_column(self, values: np.ndarray, expression: sympy.Expr) -> int:
        """Add a column (values over every row) to the table; its index."""
        column = self.data.table.n_columns
        self.data = replace(self.data, table=self.data.table.with_column(values, expression))
        self.rows.cache_clear()
        return column

    def root_of(self, i: int) -> int | None:
        """The column of ``sqrt(x)`` for the input column ``i``: the table's own where it
        has one, a new one where ``x`` is positive on every row, else ``None``."""
        table = self.data.table
        root = sympy.sqrt(table.expressions[i])
        for column in table.functions.get("sqrt", []):
            if table.expressions[column] == root:
                return column
        key = ("sqrt", i)
        if key not in self.roots:
            values = table.values[:, i]
            self.roots[key] = self.add_column(np.sqrt(values), root) if np.all(values > 0) else None
        return self.roots[key]

    def multiply(self, job: JobResult, promoted: int = PROMOTED) -> None:
        """Fit the rates of each product of functions of ``job`` (see
        :mod:`~nalu_sr.search.function_products`) on the train rows, make its functions
        columns, and score the product as one term."""
        data = self.data
        train = np.flatnonzero(data.labels == TRAIN)
        weights = None if data.weights is None else data.weights[train]
        noise = self.noise()
        structures = []
        for product in job.products:
            fitted = fit_product(
                product,
                data.table,
                train,
                data.y[train],
                tolerance=self.tolerance,
                weights=weights,
                noise=noise,
            )
            if fitted is None:
                continue
            powers = self.monomial_powers(product.exponents)
            if powers is None:
                continue
            if fitted.rate is not None:
                column = self.column_of(product.function, product.argument, fitted.rate)
                powers.append((make_factor([(column, 1)]), product.power))
            if fitted.exp_rate is not None:
                column = self.column_of("exp", product.exp_argument, fitted.exp_rate)
                powers.append((make_factor([(column, 1)]), 1))
            structures.append(make_structure([raise_term(powers)]))
        self.score(JobResult(job.architecture, job.transform, structures=structures), promoted)

    def add_functions(self, job: JobResult, promoted: int = PROMOTED) -> None:
        """Fit the rates of each pair of functions of ``job`` (see
        :func:`~nalu_sr.search.function_pairs.fit_pair`) on the train rows, make both
        columns, and score the sparse sums of monomials times them (see
        :meth:`ratios_over`)."""
        data = self.data
        train = np.flatnonzero(data.labels == TRAIN)
        y = apply_transform(data.y[train], job.transform)
        weights = None if data.weights is None else data.weights[train]
        # The pair's multipliers are named on a share of the rows, as the sparse ratios are.
        named = slice(RATIO_ROWS)
        misfit = self.misfit(job.transform)
        structures = []
        for pair in job.pairs:
            found = pair_multipliers(
                data.table,
                train[named],
                pair,
                y[named],
                None if weights is None else weights[named],
            )
            rates = fit_pair(
                pair,
                data.table.values[train],
                y,
                list(dict.fromkeys([*found, *self.single_inputs()])),
                tolerance=self.tolerance,
                weights=weights,
                misfit=misfit,
            )
            if rates is None:
                continue
            columns = [self.column_of(c.function, c.argument, r) for c, r in zip(pair, rates)]
            structures += self.ratios_over(columns, job.transform)
        self.score(JobResult(job.architecture, job.transform, structures=structures), promoted)

    def monomial_powers(self, exponents: Sequence[tuple[int, float]]) -> list | None:
        """The powers of a monomial whose exponents are multiples of 1/2, a half power as a
        power of the input's square root (``x**(3/2)`` is ``x*sqrt(x)``); ``None`` where an
        input with a half power has no square root."""
        powers = []
        for i, e in exponents:
            whole = math.trunc(e)
            if whole:
                powers.append((make_factor([(i, 1)]), whole))
            if e != whole:
                root = self.root_of(i)
                if root is None:
                    return None
                powers.append((make_factor([(root, 1)]), 1 if e > 0 else -1))
        return powers

    def single_inputs(self) -> list[Term]:
        """Each input as a term of its own, and its reciprocal where it is offered
        (``1/K`` in ``1/N = (1 + exp(-r*t))/K``)."""
        table = self.data.table
        singles = [make_term([make_factor([(i, 1)])]) for i in table.inputs]
        inverses = [raise_term([(make_factor([(i, 1)]), -1)]) for i in table.reciprocal_of]
        return singles + inverses

    def compose(self, job: JobResult, promoted: int = PROMOTED, listed: bool = False) -> None:
        """Make a column of every function of a product that ``job`` (a composing stack)
        found, and score the structures over it (see
        :func:`~nalu_sr.search.compositions.composed_structures`), and for ``listed`` ones
        the sparse ratios of the inputs' monomials times the column (see
        :meth:`ratios_over`).

        A trained job's arguments come with their nearby ones (see
        :func:`~nalu_sr.search.compositions.argument_groups`); ``listed`` ones (from the
        closed-form list of :mod:`~nalu_sr.search.arguments`) already span them."""
        outers = list(dict.fromkeys([*(c.outer for c in job.compositions), *self.single_inputs()]))
        structures = []
        steady = steady_inputs(self.data.table, self.data.labels == TRAIN)
        counts = collections.Counter(c.outer for c in job.compositions)
        frequent = [o for o, _ in counts.most_common() if o][:MAX_OUTERS]
        if listed:
            groups: dict[tuple[str, Term], list[Composition]] = {}
            for c in job.compositions:
                groups.setdefault((c.function, c.argument), []).append(c)
        else:
            groups = argument_groups(job.compositions, steady)
        ratios = []
        for (function, argument), found in groups.items():
            column = self.function_column(
                function, argument, found, frequent, job.transform, listed
            )
            if column is not None:
                structures += composed_structures(column, outers, self.data.table.inputs)
                if listed:
                    # A trained job brings many nearby arguments; its outer products stand
                    # in for the ratios there.
                    ratios += self.ratios_over([column], job.transform)
        # Promoted apart: on noisy data the ratios' extra terms fit a little of the noise, and
        # would leave no room for L - L*cos(theta) among the best.
        for group in (structures, ratios):
            self.score(JobResult(job.architecture, job.transform, structures=group), promoted)

    def ratios_over(self, columns: Sequence[int], transform: str) -> list[Structure]:
        """The sparse ratios of monomials of the inputs, each alone or times one of the
        function ``columns``, over monomial denominators, on the train rows (at most
        :data:`RATIO_ROWS` of them): ``V/R - V*exp(-R*t/L)/R``, ``(1 + exp(-r*t))/K``,
        ``A*cos(w*t) + B*sin(w*t)``."""
        data = self.data
        rows = np.flatnonzero(data.labels == TRAIN)[:RATIO_ROWS]
        inputs = list(data.table.inputs)
        values = data.table.values[rows]
        return fixed_denominator_structures(
            values[:, inputs],
            apply_transform(data.y[rows], transform),
            inputs,
            data.table.constant,
            None if data.weights is None else data.weights[rows],
            times=(values[:, list(columns)], list(columns)),
        )

    def score(self, job: JobResult, promoted: int = PROMOTED) -> None:
        """Fit every new structure of ``job`` (or of one chunk of it) at once, then keep the
        ``promoted`` best as formulas."""
        fresh = [s for s in job.structures if (job.transform, s) not in self.seen]
        self.seen.update((job.transform, s) for s in fresh)
        fresh = [s for s in fresh if all(map(self.divides_safely, denominators(s)))]
        if not fresh:
            return
        rows = self.rows(job.transform)
        backend = self.backend
        if backend == "auto" and len(fresh) * rows.y.size < NUMBA_WORTHWHILE:
            backend = "numpy"
        scores = score_rows(pack(fresh), rows, backend=backend)
        order = np.argsort(scores.relative_rmse[:, VALIDATION], kind="stable")[:promoted]
        for i in order:
            if np.isfinite(scores.relative_rmse[i, VALIDATION]):
                coefficients = scores.coefficients[i, : len(fresh[i]) + 1]
                self.keep(self._build(fresh[i], coefficients, job.transform, job.architecture))

    def best(self) -> sympy.Expr:
        """The formula with the lowest validation error so far (the simplest among equals)."""
        return min(
            self.candidates.values(),
            key=lambda c: (np.nan_to_num(c.relative_rmse[VALIDATION], nan=np.inf), c.complexity),
        ).expr

    def found(self) -> bool:
        """Whether some candidate so far holds on the held-out rows: exactly, on data that
        some candidate fits within the tolerance (noise-free data).

        There, a formula that holds only with estimated constants (``L*theta**1.99999*...``
        within 1e-7 of ``L*(1 - cos(theta))``) is a close approximation, and later stages may
        still find the formula itself; on noisy data it is what the data allow, if it is
        short: a sum of more than :data:`STOP_TERMS` terms (a ratio of polynomials solved in
        closed form) can bend to hold within 0.1% noise, and a later stage may still find the
        formula, which is then chosen as the simpler one.
        """
        candidates = list(self.candidates.values())
        used = mark_exact(candidates, self.tolerance, self.data.probe_inputs)
        if used <= self.tolerance:
            return any(c.exact for c in candidates)
        return any(c.holds and c.terms <= STOP_TERMS for c in candidates)

    def exact(self) -> bool:
        """Whether some candidate so far is exact (as :meth:`found` last marked them)."""
        return any(c.exact for c in self.candidates.values())

    def leaves_noise(self) -> bool:
        """Whether the best formula so far leaves only noise (see
        :func:`~nalu_sr.search.candidates.leaves_noise`)."""
        return leaves_noise(list(self.candidates.values()), self.tolerance, self.data.probe_inputs)


@dataclass
class SearchLog:
    """How the search went: the jobs it completed and why it ended."""

    jobs: list[str] = field(default_factory=list)
    reseeded: int = 0
    timed_out: bool = False
    interrupted: bool = False
    explained: bool = False
    stages_left: int = 0
    labels: int = 0


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


@dataclass(frozen=True)
class _Budget:
    """The optional time cap on a search (``max_time``, ``None`` for none)."""

    started: float
    max_time: float | None

    def spent(self) -> bool:
        return self.max_time is not None and time.perf_counter() - self.started > self.max_time

    def deadline(self) -> float | None:
        """The end of the budget as a :func:`time.time` value (for worker processes)."""
        if self.max_time is None:
            return None
        return time.time() + self.max_time - (time.perf_counter() - self.started)


def _search(
    jobs: list[Job],
    training: dict[bool, tuple[FeatureTable, np.ndarray, np.ndarray | None]],
    scoring: Scoring,
    settings: TrainingSettings,
    budget: _Budget,
    n_jobs: int | None,
    progress: Progress | None,
) -> SearchLog:
    """Train ``jobs`` (chunks of them, in order) and score each as it arrives, stage by stage,
    until a stage yields a formula that holds or one that leaves only noise, the jobs run out,
    the time cap is reached, or the user interrupts."""
    log = SearchLog()
    total = sum(job.chunk.start == 0 for job in jobs)
    wants_best = progress is not None and takes_best(progress)
    deadline = budget.deadline()
    trained = _run_jobs(
        (
            delayed(run_job)(
                job,
                training[job.architecture.whitened][0],
                apply_transform(training[job.architecture.whitened][1], job.transform),
                settings,
                # The first stage always runs, so even a tiny budget yields a formula.
                deadline=None if job.stage == 0 else deadline,
                weights=training[job.architecture.whitened][2],
            )
            for job in jobs
        ),
        n_jobs,
    )

    def take(job: Job, piece: JobResult) -> bool:
        """Score one job's piece; whether the job is complete."""
        log.reseeded += piece.reseeded
        copies = settings.copies(job.architecture)
        if piece.products:
            scoring.multiply(piece, promoted=_promoted(job.chunk, copies))
        elif piece.pairs:
            scoring.add_functions(piece, promoted=_promoted(job.chunk, copies))
        elif piece.compositions:
            listed = job.architecture.kind.solve is not None
            scoring.compose(piece, promoted=_promoted(job.chunk, copies), listed=listed)
        else:
            scoring.score(piece, promoted=_promoted(job.chunk, copies))
        if job.chunk.stop < copies:
            return False  # more chunks of this job to come
        log.jobs.append(f"{piece.architecture} on {piece.transform}")
        if wants_best:
            progress(len(log.jobs), total, log.jobs[-1], best=scoring.best())
        elif progress is not None:
            progress(len(log.jobs), total, log.jobs[-1])
        return True

    stopped = None
    try:
        for index, (job, piece) in enumerate(zip(jobs, trained)):
            if piece.timed_out or (job.stage > 0 and budget.spent()):
                log.timed_out = True
                break
            if not take(job, piece):
                continue
            last = index + 1 == len(jobs)
            if not last and jobs[index + 1].stage == job.stage:
                continue  # the stage is not complete yet
            if scoring.found():
                stopped = index
                break
            if scoring.leaves_noise():
                log.explained = True
                stopped = index
                break
            if not last and budget.spent():
                log.timed_out = True
                break
    except KeyboardInterrupt:
        log.interrupted = True
    finally:
        _close(trained)
    if stopped is not None and not scoring.exact():
        # Stopped on noisy data by a formula that fits within the noise: a few closed-form
        # stages later in the plan cost seconds, and may hold a simpler formula beyond
        # arithmetic (9.81*m*sin(theta) beside m*theta*(9.8 - 1.56*theta**2)), which the
        # choice then prefers.
        rest = [
            j
            for j in jobs[stopped + 1 :]
            if j.architecture.kind.solve is not None and j.transform in NOISY_STOP_TRANSFORMS
        ]
        try:
            for job in rest:
                if budget.spent():
                    log.timed_out = True
                    break
                table, target, weights = training[job.architecture.whitened]
                piece = run_job(
                    job, table, apply_transform(target, job.transform), settings, weights=weights
                )
                take(job, piece)
        except KeyboardInterrupt:
            log.interrupted = True
    return log


def takes_best(progress: Progress) -> bool:
    """Whether the callback ``progress`` has a parameter named ``best``.

    Only those get the best formula so far: callbacks written for three arguments, ``*args``
    ones included, keep getting three.
    """
    try:
        parameter = inspect.signature(progress).parameters.get("best")
    except (TypeError, ValueError):  # no signature to read (some built-in callables)
        return False
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return parameter is not None and parameter.kind in keyword


def find_formula(
    X,
    y,
    feature_names: Sequence[str] | None = None,
    *,
    sample_weight=None,
    extrapolation: tuple | None = None,
    holdout_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    tolerance: float = 1e-6,
    effort: float = 1.0,
    max_time: float | None = None,
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

    Stacks of arithmetic units (NAU, NMU, NAU→NMU, NMU→NAU, NALU; see
    :mod:`~nalu_sr.search.stacks`) are trained on the train rows, many copies at once; every
    trained copy is snapped to discrete weights (with nearby alternatives), each distinct
    structure gets its constants by least squares, constants are made exact where the data
    allows, and every formula is scored on train, validation and extrapolation rows. The
    search stops at the first stage of architectures that yields a formula that holds, or
    one whose residual is only noise; the stages it may try are set by ``effort``.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_rows, n_features)
    y : array-like of shape (n_rows,)
    feature_names : sequence of str, optional
        Column names, used as the formula's symbols (a DataFrame's columns by default).
    sample_weight : array-like of shape (n_rows,), optional
        Non-negative weight of each row, as in scikit-learn: a row of weight 2 counts as that
        row twice, in the training loss, the least-squares fit of the constants and every
        error. Rows of weight 0 are left out; repeated rows are merged into one row carrying
        their summed weight (see :func:`~nalu_sr.weights.merge_weighted_rows`), so that the
        split and the training rows are drawn from distinct rows.
    extrapolation : (X_extra, y_extra), optional
        An explicit extrapolation set; by default the outer band of the input ranges
        (``holdout_fraction`` of the rows) is held out instead.
    holdout_fraction, validation_fraction : float
        Shares of rows held out for the extrapolation check and for validation.
    tolerance : float
        Relative RMSE under which a formula is exact on noise-free data.
    effort : float
        How much search the plan holds: the stages, simplest first, whose training runs add up
        to at most ``effort * PLAN_RUNS`` (about two minutes on 2 cores at 1; the first stage
        always). Set by work, not time, so the result does not depend on the machine.
    max_time : float or None
        Optional time cap in seconds. The first stage always runs to the end; after the cap
        the search stops (abandoning jobs in training) with the best formula so far, and
        ``timed_out`` says so: how far it got depends on the machine's speed and load.
    settings : TrainingSettings, optional
        Restarts, steps, learning rate and regularisation of each architecture.
    architectures : sequence of str, optional
        Names of the architectures to try (default: all that the data allows, see
        :func:`~nalu_sr.search.stacks.architectures`).
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
        ``progress(done, total, description)`` after each trained architecture; a callback
        with a parameter named ``best`` is called with ``best=``, the formula with the lowest
        validation error so far, too.

    Returns
    -------
    SearchResult
    """
    budget = _Budget(time.perf_counter(), max_time)
    settings = settings or TrainingSettings()
    data = prepare_data(
        X,
        y,
        feature_names,
        extrapolation,
        holdout_fraction,
        validation_fraction,
        random_state,
        sample_weight,
    )
    train_rows = data.train_rows
    space = Space(data.table, train_rows, data.y[train_rows], max_power=max_power)
    stages = plan_stages(
        _select(stacks.architectures(space), architectures),
        _transforms(data.y, data.fitted_rows),
    )
    labels = label_count(data.y[train_rows])
    planned = plan_jobs(stages, settings, random_state)
    jobs, stages_left = plan_within(planned, settings, 0.0 if labels else effort)
    training = _training_data(data, jobs, settings, max_train_rows, random_state)
    scoring = Scoring(data, tolerance, scoring_backend)
    log = _search(jobs, training, scoring, settings, budget, n_jobs, progress)
    log.stages_left = stages_left
    log.labels = labels
    seconds = time.perf_counter() - budget.started
    return _result(list(scoring.candidates.values()), data, tolerance, log, seconds)


def _result(
    candidates: list[Candidate], data: SearchData, tolerance: float, log: SearchLog, seconds: float
) -> SearchResult:
    used = mark_exact(candidates, tolerance, data.probe_inputs)
    candidates = sorted(
        candidates, key=lambda c: (c.complexity, c.relative_rmse[VALIDATION], c.key)
    )
    table = candidates_table(candidates)
    chosen = choose(table)
    return SearchResult(
        formula=None if chosen is None else table.loc[chosen, "sympy_format"],
        exact=bool(chosen is not None and table.loc[chosen, "exact"]),
        candidates=table,
        chosen=chosen,
        feature_names=list(data.feature_names),
        symbols=list(data.symbols),
        split=data.split,
        tolerance=used,
        message=_message(table, chosen, candidates, used, log),
        seconds=seconds,
        reseeded=log.reseeded,
        interrupted=log.interrupted,
        timed_out=log.timed_out,
        jobs=log.jobs,
        explained=log.explained,
        stages_left=log.stages_left,
    )


def _message(
    table: pd.DataFrame,
    chosen: int | None,
    candidates: list[Candidate],
    used: float,
    log: SearchLog,
) -> str:
    """The one-line verdict on the chosen formula (row ``chosen`` of ``table``)."""
    if chosen is None:
        message = "No formula found: the search produced no candidate that could be scored."
    elif table.loc[chosen, "exact"]:
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
        if log.interrupted:
            where = "No exact formula among the architectures trained before the interruption"
        elif log.timed_out:
            where = (
                "No exact formula among the architectures trained before max_time ended the "
                "search (a rerun may differ; raise max_time, or --max-time, or leave it out "
                "to train the whole plan)"
            )
        elif log.labels:
            where = (
                f"No exact formula in the first stage, the only one searched: the target takes "
                f"only {log.labels} distinct values, as class labels do, which no formula of "
                "inputs that vary gives"
            )
        elif log.explained:
            where = (
                "No exact formula: the best one leaves a residual that the inputs do not "
                "predict (noise), so the search stopped"
            )
        elif log.stages_left:
            where = (
                f"No exact formula among the stages of the search plan ({log.stages_left} "
                "stages of wider stacks left; raise effort, or --effort, to train them)"
            )
        else:
            where = "No exact formula in the search space"
        message = (
            f"{where}; the best approximation has relative error {error:.3g} on the held-out "
            "extrapolation rows."
        )
    if log.interrupted:
        message += " (Search interrupted: best result so far.)"
    return message


def _estimated(candidate: Candidate) -> str:
    """``"its constant 8.3"``, naming the estimated constants as the formula shows them.

    Simplification can merge constants (``50 + 50*1`` is ``100``); then none is named.
    """
    shown = {abs(float(n)) for n in candidate.expr.atoms(sympy.Number)}
    # A constant two terms share (13.6*(1/n1**2 - 1/n2**2)) is named once.
    values = list(dict.fromkeys(abs(float(c)) for c in candidate.estimated))
    if not values or not all(any(np.isclose(v, n, rtol=1e-9) for n in shown) for v in values):
        return "its constants"
    listed = ", ".join(f"{v:.6g}" for v in values)
    return f"its constant{'s' if len(values) > 1 else ''} {listed}"
