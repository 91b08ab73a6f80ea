"""Sample weights as scikit-learn means them: a row of weight 2 counts as that row twice.

Rows of weight 0 are left out before anything else, and repeated rows (the same inputs and
the same target) are merged into one row that carries the sum of their weights. The search
then sees the same table whether a row comes twice or once with weight 2, so the split into
train, validation and held-out rows, the training subsample, and every fit and error come out
the same. Rows that weigh differently are put in one order (sorted), whatever order they came
in; rows that all weigh the same keep their order and are searched as without weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .validation import check_sample_weight

__all__ = ["merge_weighted_rows"]


def merge_weighted_rows(
    X: np.ndarray, y: np.ndarray, sample_weight=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The rows to search and their weights: weight-0 rows left out, repeated rows merged.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Finite inputs.
    y : ndarray of shape (n_rows,)
        Finite target.
    sample_weight : array-like of shape (n_rows,), number or None
        Non-negative weights (see :func:`~nalu_sr.validation.check_sample_weight`).

    Returns
    -------
    X, y : ndarray
        The rows with a positive weight, each distinct row once. Rows that weigh differently
        are sorted (by the first column, then the next, ..., then the target), so that the
        order they came in does not matter; rows that weigh the same keep their order (the
        first of each repeated row's places).
    weights : ndarray of float64, shape (n_distinct,), or None
        Each row's weight, the sum over the rows merged into it; None when every row weighs
        the same, which is the same as no weights.

    Raises
    ------
    WeightError
        If the weights are invalid (see :func:`~nalu_sr.validation.check_sample_weight`).

    Examples
    --------
    >>> X = np.array([[2.0], [1.0], [2.0], [3.0], [5.0], [4.0]])
    >>> X, y, weights = merge_weighted_rows(X, 10 * X[:, 0], [1, 1, 1, 0, 3, 0.5])
    >>> X[:, 0].tolist(), y.tolist(), weights.tolist()
    ([1.0, 2.0, 4.0, 5.0], [10.0, 20.0, 40.0, 50.0], [1.0, 2.0, 0.5, 3.0])
    """
    weights = check_sample_weight(sample_weight, X.shape[0])
    if weights is not None and not np.all(weights > 0):
        keep = weights > 0
        X, y, weights = X[keep], y[keep], weights[keep]
    # Adding 0.0 turns -0.0 into 0.0: the same number must not make two rows.
    table = np.column_stack([X, y]) + 0.0
    if not _all_equal(weights) or _has_repeats(table):
        table, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
        weights = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(table))
        if _all_equal(weights):
            # Equal weights are no weights: the rows keep their order, as they would then.
            kept = np.sort(first)
            X, y = X[kept], y[kept]
        else:
            X, y = table[:, :-1], table[:, -1]
    return X, y, None if _all_equal(weights) else weights.astype(np.float64)


def _all_equal(weights: np.ndarray | None) -> bool:
    return weights is None or bool(np.all(weights == weights[0]))


def _has_repeats(table: np.ndarray) -> bool:
    """Whether some row of ``table`` occurs twice; hashing the rows first keeps this to a
    fraction of a second for a million rows."""
    frame = pd.DataFrame(table)
    hashes = np.sort(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    if not np.any(hashes[1:] == hashes[:-1]):
        return False
    return bool(frame.duplicated().any())  # equal hashes may still be different rows
