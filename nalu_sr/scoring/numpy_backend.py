"""Reference backend: a Python loop over candidates, NumPy over rows.

The arithmetic mirrors the Numba kernel operation for operation (factor sums start from 0, terms
from 1, sums over rows go through :func:`~nalu_sr.scoring.rows.lane_sum`), so the two agree to
rounding, in practice bit for bit.
"""

from __future__ import annotations

import numpy as np

from .normal_equations import solve_normal_equations
from .packing import PackedCandidates
from .powers import raised
from .rows import TRAIN, SplitRows, lane_padded, lane_sum


def residual_sums(
    packed: PackedCandidates,
    rows: SplitRows,
    coefficients: np.ndarray,
    fit: bool,
    fit_intercept: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-split residual sum of squares (weighted by the rows' weights, when ``rows`` has
    them) and largest absolute residual of every candidate.

    Parameters
    ----------
    packed : PackedCandidates
    rows : SplitRows
    coefficients : ndarray of float64, shape (n_candidates, max_terms + 1)
        Filled in place with the least-squares fit when ``fit``, read otherwise.
    fit : bool
    fit_intercept : ndarray of bool, shape (n_candidates,)

    Returns
    -------
    square_sum, max_abs : ndarray of float64, shape (n_candidates, 3)
    """
    # Overflow and NaN are expected (a reciprocal of 0) and reported as inf scores instead.
    with np.errstate(all="ignore"):
        return _residual_sums(packed, rows, coefficients, fit, fit_intercept)


def _residual_sums(packed, rows, coefficients, fit, fit_intercept):
    n = packed.n_candidates
    square_sum = np.zeros((n, 3))
    max_abs = np.zeros((n, 3))
    split_data = [rows.split(s) for s in range(3)]
    split_weights = [rows.split_weights(s) for s in range(3)]
    for c in range(n):
        terms = range(packed.term_offsets[c], packed.term_offsets[c + 1])
        coef = coefficients[c]
        train_columns = None
        if fit:
            features, y = split_data[TRAIN]
            train_columns = [term_values(packed, t, features) for t in terms]
            gram = gram_matrix(train_columns, y, split_weights[TRAIN])
            solve_normal_equations(gram, bool(fit_intercept[c]), coef)
        for s, (features, y) in enumerate(split_data):
            if y.size == 0:
                continue
            prediction = np.full(y.size, coef[0])
            for i, t in enumerate(terms, start=1):
                if coef[i] != 0.0:
                    if s == TRAIN and train_columns is not None:
                        values = train_columns[i - 1]
                    else:
                        values = term_values(packed, t, features)
                    prediction += coef[i] * values
            residual = y - prediction
            squares = np.zeros(lane_padded(y.size))
            np.multiply(residual, residual, out=squares[: y.size])
            if split_weights[s] is not None:
                squares[: y.size] *= split_weights[s]
            square_sum[c, s] = lane_sum(squares)
            max_abs[c, s] = np.max(np.abs(residual))
    return square_sum, max_abs


def term_values(packed: PackedCandidates, t: int, features: np.ndarray) -> np.ndarray:
    """Values of term ``t`` on the rows of a feature-major table ``(n_features, n_rows)``."""
    value = None
    for f in range(packed.factor_offsets[t], packed.factor_offsets[t + 1]):
        entries = range(packed.entry_offsets[f], packed.entry_offsets[f + 1])
        factor = np.zeros(features.shape[1]) if not entries else None
        for e in entries:
            column = features[packed.feature[e]]
            if e == entries.start:
                factor = column.copy() if packed.sign[e] > 0 else -column
            elif packed.sign[e] > 0:
                factor += column
            else:
                factor -= column
        if packed.power[f] != 1:
            factor = raised(factor, int(packed.power[f]))
        value = factor if value is None else np.multiply(value, factor, out=value)
    return np.ones(features.shape[1]) if value is None else value


def gram_matrix(
    columns: list[np.ndarray], y: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Upper triangle of the Gram matrix of ``[1, *columns, y]``, added up by ``lane_sum``;
    with row ``weights``, each product is multiplied by its row's weight."""
    design = [np.ones(y.size), *columns, y]
    k = len(design)
    pairs = [(i, j) for i in range(k) for j in range(i, k)]
    gram = np.zeros((k, k))
    if y.size:
        products = np.zeros((len(pairs), lane_padded(y.size)))
        for p, (i, j) in enumerate(pairs):
            np.multiply(design[i], design[j], out=products[p, : y.size])
        if weights is not None:
            products[:, : y.size] *= weights
        sums = lane_sum(products, axis=1)
        for p, (i, j) in enumerate(pairs):
            gram[i, j] = sums[p]
    return gram
