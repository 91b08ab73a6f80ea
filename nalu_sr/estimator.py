"""``NaluRegressor``: the formula search as a scikit-learn estimator."""

from __future__ import annotations

import dataclasses
import functools
import numbers
import os
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import sympy
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import export, model_file
from .data import EXTRAPOLATION, TRAIN
from .model_file import ModelRecord
from .plot import keep_rows
from .progress import verbose_progress
from .search import SearchResult, TrainingSettings, find_formula
from .search.candidates import build_candidate, candidates_table, mark_exact
from .search.space import build_feature_table
from .symbolic import denominators, domain_arguments, feature_symbols
from .validation import (
    check_enough_rows,
    check_finite,
    check_frame,
    check_magnitude,
    check_sample_weight,
    describe_dropped,
    informative_columns,
)
from .weights import merge_weighted_rows

__all__ = ["DomainWarning", "NaluRegressor", "PoleWarning"]

_BACKENDS = ("auto", "numba", "numpy", "torch")


@functools.lru_cache(maxsize=128)
def _compiled(expr: sympy.Expr, feature_names: tuple[str, ...]) -> Callable[..., np.ndarray]:
    # Cached outside the estimator: predict must not change the estimator's state, and
    # compiled functions cannot be pickled.
    return export.to_function(expr, feature_names, backend="numpy")


class PoleWarning(UserWarning):
    """New rows where a denominator of the formula is zero or has the other sign than on the
    rows it was fitted on (or, for a model loaded from a file, which keeps no rows, changes
    sign among the new rows): the formula has a pole between them and the fitted rows, where
    the data it was fitted on said nothing about it."""


class DomainWarning(UserWarning):
    """New rows where the argument of a root or a logarithm in the formula is negative (or zero,
    for a logarithm), or that of an arcsine is outside [-1, 1]: the formula is not real there,
    and ``predict`` gives NaN."""


def _warn_on_domains(expr: sympy.Expr, names: tuple[str, ...], X: np.ndarray) -> None:
    """Warn once per root, logarithm or arcsine of ``expr`` whose argument leaves its domain on
    rows of ``X``."""
    if X.shape[0] == 0:
        return
    logs = {f.args[0] for f in expr.atoms(sympy.log)}
    # (argument, whether each value is inside the domain, how the message names it)
    checks = [
        (
            argument,
            (lambda v: v > 0) if argument in logs else (lambda v: v >= 0),
            "a root or logarithm of",
            "its domain",
        )
        for argument in domain_arguments(expr)
    ] + [
        (f.args[0], lambda v: np.abs(v) <= 1, "the arcsine of", "[-1, 1]")
        for f in sorted(expr.atoms(sympy.asin), key=sympy.default_sort_key)
    ]
    for argument, inside, what, domain in checks:
        values = np.broadcast_to(_compiled(argument, names)(*X.T), (X.shape[0],))
        outside = int(np.sum(~inside(values)))
        if outside:
            warnings.warn(
                f"the formula takes {what} {argument}, which is outside {domain} on "
                f"{outside} of the {X.shape[0]} rows: the formula is not real there (predict "
                "gives NaN).",
                DomainWarning,
                stacklevel=3,
            )


def _warn_on_poles(
    expr: sympy.Expr, names: tuple[str, ...], X: np.ndarray, fitted: np.ndarray | None = None
) -> None:
    """Warn once per denominator of ``expr`` that is zero on rows of ``X``, or has there the
    other sign than on the ``fitted`` rows (a sample of the rows the formula was fitted on),
    or, without them, takes both signs on ``X``."""
    if X.shape[0] == 0:
        return
    for denominator in denominators(expr):
        function = _compiled(denominator, names)
        values = np.broadcast_to(function(*X.T), (X.shape[0],))
        side = 0.0
        if fitted is not None and len(fitted):
            on_fitted = np.broadcast_to(function(*fitted.T), (fitted.shape[0],))
            side = float(np.sign(on_fitted[0])) if _one_sign(on_fitted) else 0.0
        if side:
            # Rows beyond the pole as seen from the fitted rows, and zeros.
            crossing = int(np.sum(np.sign(values) != side))
            where = "zero or of the other sign than on the fitted rows"
        else:
            # Rows on the minority side of zero, and zeros: where the formula has crossed a pole.
            crossing = int(np.sum(values == 0)) + min(np.sum(values > 0), np.sum(values < 0))
            where = "zero or changes sign"
        if crossing:
            warnings.warn(
                f"the formula divides by {denominator}, which is {where} on {crossing} of the "
                f"{X.shape[0]} rows: its values near there are not trustworthy.",
                PoleWarning,
                stacklevel=3,
            )


