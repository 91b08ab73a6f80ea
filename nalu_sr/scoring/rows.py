"""The row table every backend reads: features and target regrouped by split, column by column.

Rows are reordered so that each split is one contiguous range (train, then validation, then
extrapolation, each keeping its original row order) and features are stored feature-major, so a
feature's values over a split are one contiguous run. Sums over rows follow this order (and
:func:`lane_sum`) in the NumPy and Numba backends, which is what lets them agree to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import EXTRAPOLATION, SPLIT_NAMES, TRAIN, VALIDATION

__all__ = [
    "EXTRAPOLATION",
    "LANES",
    "SPLITS",
    "TRAIN",
    "VALIDATION",
    "SplitRows",
    "group_rows",
    "lane_padded",
    "lane_sum",
]

#: Names of the splits, in the order of the last axis of every score array.
SPLITS = SPLIT_NAMES
#: Independent partial sums kept by every sum over rows (see :func:`lane_sum`).
LANES = 64


@dataclass(frozen=True)
class SplitRows:
    """Features and target regrouped by split.

    Attributes
    ----------
    features : ndarray of float64, shape (n_features, n_rows), C-contiguous
        Feature-major; split ``s`` is ``features[:, offsets[s]:offsets[s + 1]]``.
    y : ndarray of float64, shape (n_rows,)
    offsets : ndarray of int64, shape (4,)
        Start of each split and the end of the last.
    y_square_sum : ndarray of float64, shape (3,)
        ``sum(w * y ** 2)`` over each split (``w`` the row weights, 1 without them), added up
        by :func:`lane_sum`.
    weights : ndarray of float64, shape (n_rows,), or None
        Each row's weight, in the order of ``y``; None weighs every row 1.
    totals : ndarray of float64, shape (3,)
        The weight of each split: its row count without weights.
    """

    features: np.ndarray
    y: np.ndarray
    offsets: np.ndarray
    y_square_sum: np.ndarray
    weights: np.ndarray | None = None
    totals: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.totals is None:
            object.__setattr__(self, "totals", self.counts.astype(np.float64))

    @property
    def counts(self) -> np.ndarray:
        """Rows in each split, shape (3,)."""
        return np.diff(self.offsets)

    def split(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """``(features, y)`` of split ``s``: shapes (n_features, n_s) and (n_s,)."""
        lo, hi = self.offsets[s], self.offsets[s + 1]
        return self.features[:, lo:hi], self.y[lo:hi]

    def split_weights(self, s: int) -> np.ndarray | None:
        """The row weights of split ``s``, shape (n_s,), or None without weights."""
        if self.weights is None:
            return None
        return self.weights[self.offsets[s] : self.offsets[s + 1]]


def group_rows(
    features: np.ndarray, y: np.ndarray, split: np.ndarray, weights: np.ndarray | None = None
) -> SplitRows:
    """Check the row table and regroup it by split.

    Parameters
    ----------
    features : array-like of shape (n_rows, n_features)
        Converted to float64; may hold non-finite values (a reciprocal of 0).
    y : array-like of shape (n_rows,)
        Must be finite.
    split : array-like of int, shape (n_rows,)
        0 (train), 1 (validation) or 2 (extrapolation) for each row.
    weights : array-like of shape (n_rows,), optional
        Finite, non-negative row weights: fits and errors are weighted least squares and
        weighted RMSEs, a row of weight 2 counting as that row twice. Rows of weight 0 are
        left out.
    """
    features = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    split = np.asarray(split)
    if features.ndim != 2:
        raise ValueError(
            f"features must be a 2-D array (n_rows, n_features); got shape {features.shape}."
        )
    n_rows = features.shape[0]
    if y.shape != (n_rows,) or split.shape != (n_rows,):
        raise ValueError(
            f"y and split must be 1-D with one value per row of features ({n_rows}); "
            f"got shapes {y.shape} and {split.shape}."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values; drop or fix those rows first.")
    if not np.issubdtype(split.dtype, np.integer) or np.any((split < 0) | (split > 2)):
        raise ValueError(
            "split must hold the integers 0 (train), 1 (validation) or 2 (extrapolation); "
            f"got values {np.unique(split)[:10].tolist()}."
        )
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (n_rows,) or not np.all(np.isfinite(weights) & (weights >= 0)):
            raise ValueError(
                f"weights must be one finite, non-negative number per row ({n_rows}); "
                f"got shape {weights.shape}."
            )
        if not np.all(weights > 0):
            kept = weights > 0
            features, y, split, weights = features[kept], y[kept], split[kept], weights[kept]
    order = np.argsort(split, kind="stable")
    counts = np.bincount(split.astype(np.int64), minlength=3)
    offsets = np.zeros(4, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    y_sorted = np.ascontiguousarray(y[order])
    squares = y_sorted * y_sorted
    totals = None
    if weights is not None:
        weights = np.ascontiguousarray(weights[order])
        squares *= weights
        totals = np.array([lane_sum(part) for part in np.split(weights, offsets[1:3])])
    y_square_sum = np.array(
        [lane_sum(part) for part in np.split(squares, offsets[1:3])], dtype=np.float64
    )
    return SplitRows(
        features=np.ascontiguousarray(features[order].T),
        y=y_sorted,
        offsets=offsets,
        y_square_sum=y_square_sum,
        weights=weights,
        totals=totals,
    )


def lane_sum(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Sum along ``axis`` in the order the compiled kernel adds in.

    Element ``i`` goes to lane ``i % LANES``; each lane is summed first to last, then the lanes
    are summed in order. Independent lanes let the kernel add with SIMD instructions (one running
    sum is a chain of dependent additions) and are more accurate than one running sum. NumPy
    adds pairwise only along the fast axis of an array, so reducing the lanes' (slow) axis runs
    first to last, as a loop does.
    """
    values = np.moveaxis(values, axis, -1)
    n = values.shape[-1]
    if lane_padded(n) != n:
        padded = np.zeros((*values.shape[:-1], lane_padded(n)))
        padded[..., :n] = values
        values = padded
    lanes = values.reshape(*values.shape[:-1], -1, LANES)
    return np.add.accumulate(np.add.reduce(lanes, axis=-2), axis=-1)[..., -1]


def lane_padded(n: int) -> int:
    """``n`` rounded up to a whole number of lanes: zeros past ``n`` leave a lane sum unchanged."""
    return -(-n // LANES) * LANES
