"""Integer powers of factor values, computed by the NumPy and Numba backends in the same order
of operations (repeated products, then one division for a negative exponent), so that they
agree to the last bit; the torch backend uses ``Tensor.pow`` and agrees to rounding."""

from __future__ import annotations

import numpy as np


def raised(values: np.ndarray, exponent: int) -> np.ndarray:
    """``values ** exponent`` for a non-zero integer ``exponent``, as a new array.

    Examples
    --------
    >>> raised(np.array([2.0, -3.0]), -2).tolist()
    [0.25, 0.1111111111111111]
    """
    result = np.array(values, dtype=np.float64, copy=True)
    for _ in range(abs(int(exponent)) - 1):
        result *= values
    if exponent < 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            np.divide(1.0, result, out=result)
    return result
