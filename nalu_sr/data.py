"""Splitting a table into train, validation and held-out extrapolation rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN, VALIDATION, EXTRAPOLATION = 0, 1, 2
SPLIT_NAMES = ("train", "validation", "extrapolation")


@dataclass(frozen=True)
class Split:
    """Which rows of a table are used for what.

    Attributes
    ----------
    labels : ndarray of int8, shape (n_rows,)
        0 = train, 1 = validation, 2 = extrapolation.
    train_ranges : ndarray, shape (n_features, 2)
        Per input, the smallest and largest value among the train and validation rows: the
        ranges the formula was fitted on.
    explicit : bool
        Whether the extrapolation rows were supplied by the user rather than held out.
    """

    labels: np.ndarray
    train_ranges: np.ndarray
    explicit: bool = False

    def rows(self, part: int) -> np.ndarray:
        return np.flatnonzero(self.labels == part)

    def counts(self) -> dict[str, int]:
        return {name: int((self.labels == i).sum()) for i, name in enumerate(SPLIT_NAMES)}


def outer_band_scores(X: np.ndarray) -> np.ndarray:
    """How far each row lies towards the edge of the observed ranges, in [0, 0.5].

    Each input is converted to its rank quantile in [0, 1]; a row's score is the largest distance
    of any of its quantiles from the median. Rows with the highest scores hold the extremes of
    at least one input.
    """
    n = X.shape[0]
    if n < 2:
        return np.zeros(n)
    order = np.argsort(X, axis=0, kind="stable")
    # The rank of each value: the inverse of the sorting permutation, scattered in O(n).
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n)[:, None], axis=0)
    quantiles = ranks / (n - 1)
    return np.abs(quantiles - 0.5).max(axis=1)


def split_rows(
    X: np.ndarray,
    *,
    holdout_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    X_extrapolation: np.ndarray | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, Split]:
    """Hold out the outer band of the input ranges, then split the interior at random.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Inputs.
    holdout_fraction : float
        Share of rows held out for the extrapolation check (the rows with the most extreme
        inputs). Ignored when ``X_extrapolation`` is given.
    validation_fraction : float
        Share of the remaining (interior) rows used for validation.
    X_extrapolation : ndarray of shape (n_extra, n_features), optional
        An explicit extrapolation set, appended after ``X``; then nothing is held out of ``X``.
    random_state : int, Generator or None
        Seed of the train / validation split.

    Returns
    -------
    X_all : ndarray
        ``X``, with ``X_extrapolation`` appended if given.
    split : Split
    """
    if not 0 <= holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}.")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}.")
    rng = np.random.default_rng(random_state)
    n = X.shape[0]
    labels = np.zeros(n, dtype=np.int8)
    explicit = X_extrapolation is not None
    if explicit:
        X_all = np.vstack([X, X_extrapolation])
        labels = np.concatenate([labels, np.full(len(X_extrapolation), EXTRAPOLATION, np.int8)])
    else:
        X_all = X
        n_holdout = int(round(holdout_fraction * n))
        if n_holdout:
            order = np.argsort(-outer_band_scores(X), kind="stable")
            labels[order[:n_holdout]] = EXTRAPOLATION
    interior = np.flatnonzero(labels[:n] == TRAIN)
    n_validation = int(round(validation_fraction * len(interior)))
    if n_validation:
        labels[rng.choice(interior, size=n_validation, replace=False)] = VALIDATION
    fitted = X[labels[:n] != EXTRAPOLATION]
    train_ranges = np.column_stack([fitted.min(axis=0), fitted.max(axis=0)])
    return X_all, Split(labels=labels, train_ranges=train_ranges, explicit=explicit)
