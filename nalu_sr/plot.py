"""A picture of a fit: predictions against truth, residuals, and the candidates' trade-off.

matplotlib is an optional extra (``pip install 'nalu-sr[plot]'``), imported on first use. The
figures are :class:`matplotlib.figure.Figure` objects made without ``pyplot``: no GUI backend
is needed and no global state (current figure, backend) changes.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .data import EXTRAPOLATION, SPLIT_NAMES, TRAIN, VALIDATION
from .errors import InputError, MissingDependencyError
from .files import write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .estimator import NaluRegressor

__all__ = [
    "PlotRows",
    "figure_format",
    "keep_rows",
    "plot_fit",
    "require_matplotlib",
    "save_figure",
]

INSTALL = "pip install 'nalu-sr[plot]'"

#: Points drawn per row group; larger groups show a fixed random sample (the legend says so),
#: which keeps million-row tables quick to draw and their SVG and PDF files small.
MAX_POINTS = 5000

#: Colour and marker of each row group (the markers tell them apart without colour, too).
STYLES = {
    TRAIN: {"color": "tab:blue", "marker": "o", "zorder": 1.1},
    VALIDATION: {"color": "tab:orange", "marker": "s", "zorder": 1.2},
    # Underneath: an explicit extrapolation set may cover the other rows' range.
    EXTRAPOLATION: {"color": "tab:green", "marker": "^", "zorder": 1.0},
}

#: A formula longer than this is labelled by its row in the candidates panel, not written out.
LABEL_CHARS = 30

#: Significant digits of the float constants shown in the figure (the formula keeps them all).
DIGITS = 4


@dataclass(frozen=True)
class PlotRows:
    """The rows a fit keeps for its picture: at most ``MAX_POINTS`` of each row group (a fixed
    random sample of larger ones), with each group's full row count."""

    X: np.ndarray
    y: np.ndarray
    labels: np.ndarray
    totals: tuple[int, ...]


def keep_rows(X: np.ndarray, y: np.ndarray, labels: np.ndarray) -> PlotRows:
    """The rows of ``X`` and ``y`` (split by ``labels``) that :func:`plot_fit` draws by default;
    small enough to keep with any fitted model (three groups of ``MAX_POINTS`` rows at most)."""
    rng = np.random.default_rng(0)
    kept = []
    for part in range(len(SPLIT_NAMES)):
        rows = np.flatnonzero(labels == part)
        if len(rows) > MAX_POINTS:
            rows = np.sort(rng.choice(rows, size=MAX_POINTS, replace=False))
        kept.append(rows)
    rows = np.concatenate(kept)
    totals = tuple(int(np.sum(labels == part)) for part in range(len(SPLIT_NAMES)))
    return PlotRows(X[rows].copy(), y[rows].copy(), labels[rows].copy(), totals)


def require_matplotlib() -> None:
    """Check that matplotlib can be imported.

    Raises
    ------
    MissingDependencyError
        If it cannot; the message names the extra to install.
    """
    _figure_class()


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError(
            f"plotting needs matplotlib; install it with {INSTALL}"
        ) from error
    return Figure


def plot_fit(
    model: NaluRegressor, X=None, y=None, X_extrapolation=None, y_extrapolation=None
) -> Figure:
    """Draw how a fitted model's chosen formula does on the rows it was fitted and checked on.

    Three panels: (a) prediction against truth for the train, validation and held-out
    extrapolation rows, with the line prediction = truth; (b) the residuals divided by the
    RMS of the target, against the truth; (c) every candidate's complexity against its
    validation loss, with the chosen formula marked. The title gives the formula and whether
    it is exact.

    By default the figure shows the rows the fitted model keeps for it (up to ``MAX_POINTS``
    of each group, see :func:`keep_rows`). A model loaded from a model file keeps no rows:
    pass the same ``X`` and ``y`` as to ``fit``, in the same order, and the extrapolation set
    too if ``fit`` was given one; the model's record of which rows were which
    (``result_.split``) then sorts them.

    Parameters
    ----------
    model : NaluRegressor
        A fitted estimator.
    X : array-like or DataFrame of shape (n_samples, n_features), optional
        The inputs given to ``fit``; by default the rows the model kept.
    y : array-like of shape (n_samples,), optional
        The target given to ``fit``; pass it with ``X``.
    X_extrapolation, y_extrapolation : array-like, optional
        The extrapolation set given to ``fit``, if any; its rows are the extrapolation rows.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; save it with ``figure.savefig(path)``.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    InputError
        If the data are not those the model was fitted on (other rows, or an extrapolation
        set missing or extra), or none are passed to a model that keeps no rows.
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.
    """
    Figure = _figure_class()
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    if X is None and y is None and X_extrapolation is None and y_extrapolation is None:
        truth, predicted, labels, totals = _kept_rows(model)
    elif X is None or y is None:
        raise InputError("pass both X and y (the data given to fit), or neither.")
    else:
        truth, predicted, labels = _rows(model, X, y, X_extrapolation, y_extrapolation)
        totals = tuple(int(np.sum(labels == part)) for part in range(len(SPLIT_NAMES)))
    figure = Figure(figsize=(15, 4.8), layout="constrained")
    fit_axes, residual_axes, candidate_axes = figure.subplots(1, 3)
    target = model.target_name_ or "y"
    _draw_predictions(fit_axes, truth, predicted, labels, totals, target)
    _draw_residuals(residual_axes, truth, predicted, labels, target)
    _draw_candidates(candidate_axes, model)
    if fit_axes.get_xscale() == "log":
        residual_axes.set_xscale("log")
    figure.suptitle(_title(model, target), fontsize=13, wrap=True)
    return figure


