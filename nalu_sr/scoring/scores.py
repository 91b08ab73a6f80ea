"""What scoring returns, and the arithmetic that turns residual sums into it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rows import SPLITS, SplitRows, lane_sum


@dataclass(frozen=True)
class Scores:
    """Fitted coefficients and error measures of each candidate on each split.

    With ``r = y - prediction`` over the rows of one split and ``scale = sqrt(mean(y ** 2))`` on
    that split:

    - ``rmse = sqrt(mean(r ** 2))``
    - ``relative_rmse = rmse / scale``
    - ``max_relative_error = max(|r|) / scale``

    With row weights ``w`` the means are weighted, ``sum(w * r ** 2) / sum(w)``, and rows of
    weight 0 take no part. A split with no rows gives NaN. A candidate whose prediction is not
    finite on some row of a split (a division by zero, an overflow, NaN coefficients) gives
    +inf on that split. When ``scale`` is 0 (``y`` is identically 0 there) the relative
    measures are 0 for a zero residual and +inf otherwise.

    Attributes
    ----------
    coefficients : ndarray of float64, shape (n_candidates, max_terms + 1)
        ``c0`` (intercept) then one coefficient per term, NaN past each candidate's terms.
        A term whose coefficient is 0 takes no part in the prediction.
    rmse, relative_rmse, max_relative_error : ndarray of float64, shape (n_candidates, 3)
        Columns in the order of :data:`SPLITS`: train, validation, extrapolation.
    counts : ndarray of int64, shape (3,)
        Rows in each split.
    backend : str
        The backend that computed the scores.
    """

    coefficients: np.ndarray
    rmse: np.ndarray
    relative_rmse: np.ndarray
    max_relative_error: np.ndarray
    counts: np.ndarray
    backend: str

    splits = SPLITS


def scores_from_sums(
    coefficients: np.ndarray,
    square_sum: np.ndarray,
    max_abs: np.ndarray,
    rows: SplitRows,
    backend: str,
) -> Scores:
    """Assemble :class:`Scores` from per-split residual sums of squares and largest residuals.

    ``square_sum`` and ``max_abs`` have shape (n_candidates, 3). A non-finite ``square_sum`` marks
    a non-finite prediction (a NaN or infinite residual makes the sum so, and a finite one whose
    square overflows is as useless), so every measure of that cell becomes +inf.
    """
    measures = _measures(square_sum, max_abs, rows.y_square_sum, rows.totals)
    rmse, relative_rmse, max_relative = measures
    return Scores(
        coefficients=coefficients,
        rmse=rmse,
        relative_rmse=relative_rmse,
        max_relative_error=max_relative,
        counts=rows.counts,
        backend=backend,
    )


def split_errors(
    prediction: np.ndarray, y: np.ndarray, split: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RMSE, relative RMSE and largest relative error of one prediction on each split.

    The measures of :class:`Scores`, by the same rules and with the same sums over rows
    (:func:`~nalu_sr.scoring.rows.lane_sum` in row order within each split): NaN on a split
    with no rows, +inf where the prediction is not finite on some row of the split, and, on a
    split where ``y`` is identically 0, relative measures of 0 for an exact prediction and
    +inf for any other.

    Parameters
    ----------
    prediction, y : ndarray of shape (n_rows,)
        The formula's values and the (finite) target.
    split : ndarray of int, shape (n_rows,)
        0 (train), 1 (validation) or 2 (extrapolation) per row.
    weights : ndarray of shape (n_rows,), optional
        Row weights, as in :func:`~nalu_sr.scoring.group_rows` (rows of weight 0 left out).

    Returns
    -------
    rmse, relative_rmse, max_relative_error : ndarray of float64, shape (3,)
        In the order of :data:`SPLITS`.
    """
    y = np.asarray(y, dtype=np.float64)
    if weights is not None and not np.all(weights > 0):
        kept = weights > 0  # rows of weight 0 take no part, as in group_rows
        prediction, y, split, weights = prediction[kept], y[kept], split[kept], weights[kept]
    with np.errstate(all="ignore"):
        residual = np.abs(y - prediction)
        parts = [split == s for s in range(len(SPLITS))]
        squares, y_squares = residual**2, y**2
        if weights is None:
            totals = np.array([np.count_nonzero(rows) for rows in parts], dtype=np.float64)
        else:
            # Multiplied after squaring, as the backends do, so the sums agree with theirs.
            squares, y_squares = squares * weights, y_squares * weights
            totals = np.array([lane_sum(weights[rows]) for rows in parts])
        square_sum = np.array([lane_sum(squares[rows]) for rows in parts])
        y_square_sum = np.array([lane_sum(y_squares[rows]) for rows in parts])
    max_abs = np.array([residual[rows].max(initial=0.0) for rows in parts])
    rmse, relative, worst = _measures(square_sum[None, :], max_abs[None, :], y_square_sum, totals)
    return rmse[0], relative[0], worst[0]


def _measures(
    square_sum: np.ndarray, max_abs: np.ndarray, y_square_sum: np.ndarray, totals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RMSE, relative RMSE and largest relative error, shape (n_candidates, 3), from sums
    over each split and its weight (its row count without weights)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rmse = np.sqrt(square_sum / totals)
        scale = np.sqrt(y_square_sum / totals)
        relative_rmse = _ratio(rmse, scale)
        max_relative = _ratio(max_abs, scale)
    broken = ~np.isfinite(square_sum)
    for measure in (rmse, relative_rmse, max_relative):
        measure[broken] = np.inf
        measure[:, totals == 0] = np.nan
    return rmse, relative_rmse, max_relative


def _ratio(error: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``error / scale``, with 0/0 read as 0: a target that is all zeros, matched exactly."""
    return np.where(error == 0, 0.0, error / scale)
