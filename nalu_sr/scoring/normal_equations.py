"""The least-squares solve shared by every backend, written so Numba can compile it unchanged.

Each backend accumulates the Gram matrix of ``[1, term_1, ..., term_T, y]`` over the training rows
and hands it to :func:`solve_normal_equations`. Running this one function (interpreted for NumPy
and torch, compiled for Numba) is what makes the backends' coefficients agree to the last bit
whenever their Gram matrices do.
"""

from __future__ import annotations

import math

import numpy as np

#: A column is dropped when the part of it not explained by the earlier kept columns has a squared
#: norm below this fraction of its own (the squared sine of its angle to their span): past that,
#: the normal equations would amplify rounding by more than 1e10.
DEPENDENCE_TOLERANCE = 1e-10


def solve_normal_equations(gram: np.ndarray, fit_intercept: bool, coefficients: np.ndarray) -> None:
    """Least-squares coefficients from the Gram matrix of the design columns and the target.

    Parameters
    ----------
    gram : ndarray of shape (k + 1, k + 1)
        Upper triangle (``i <= j``) of ``G = A^T A`` for ``A = [1, term_1, ..., term_{k-1}, y]``
        over the training rows; the lower triangle is not read.
    fit_intercept : bool
        When False the first column (the intercept) is left out and its coefficient is 0.
    coefficients : ndarray of shape (>= k,)
        ``coefficients[:k]`` receives ``c0, c1, ..., c_{k-1}``.

    Notes
    -----
    The system is scaled to a unit diagonal (each column divided by its norm), then eliminated
    column by column in their given order with the diagonal as pivot. On a Gram matrix, the pivot
    left for column ``j`` is the squared sine of the angle between column ``j`` and the span of
    the columns kept before it, so a column below :data:`DEPENDENCE_TOLERANCE` (a term that is
    constant like the intercept, a repeated term, a sum of earlier terms) is dropped with
    coefficient 0 and the earlier columns keep the fit. Columns that are zero on every training
    row get 0 too. The order makes the result deterministic; a symmetric positive semi-definite
    matrix needs no row exchanges for stability. A non-finite Gram matrix (a term that overflows
    or divides by zero on a training row) gives NaN coefficients.
    """
    k = gram.shape[0] - 1
    for i in range(k + 1):
        for j in range(i, k + 1):
            if not math.isfinite(gram[i, j]):
                for c in range(k):
                    coefficients[c] = math.nan
                if not fit_intercept:
                    coefficients[0] = 0.0
                return

    active = np.empty(k, dtype=np.bool_)
    scale = np.empty(k)
    for i in range(k):
        active[i] = gram[i, i] > 0.0 and (fit_intercept or i > 0)
        scale[i] = math.sqrt(gram[i, i]) if active[i] else 1.0

    system = np.empty((k, k))
    rhs = np.empty(k)
    for i in range(k):
        rhs[i] = gram[i, k] / scale[i]
        for j in range(i, k):
            value = gram[i, j] / scale[i] / scale[j]
            system[i, j] = value
            system[j, i] = value

    for j in range(k):
        if not active[j]:
            continue
        pivot = system[j, j]
        if not pivot > DEPENDENCE_TOLERANCE:
            active[j] = False
            continue
        for i in range(j + 1, k):
            if not active[i]:
                continue
            multiplier = system[i, j] / pivot
            for m in range(j + 1, k):
                system[i, m] -= multiplier * system[j, m]
            rhs[i] -= multiplier * rhs[j]

    solution = np.zeros(k)
    for j in range(k - 1, -1, -1):
        if not active[j]:
            continue
        total = rhs[j]
        for m in range(j + 1, k):
            if active[m]:
                total -= system[j, m] * solution[m]
        solution[j] = total / system[j, j]
    for j in range(k):
        coefficients[j] = solution[j] / scale[j]