def _predicted(model: NaluRegressor, X) -> np.ndarray:
    from .estimator import PoleWarning

    # The formula's poles on these rows already show in its losses.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoleWarning)
        return model.predict(X)


def _kept_rows(model: NaluRegressor) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    kept = getattr(model, "_kept_rows_", None)
    if kept is None:
        raise InputError(
            "this model keeps no rows to draw (it was loaded from a model file); pass the X "
            "and y given to fit, and its extrapolation set if it had one."
        )
    X = kept.X
    if hasattr(model, "feature_names_in_"):
        import pandas as pd

        X = pd.DataFrame(X, columns=model.feature_names_in_)
    return kept.y, _predicted(model, X), kept.labels, kept.totals


def _rows(
    model: NaluRegressor, X, y, X_extrapolation, y_extrapolation
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth, prediction and split label of every row fit saw, with checks that they are."""
    from sklearn.utils.validation import column_or_1d

    split = model.result_.split
    labels = split.labels
    n_given = int(np.sum(labels != EXTRAPOLATION)) if split.explicit else len(labels)
    if (X_extrapolation is None) != (y_extrapolation is None):
        raise InputError("pass both X_extrapolation and y_extrapolation, or neither.")
    if split.explicit and X_extrapolation is None:
        raise InputError(
            f"the model was checked on an extrapolation set of {len(labels) - n_given} rows "
            "given to fit; pass it too, as X_extrapolation and y_extrapolation."
        )
    if not split.explicit and X_extrapolation is not None:
        raise InputError(
            "the model held its extrapolation rows out of X, not from a set given to fit; "
            "pass X_extrapolation only when fit had one."
        )
    parts = [(X, y, "X", "y")]
    if X_extrapolation is not None:
        parts.append((X_extrapolation, y_extrapolation, "X_extrapolation", "y_extrapolation"))
    truth, predicted = [], []
    for inputs, target, x_name, y_name in parts:
        target = column_or_1d(np.asarray(target, dtype=np.float64))
        values = _predicted(model, inputs)
        if len(values) != len(target):
            raise InputError(f"{x_name} has {len(values)} rows but {y_name} has {len(target)}.")
        truth.append(target)
        predicted.append(values)
    if len(truth[0]) != n_given:
        raise InputError(
            f"X has {len(truth[0])} rows but the model was fitted on {n_given}; pass the X and y "
            "given to fit."
        )
    if len(np.concatenate(truth)) != len(labels):
        raise InputError(
            f"X_extrapolation has {len(truth[-1])} rows but the model was checked on "
            f"{len(labels) - n_given}; pass the extrapolation set given to fit."
        )
    _check_ranges(model, X, labels[:n_given])
    return np.concatenate(truth), np.concatenate(predicted), labels


def _check_ranges(model: NaluRegressor, X, labels: np.ndarray) -> None:
    """Refuse inputs whose fitted rows do not span the ranges the model was fitted on."""
    from sklearn.utils.validation import validate_data

    X = validate_data(model, X, dtype=np.float64, reset=False, ensure_all_finite=False)
    fitted = X[labels != EXTRAPOLATION]
    ranges = np.column_stack([fitted.min(axis=0), fitted.max(axis=0)])
    if not np.allclose(ranges, model.result_.split.train_ranges, rtol=1e-12, atol=0):
        raise InputError(
            "X is not the data the model was fitted on (the rows it trained on span other "
            "ranges); pass the X and y given to fit, in the same order."
        )


def _groups(labels: np.ndarray, *columns: np.ndarray):
    """Per split: its label, name, count of rows undefined in ``columns``, and the columns on
    its drawn rows (finite ones, at most ``MAX_POINTS``)."""
    rng = np.random.default_rng(0)
    finite = np.logical_and.reduce([np.isfinite(column) for column in columns])
    for part, name in enumerate(SPLIT_NAMES):
        rows = np.flatnonzero((labels == part) & finite)
        undefined = int(np.sum((labels == part) & ~finite))
        if len(rows) > MAX_POINTS:
            rows = np.sort(rng.choice(rows, size=MAX_POINTS, replace=False))
        yield part, name, undefined, [column[rows] for column in columns]


def _label(total: int, name: str, undefined: int, drawn: int) -> str:
    label = f"{name} ({total:,} rows"
    if drawn + undefined < total:
        label += f", {drawn:,} shown"
    if undefined:
        label += f", {undefined:,} undefined"
    return label + ")"


def _spans_decades(values: np.ndarray) -> bool:
    """Whether a log axis shows ``values`` better: all positive, over three decades."""
    values = values[np.isfinite(values)]
    return len(values) > 1 and values.min() > 0 and values.max() >= 1e3 * values.min()


def _draw_predictions(
    axes: Axes,
    truth: np.ndarray,
    predicted: np.ndarray,
    labels: np.ndarray,
    totals: tuple[int, ...],
    target: str,
) -> None:
    for part, name, undefined, (x, y) in _groups(labels, truth, predicted):
        axes.scatter(
            x,
            y,
            s=12,
            alpha=0.7,
            **STYLES[part],
            edgecolors="none",
            rasterized=True,
            label=_label(totals[part], name, undefined, len(x)),
            gid=name,
        )
    finite = np.concatenate([truth[np.isfinite(truth)], predicted[np.isfinite(predicted)]])
    if len(finite):
        low, high = finite.min(), finite.max()
        axes.plot([low, high], [low, high], color="0.3", lw=1, ls="--", label="prediction = truth")
    if _spans_decades(finite):
        axes.set_xscale("log")
        axes.set_yscale("log")
    axes.set_xlabel(f"{_plain(target)} (truth)")
    axes.set_ylabel(f"{_plain(target)} predicted by the formula")
    axes.set_title("(a) Prediction against truth")
    axes.legend(loc="best", fontsize=9)


def _draw_residuals(
    axes: Axes, truth: np.ndarray, predicted: np.ndarray, labels: np.ndarray, target: str
) -> None:
    finite = np.isfinite(truth) & np.isfinite(predicted)
    scale = float(np.sqrt(np.mean(truth[finite] ** 2))) if finite.any() else 0.0
    # A target that is zero everywhere has no scale to divide by.
    relative = scale > 0
    residual = (predicted - truth) / scale if relative else predicted - truth
    for part, name, _, (x, r) in _groups(labels, truth, residual):
        axes.scatter(
            x, r, s=12, alpha=0.7, edgecolors="none", rasterized=True, gid=name, **STYLES[part]
        )
    axes.axhline(0, color="0.3", lw=1, ls="--")
    name = _plain(target)
    axes.set_xlabel(f"{name} (truth)")
    axes.set_ylabel(
        f"relative residual: (predicted − {name}) / RMS({name})"
        if relative
        else f"residual: predicted − {name}"
    )
    axes.set_title(f"(b) Residuals, {'relative' if relative else 'absolute'}")


def _draw_candidates(axes: Axes, model: NaluRegressor) -> None:
    table = model.candidates_
    complexity = table["complexity"].to_numpy(dtype=float)
    loss = table["loss_validation"].to_numpy(dtype=float)
    axes.set_xlabel("complexity (size of the formula)")
    axes.set_ylabel("validation loss (relative RMSE)")
    axes.set_title("(c) Candidates (grey) and the chosen formula")
    shown = np.isfinite(loss)
    if not shown.any():
        _note(axes, "no validation rows: no validation loss to compare")
        return
    drawn = loss.copy()
    zero = shown & (loss == 0)
    positive = shown & (loss > 0)
    if positive.any():
        axes.set_yscale("log")
        axes.set_ylabel("validation loss (relative RMSE, log scale)")
        if zero.any():
            drawn[zero] = _zero_on_log_axis(axes, loss[positive].min())
    chosen = table.index.get_loc(model.chosen_)
    others = shown.copy()
    others[chosen] = False
    axes.scatter(complexity[others], drawn[others], s=30, color="0.45", gid="candidates")
    axes.set_xlim(complexity[shown].min() - 1, complexity[shown].max() + 1)
    if not shown[chosen]:
        _note(axes, "the chosen formula has no validation loss")
        return
    point = (complexity[chosen], drawn[chosen])
    axes.scatter(*point, s=220, marker="*", color="tab:red", zorder=3, gid="chosen")
    if zero.any() and positive.any():
        # Room below the zeros, which autoscaling would put on the edge.
        axes.set_ylim(bottom=drawn[zero].min() / 2)
    _label_point(axes, point, _chosen_label(model))


def _label_point(axes: Axes, point: tuple[float, float], text: str) -> None:
    """Write ``text`` next to ``point`` with an arrow, on the side towards the middle of the
    panel so that it stays inside it."""
    axes.autoscale_view()
    x, y = axes.transAxes.inverted().transform(axes.transData.transform(point))
    label = axes.annotate(
        text,
        point,
        xytext=(-20 if x > 0.5 else 20, -30 if y > 0.7 else 30),
        textcoords="offset points",
        ha="right" if x > 0.5 else "left",
        va="top" if y > 0.7 else "bottom",
        fontsize=10,
        bbox={"boxstyle": "round", "fc": "white", "ec": "tab:red", "alpha": 0.9},
        arrowprops={"arrowstyle": "->", "color": "tab:red"},
        zorder=4,
    )
    # The label must not shrink the panel it points into.
    label.set_in_layout(False)


def _note(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=axes.transAxes)


def _zero_on_log_axis(axes: Axes, smallest: float) -> float:
    """Where 0 is drawn on the log y axis of ``axes``: a decade below ``smallest``, labelled
    ``0`` and under a dotted break."""
    from matplotlib.ticker import LogFormatterSciNotation

    zero = 10 ** (np.floor(np.log10(smallest)) - 1)

    class ZeroLabel(LogFormatterSciNotation):
        def __call__(self, value, pos=None):
            return "0" if np.isclose(value, zero) else super().__call__(value, pos)

    axes.yaxis.set_major_formatter(ZeroLabel())
    axes.axhline(zero * 10**0.5, color="0.6", lw=0.8, ls=":")
    return zero


def _chosen_label(model: NaluRegressor) -> str:
    formula = _shown(model.formula_)
    if len(str(formula)) > LABEL_CHARS:
        return f"chosen: row {model.chosen_} of the candidates"
    return f"chosen: {_math(formula)}"


def _shown(expr):
    """``expr`` with its float constants rounded to ``DIGITS`` significant digits, for reading."""
    import sympy

    return expr.xreplace({f: sympy.Float(f, DIGITS) for f in expr.atoms(sympy.Float)})


def _verdict(model: NaluRegressor) -> str:
    check = model.extrapolation_
    rows = f"the {check['rows']:,} extrapolation rows"
    if model.exact_:
        return f"exact (holds on {rows} within {check['tolerance']:.3g})"
    if model.holds_:
        return f"not exact (holds on {rows} within the noise, constants estimated)"
    error = check.get("relative_rmse", float("nan"))
    return f"not exact (relative RMSE {error:.3g} on {rows})"


def _title(model: NaluRegressor, target: str) -> str:
    import sympy

    formula = _shown(model.formula_)
    equation = sympy.Eq(sympy.Symbol(target), formula, evaluate=False)
    return f"{_math(equation, f'{target} = {formula}')}: {_verdict(model)}"


def _math(expr, plain: str | None = None) -> str:
    """``expr`` as matplotlib mathtext, or as plain text (``plain``, by default ``str(expr)``)
    where mathtext cannot show SymPy's LaTeX."""
    from matplotlib.mathtext import MathTextParser

    from .export import to_latex

    text = f"${to_latex(expr)}$"
    try:
        MathTextParser("path").parse(text)
    except ValueError:
        return _plain(str(expr) if plain is None else plain)
    return text


def _plain(text: str) -> str:
    """``text`` shown as it is: a ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def figure_format(path: str | os.PathLike) -> str:
    """The image format a file name asks for, as ``savefig`` would infer it from the ending.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
        The ending without its dot, in lower case, e.g. ``"png"``.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    InputError
        If the name has no ending or one that matplotlib cannot write.
    """
    Figure = _figure_class()
    supported = Figure().canvas.get_supported_filetypes()
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in supported:
        endings = ", ".join(f".{name}" for name in sorted(supported))
        raise InputError(
            f"{path}: cannot tell the image format; end the name with one of {endings}."
        )
    return fmt


def save_figure(figure: Figure, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Write ``figure`` to ``path`` in the format its ending names, whole or not at all.

    The image is drawn in memory, then written to a temporary file in the same folder that
    replaces ``path`` (see :func:`nalu_sr.files.write_bytes_atomic`).

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : path-like
        Ending in ``.png``, ``.svg``, ``.pdf`` or another format matplotlib writes.
    overwrite : bool, default=False
        Replace an existing file; when false, an existing file raises ``FileExistsError``.

    Raises
    ------
    InputError
        If the ending names no format matplotlib writes.
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    fmt = figure_format(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    write_bytes_atomic(path, buffer.getvalue(), overwrite=overwrite)