def _one_sign(values: np.ndarray) -> bool:
    return bool(np.all(values > 0) or np.all(values < 0))


def _fitted_rows(model: NaluRegressor) -> np.ndarray | None:
    """The sample of fitted rows (train and validation) the model kept, if it has one; a
    model loaded from a model file keeps none."""
    kept = getattr(model, "_kept_rows_", None)
    if kept is None:
        return None
    return kept.X[kept.labels != EXTRAPOLATION]


class NaluRegressor(RegressorMixin, BaseEstimator):
    """Symbolic regression with neural arithmetic units, checked on held-out input ranges.

    ``fit`` trains stacks of arithmetic units (NAU, NMU, their two-layer combinations, the
    division unit NDU after sums, the power unit NPU, and NALU), snaps their weights to discrete
    values, turns each snapped network into a SymPy formula with exact constants where the data
    allow, and keeps the formulas in ``candidates_``. The chosen formula is the simplest one
    that also holds on the rows with the most extreme inputs, which the search never trains on
    (or on an explicit extrapolation set), preferring formulas whose constants the data pin
    (``exact_``) over ones that hold with estimated constants (noisy data); when none holds, the
    best trade-off between error and size is chosen and ``exact_`` is false. ``predict``
    evaluates the formula: no network is kept.

    Parameters
    ----------
    effort : float, default=1.0
        How much search to plan, as PySR's ``niterations`` or gplearn's ``generations`` do:
        the groups of architectures (stages, simplest first) whose training runs add up to at
        most ``36 * effort``. At 1 the plan takes about two minutes on 2 cores when no stage
        finds the formula, less on narrow tables; raise it to reach wider stacks on wide
        tables. The search ends on its own, earlier when a stage yields a formula that holds
        or one that leaves only noise, and the same seed gives the same formula on any
        machine, busy or idle.
    max_time : float or None, default=None
        Optional cap in seconds. The first (simplest) group of architectures always runs to
        the end; after the cap the search stops, abandoning jobs still training, and keeps
        the best formula found so far. How far it got then depends on the machine's speed
        and load, so a rerun may give another formula: ``timed_out_`` says when the cap
        ended the search.
    restarts : int, default=2
        Trained copies of each architecture per target scale (three times as many at the
        centre of the scale grid, where formulas with unit coefficients are matched).
    steps : int, default=1500
        Optimisation steps of each training run.
    scale_steps : int, default=6
        Target scales tried on each side of the centre of the scale grid (see
        :class:`~nalu_sr.search.TrainingSettings`).
    architectures : sequence of str or None, default=None
        Names of the architectures to try, e.g. ``["NAU", "NMU"]``; ``None`` tries all.
    holdout_fraction : float, default=0.2
        Share of rows held out for the extrapolation check: the rows at the outer edge of the
        input ranges. Not used when ``X_extrapolation`` is passed to ``fit``.
    validation_fraction : float, default=0.2
        Share of the remaining rows used to compare candidates.
    tolerance : float, default=1e-6
        Relative RMSE under which a formula counts as exact on noise-free data (on noisy data
        the tolerance follows the noise level).
    max_power : int, default=2
        Largest integer power of an input inside a product.
    max_train_rows : int, default=256
        Rows used for training (a fixed random subsample); every row is used for scoring.
    scoring_backend : {"auto", "numba", "numpy", "torch"}, default="auto"
        Where candidate structures are scored.
    random_state : int, RandomState instance or None, default=0
        Seed of the split and of training. The same integer gives the same formula for any
        ``n_jobs``.
    n_jobs : int or None, default=1
        Architectures trained in parallel (joblib).
    verbose : int, default=0
        What ``fit`` shows while it searches. 0: nothing. 1: a progress bar with the
        architectures trained of the total, the time spent and the best formula so far, in a
        terminal or a Jupyter notebook (which needs ``ipywidgets``); elsewhere (a log file,
        captured output) a plain line per trained architecture instead. 2: the plain lines
        always.

    Attributes
    ----------
    formula_ : sympy.Expr
        The chosen formula, over real symbols named after the features.
    exact_ : bool
        Whether ``formula_`` holds on the held-out extrapolation rows within tolerance and
        the data pin each of its constants (on noisy data a constant such as ``8.31`` may be
        an estimate: the formula then holds but is not exact).
    holds_ : bool
        Whether ``formula_`` holds on the held-out extrapolation rows within tolerance (the
        noise level, on noisy data), exact or with estimated constants.
    candidates_ : pandas.DataFrame
        Every distinct formula found, simplest first: ``formula``, ``complexity``,
        ``loss_train``, ``loss_validation``, ``loss_extrapolation`` (relative RMSEs),
        ``max_error_extrapolation``, ``holds``, ``exact``, ``score``, ``architecture``,
        ``transform`` (the form of the target it was fitted to: ``"y"``, ``"1/y"``,
        ``"log(y)"``, ...), ``sympy_format``. Its row labels are the ``index`` of
        :meth:`predict` and the export methods.
    chosen_ : int
        Row of ``candidates_`` holding ``formula_``.
    extrapolation_ : dict
        The extrapolation check: held-out row count, whether the rows were given
        explicitly, the input ranges the formula was fitted on, the tolerance, and the chosen
        formula's relative RMSE and largest relative error on the held-out rows.
    message_ : str
        A one-line verdict.
    timed_out_ : bool
        Whether ``max_time`` ended the search before its plan was done (a rerun may then
        differ).
    result_ : SearchResult
        Everything the search returned, including the row split.
    target_name_ : str or None
        Name of ``y`` when it was a named pandas Series.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of str
        Names of the features seen during ``fit``; only defined when ``X`` had string
        column names.
    dropped_features_ : dict of str to str
        Features kept out of the search, with the reason: a constant column, or a column
        equal to an earlier one. The formula does not use them; ``predict`` still takes
        every column.

    Notes
    -----
    ``fit`` needs at least 10 samples: rows are held out for validation and for the
    extrapolation check. Bad input raises a subclass of ``ValueError`` from
    :mod:`nalu_sr.errors`: ``NonFiniteError`` for NaN or infinite values (with their count
    and first rows), ``ColumnError`` for duplicate or non-numeric DataFrame columns,
    ``TooFewRowsError`` for fewer than 10 samples, ``MagnitudeError`` for a column whose
    largest magnitude is above 1e150 or, not being zero, below 1e-150 (their squares leave
    float64's range, where errors can no longer be measured), ``WeightError`` for a
    ``sample_weight`` that is negative, NaN, infinite, all zero or of the wrong length.

    A constant target is not an error: the constant formula fits it and is exact (unless every
    row is the same row: repeated rows are merged into one weighted row, leaving none to hold
    out, so the constant is not claimed exact). Constant features and features equal to an
    earlier one carry nothing the others do not, so they are left out of the search
    (``dropped_features_``); when no feature varies, the first one is kept and the formula is
    a constant. When every trained network snaps to no structure at all (data with no
    pattern, such as pure noise), the formula is the constant fitted on the train rows, scored
    on every split like any candidate (architecture ``"constant"``); it is exact only when the
    target is constant.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"I": rng.uniform(0.1, 2, 200), "R": rng.uniform(1, 100, 200)})
    >>> model = NaluRegressor(architectures=["NAU", "NMU"]).fit(X, X.I * X.R)
    >>> model.formula_
    I*R
    >>> model.exact_
    True
    """

    def __init__(
        self,
        effort: float = 1.0,
        max_time: float | None = None,
        restarts: int = TrainingSettings.restarts,
        steps: int = TrainingSettings.steps,
        scale_steps: int = TrainingSettings.scale_steps,
        architectures: Sequence[str] | None = None,
        holdout_fraction: float = 0.2,
        validation_fraction: float = 0.2,
        tolerance: float = 1e-6,
        max_power: int = 2,
        max_train_rows: int = 256,
        scoring_backend: str = "auto",
        random_state: int | np.random.RandomState | None = 0,
        n_jobs: int | None = 1,
        verbose: int = 0,
    ):
        self.effort = effort
        self.max_time = max_time
        self.restarts = restarts
        self.steps = steps
        self.scale_steps = scale_steps
        self.architectures = architectures
        self.holdout_fraction = holdout_fraction
        self.validation_fraction = validation_fraction
        self.tolerance = tolerance
        self.max_power = max_power
        self.max_train_rows = max_train_rows
        self.scoring_backend = scoring_backend
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    def fit(
        self,
        X,
        y,
        X_extrapolation=None,
        y_extrapolation=None,
        *,
        sample_weight=None,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> NaluRegressor:
        """Search for the formula behind ``y = f(X)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Inputs; a DataFrame's string column names become the formula's symbols
            (otherwise ``x0``, ``x1``, ...).
        y : array-like of shape (n_samples,)
            Target.
        X_extrapolation, y_extrapolation : array-like, optional
            Rows to check the formula on instead of holding out the outer band of ``X``;
            typically inputs from wider ranges than ``X``. Pass both or neither.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each row: a row of weight 2 counts as that row twice in
            the training loss, the least-squares fit of the constants, and every error and
            check. Rows of weight 0 are left out before anything else, as if absent; repeated
            rows are merged into one that carries their summed weight, so that the split into
            train, validation and held-out rows is one of distinct rows (``result_.split``
            labels those). Equal weights are the same as none.
        progress : callable, optional
            ``progress(done, total, description)`` after each trained architecture (a
            callback with a parameter named ``best`` also gets the best formula so far);
            replaces what ``verbose`` shows.

        Returns
        -------
        self : NaluRegressor
            The fitted estimator.

        Raises
        ------
        NonFiniteError
            If ``X``, ``y`` or the extrapolation data hold NaN or infinite values.
        ColumnError
            If a DataFrame has duplicate or non-numeric columns.
        TooFewRowsError
            If there are fewer than 10 samples.
        WeightError
            If ``sample_weight`` is not one number per sample, holds NaN, infinite or
            negative values, or is zero for every sample.
        MagnitudeError
            If a column's largest magnitude is above 1e150 or, not zero, below 1e-150.
        ValueError
            If a parameter is invalid. The errors above are ``ValueError`` subclasses too.
        KeyboardInterrupt
            If the search was interrupted before it found any formula. An interrupted search
            that found one keeps it, with a warning.
        """
        self._check_params()
        target_name = y.name if isinstance(y, pd.Series) and isinstance(y.name, str) else None
        X, y = _checked(self, X, y, "X", "y", reset=True)
        check_enough_rows(X.shape[0], "X")
        given = (X, y, check_sample_weight(sample_weight, X.shape[0]))
        # The rows the search will see (weight 0 left out, repeated rows merged), for the
        # columns' check and the fallback; find_formula merges the given rows just so.
        X, y, weights = merge_weighted_rows(*given)
        extrapolation = None
        if (X_extrapolation is None) != (y_extrapolation is None):
            raise ValueError(
                "pass both X_extrapolation and y_extrapolation, or neither; got only one."
            )
        if X_extrapolation is not None:
            extrapolation = _checked(
                self, X_extrapolation, y_extrapolation, "X_extrapolation", "y_extrapolation"
            )
        names = _feature_names(self)
        kept, dropped = informative_columns(X, names)
        if self.verbose and dropped:
            print(f"Left out of the search: {describe_dropped(dropped)}", flush=True)
        extrapolation_all = extrapolation
        if extrapolation is not None:
            extrapolation = (extrapolation[0][:, kept], extrapolation[1])
        with verbose_progress(self.verbose, progress) as report:
            result = find_formula(
                given[0][:, kept],
                given[1],
                [names[j] for j in kept],
                sample_weight=given[2],
                extrapolation=extrapolation,
                holdout_fraction=self.holdout_fraction,
                validation_fraction=self.validation_fraction,
                tolerance=self.tolerance,
                effort=self.effort,
                max_time=self.max_time,
                settings=TrainingSettings(
                    restarts=self.restarts, steps=self.steps, scale_steps=self.scale_steps
                ),
                architectures=None if self.architectures is None else list(self.architectures),
                max_power=self.max_power,
                max_train_rows=self.max_train_rows,
                scoring_backend=self.scoring_backend,
                n_jobs=self.n_jobs,
                random_state=_seed(self.random_state),
                progress=report,
            )
        if result.formula is None:
            if result.interrupted:
                raise KeyboardInterrupt
            if not result.jobs:
                raise ValueError(
                    f"max_time={self.max_time} s left no time to train any architecture; "
                    "increase max_time."
                )
            result = _constant_fallback(
                result, X[:, kept], y, extrapolation, self.tolerance, weights
            )
        if dropped:
            result = _with_every_feature(result, X, names)
        if result.interrupted:
            warnings.warn(
                "the search was interrupted; the model keeps the best formula found so far.",
                UserWarning,
                stacklevel=2,
            )
        self._set_result(result, target_name, dropped)
        rows = X if extrapolation is None else np.vstack([X, extrapolation_all[0]])
        targets = y if extrapolation is None else np.concatenate([y, extrapolation_all[1]])
        # A sample of the rows, for the picture (plot) and to tell on which side of a pole
        # new rows lie (predict).
        self._kept_rows_ = keep_rows(rows, targets, result.split.labels)
        return self

    def _check_params(self) -> None:
        for name, low in (("restarts", 1), ("steps", 1), ("scale_steps", 0), ("max_power", 1)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
        if not isinstance(self.max_train_rows, numbers.Integral) or self.max_train_rows < 2:
            raise ValueError(
                f"max_train_rows must be an integer >= 2, got {self.max_train_rows!r}."
            )
        for name in ("effort", "max_time", "tolerance"):
            value = getattr(self, name)
            if name == "max_time" and value is None:
                continue
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
                none = " or None" if name == "max_time" else ""
                raise ValueError(f"{name} must be a positive number{none}, got {value!r}.")
        for name in ("holdout_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}.")
        if self.scoring_backend not in _BACKENDS:
            raise ValueError(
                f"scoring_backend={self.scoring_backend!r} is not supported; use one of "
                f"{', '.join(map(repr, _BACKENDS))}."
            )
        if isinstance(self.architectures, str):
            raise ValueError(
                f"architectures must be a list of names such as ['NAU', 'NMU'], not the "
                f"string {self.architectures!r}."
            )

    def _set_result(
        self, result: SearchResult, target_name: str | None, dropped: dict[str, str]
    ) -> None:
        """Fitted attributes from a search result (also used by :meth:`from_record`)."""
        self.result_ = result
        self.formula_ = result.formula
        self.exact_ = bool(result.exact)
        self.holds_ = bool(result.holds)
        self.candidates_ = result.candidates
        self.chosen_ = int(result.chosen)
        self.extrapolation_ = result.extrapolation
        self.message_ = result.message
        self.timed_out_ = bool(result.timed_out)
        self.target_name_ = target_name
        self.dropped_features_ = dict(dropped)

    def predict(self, X, index: int | None = None) -> np.ndarray:
        """Evaluate the chosen formula, or the candidate in row ``index`` of ``candidates_``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        index : int, optional
            Row label of ``candidates_``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Values of the formula; ``inf`` or ``nan`` where it is undefined (a division by
            zero).

        Raises
        ------
        NonFiniteError
            If ``X`` holds NaN or infinite values (the message names columns and rows).
        ColumnError
            If a DataFrame has duplicate or non-numeric columns.
        """
        check_is_fitted(self)
        if isinstance(X, pd.DataFrame):
            check_frame(X, "X")
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=False)
        check_finite(X, self.result_.feature_names, "X")
        expr = self.sympy(index)
        names = tuple(self.result_.feature_names)
        with np.errstate(all="ignore"):
            values = _compiled(expr, names)(*X.T)
            _warn_on_poles(expr, names, X, _fitted_rows(self))
            _warn_on_domains(expr, names, X)
        return np.asarray(values, dtype=np.float64).reshape(X.shape[0])

    def sympy(self, index: int | None = None) -> sympy.Expr:
        """The chosen formula, or the candidate in row ``index`` of ``candidates_``."""
        check_is_fitted(self)
        if index is None:
            return self.formula_
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an integer row label of candidates_, got {index!r}.")
        if index not in self.candidates_.index:
            raise IndexError(
                f"index={index} is not a row of candidates_, whose rows are "
                f"0 to {len(self.candidates_) - 1}."
            )
        return self.candidates_.loc[index, "sympy_format"]

    def latex(self, index: int | None = None) -> str:
        """LaTeX of the chosen formula (or of candidate ``index``), in the features' names."""
        return export.to_latex(self.sympy(index))

    def to_python(
        self, index: int | None = None, backend: str = "numpy", function_name: str = "formula"
    ) -> str:
        """Source of a standalone Python function computing the formula.

        Parameters
        ----------
        index : int, optional
            Row of ``candidates_``; the chosen formula by default.
        backend : {"numpy", "math"}, default="numpy"
            NumPy arrays or Python floats (see :func:`nalu_sr.export.to_python`).
        function_name : str, default="formula"

        Returns
        -------
        str
            Code defining ``function_name(feature_1, feature_2, ...)``.
        """
        expr = self.sympy(index)
        return export.to_python(expr, self.result_.feature_names, function_name, backend)

    def plot(self, X=None, y=None, X_extrapolation=None, y_extrapolation=None):
        """A matplotlib figure of the fit: prediction and residuals against truth on the train,
        validation and extrapolation rows, and the candidates' complexity against validation
        loss, the chosen formula marked (see :func:`nalu_sr.plot.plot_fit`).

        By default it draws the rows the fit kept for it (up to 5,000 of each group). A model
        loaded from a model file keeps none: pass the ``X`` and ``y`` given to ``fit``, and
        its extrapolation set if it had one. Needs ``pip install 'nalu-sr[plot]'``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features), optional
        y : array-like of shape (n_samples,), optional
        X_extrapolation, y_extrapolation : array-like, optional

        Returns
        -------
        matplotlib.figure.Figure
            Not shown; save it with ``figure.savefig("fit.png")``.

        Raises
        ------
        nalu_sr.errors.MissingDependencyError
            If matplotlib is not installed.
        nalu_sr.errors.InputError
            If the data are not those the model was fitted on, or none are passed to a
            model loaded from a file.

        Examples
        --------
        >>> model.plot().savefig("fit.png")  # doctest: +SKIP
        """
        from .plot import plot_fit

        return plot_fit(self, X, y, X_extrapolation, y_extrapolation)

    def pytorch(self, index: int | None = None) -> export.TorchFormula:
        """The chosen formula (or candidate ``index``) as a ``torch.nn.Module``.

        Parameters
        ----------
        index : int, optional
            Row of ``candidates_``; the chosen formula by default.

        Returns
        -------
        nalu_sr.export.TorchFormula
            A module whose ``forward`` takes a tensor of shape ``(n_rows, n_features_in_)``,
            the columns as :meth:`predict` takes them (those left out of the search too), and
            returns the formula's values, shape ``(n_rows,)``, with the input's dtype and
            device. Gradients flow through the formula. It pickles, and ``torch.save`` saves
            it (``torch.load(path, weights_only=False)`` loads it, with nalu-sr installed).

        Examples
        --------
        >>> import torch
        >>> X = pd.DataFrame({"C": np.linspace(-40, 100, 50)})
        >>> model = NaluRegressor(max_time=5, architectures=["NAU"]).fit(X, 9 * X.C / 5 + 32)
        >>> model.pytorch()(torch.tensor([[0.0], [100.0]], dtype=torch.float64))
        tensor([ 32., 212.], dtype=torch.float64)
        """
        return export.TorchFormula(self.sympy(index), self.result_.feature_names)

    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> None:
        """Write the fitted model to a JSON file (see :mod:`nalu_sr.model_file`).

        The file holds the formulas as data, never as code, so :meth:`load` evaluates
        nothing. The write is atomic: the file is complete or unchanged.

        Parameters
        ----------
        path : path-like
        overwrite : bool, default=True
            Replace an existing file; when false, an existing file raises
            ``FileExistsError``.
        """
        model_file.save_record(self.to_record(), path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> NaluRegressor:
        """Read a model written by :meth:`save`.

        Raises
        ------
        nalu_sr.serialization.ModelFileError
            If the file is not a valid nalu-sr model file.
        """
        return cls.from_record(model_file.load_record(path, cls().get_params(deep=False)))

    def to_record(self) -> ModelRecord:
        """The fitted state a model file stores: a :class:`~nalu_sr.model_file.ModelRecord`."""
        check_is_fitted(self)
        return ModelRecord(
            result=self.result_,
            params=self.get_params(deep=False),
            from_dataframe=hasattr(self, "feature_names_in_"),
            target=self.target_name_,
            # Absent from models pickled before features were left out of the search.
            dropped=dict(getattr(self, "dropped_features_", {})),
            estimator=type(self).__name__,
        )

    @classmethod
    def from_record(cls, record: ModelRecord) -> NaluRegressor:
        """A fitted estimator from the state :meth:`to_record` gives (or a model file holds)."""
        estimator = cls(**record.params)
        names = record.result.feature_names
        estimator.n_features_in_ = len(names)
        if record.from_dataframe:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        estimator._set_result(record.result, record.target, record.dropped)
        return estimator


def _constant_fallback(
    result: SearchResult,
    X: np.ndarray,
    y: np.ndarray,
    extrapolation: tuple | None,
    tolerance: float,
    weights: np.ndarray | None = None,
) -> SearchResult:
    """The intercept-only candidate, scored like any other, when the search chose none.

    The search always scores the constant formula, but it chooses by validation error: with
    no validation rows (``validation_fraction=0``, or a share of so few rows that it rounds
    to none) no candidate has a finite one and none is chosen. The empty structure is then
    the honest answer: its constant is fitted on the train rows and checked on every split.
    It is judged against the user's ``tolerance``, not the search's, which noisy data may
    have raised to the noise level: measured against that, a constant fitted to pure noise
    would count as exact.
    """
    if extrapolation is not None:
        X = np.vstack([X, extrapolation[0]])
        y = np.concatenate([y, extrapolation[1]])
        if weights is not None:
            weights = np.concatenate([weights, np.ones(len(extrapolation[1]))])
    labels = result.split.labels
    fit_rows = np.flatnonzero(labels != EXTRAPOLATION)
    table = build_feature_table(X, result.symbols, fit_rows)
    train = labels == TRAIN
    mean = np.average(y[train], weights=None if weights is None else weights[train])
    candidate = build_candidate(
        (),
        np.array([mean]),
        table=table,
        y=y,
        labels=labels,
        transform="y",
        architecture="constant",
        tolerance=tolerance,
        weights=weights,
    )
    tolerance = mark_exact([candidate], tolerance)
    error = candidate.relative_rmse[EXTRAPOLATION]
    if np.isnan(error):
        # Every row the same row (repeats are merged, see nalu_sr.weights): none to hold out.
        verdict = "no row was left to hold out for the extrapolation check"
    else:
        verdict = "it holds" if candidate.exact else f"relative error {error:.3g}"
        verdict += " on the held-out extrapolation rows"
    return dataclasses.replace(
        result,
        formula=candidate.expr,
        exact=candidate.exact,
        candidates=candidates_table([candidate]),
        chosen=0,
        tolerance=tolerance,
        message=(
            "The trained units gave no formula to score; fell back to the constant fitted on "
            f"the train rows ({verdict})."
        ),
    )


def _checked(
    estimator: NaluRegressor, X, y, x_name: str, y_name: str, reset: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` as float64 arrays, or an error naming the bad columns and rows."""
    if isinstance(X, pd.DataFrame):
        check_frame(X, x_name)
    # scikit-learn would reject a non-finite y with a message that gives no row.
    check_finite(_as_float(y), [y_name], y_name)
    X, y = validate_data(
        estimator,
        X,
        y,
        reset=reset,
        y_numeric=True,
        dtype=np.float64,
        ensure_all_finite=False,
    )
    names = _feature_names(estimator)
    check_finite(X, names, x_name)
    for values, columns in ((X, names), (y.reshape(-1, 1), [y_name])):
        check_magnitude(values, columns)
    return X, y


def _as_float(values) -> np.ndarray | None:
    """``values`` as a float array, or None when that needs scikit-learn's own checks."""
    try:
        array = np.asarray(values)
        if array.ndim == 0 or array.dtype.kind not in "biufO":
            return None
        return array.astype(np.float64)
    except (TypeError, ValueError):
        return None


def _with_every_feature(result: SearchResult, X: np.ndarray, names: Sequence[str]) -> SearchResult:
    """A search over some columns of ``X`` restated over all of them, for ``predict``."""
    fitted = X[result.split.labels[: X.shape[0]] != EXTRAPOLATION]
    ranges = np.column_stack([fitted.min(axis=0), fitted.max(axis=0)])
    return dataclasses.replace(
        result,
        feature_names=list(names),
        symbols=feature_symbols(names),
        split=dataclasses.replace(result.split, train_ranges=ranges),
    )


def _feature_names(estimator: NaluRegressor) -> list[str]:
    if hasattr(estimator, "feature_names_in_"):
        return [str(name) for name in estimator.feature_names_in_]
    return [f"x{j}" for j in range(estimator.n_features_in_)]


def _seed(random_state) -> int:
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
