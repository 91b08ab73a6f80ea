"""What scoring returns, and the arithmetic that turns residual sums into it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rows import SPLITS, SplitRows


@dataclass(frozen=True)
class Scores:
    """Fitted coefficients and error measures of each candidate on each split.

    With ``r = y - prediction`` over the rows of one split and ``scale = sqrt(mean(y ** 2))`` on
    that split:

    - ``rmse = sqrt(mean(r ** 2))``
    - ``relative_rmse = rmse / scale``
    - ``max_relative_error = max(|r|) / scale``

    A split with no rows gives NaN. A candidate whose prediction is not finite on some row of a
    split (a division by zero, an overflow, NaN coefficients) gives +inf on that split. When
    ``scale`` is 0 (``y`` is identically 0 there) the relative measures are 0 for a zero residual
    and +inf otherwise.

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
    counts = rows.counts
    with np.errstate(divide="ignore", invalid="ignore"):
        rmse = np.sqrt(square_sum / counts)
        scale = np.sqrt(rows.y_square_sum / counts)
        relative_rmse = _ratio(rmse, scale)
        max_relative = _ratio(max_abs, scale)
    broken = ~np.isfinite(square_sum)
    for measure in (rmse, relative_rmse, max_relative):
        measure[broken] = np.inf
        measure[:, counts == 0] = np.nan
    return Scores(
        coefficients=coefficients,
        rmse=rmse,
        relative_rmse=relative_rmse,
        max_relative_error=max_relative,
        counts=counts,
        backend=backend,
    )


def _ratio(error: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``error / scale``, with 0/0 read as 0: a target that is all zeros, matched exactly."""
    return np.where(error == 0, 0.0, error / scale)
