"""Target transforms: the forms of the target a structure may model, and the way back.

A structure ``F`` trained on a transform ``t(y)`` stands for the formula ``y = t^{-1}(F)``.
``y`` and ``1/y`` keep the formula arithmetic (``1/y = 1/R1 + 1/R2``); the others reach
beyond it with the same units: ``y**2 = a**2 + b**2`` gives ``sqrt(a**2 + b**2)``,
``log(y) = log(a) - b/c`` gives ``a*exp(-b/c)``, the power unit on ``y**2`` gives half-integer
powers such as ``x**(3/2)``, ``exp(y) = a + b`` gives ``log(a + b)``. A transform is offered
only where it is defined on every fitted row (the others need a positive target, or one of
moderate span, see :func:`offered`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from .space import divides_safely


@dataclass(frozen=True)
class Transform:
    """One form of the target.

    Attributes
    ----------
    name : str
        As shown in the candidates table (``"y"``, ``"log(y)"``).
    forward : callable
        ``t(y)`` on an array.
    inverse : callable
        ``t^{-1}(F)`` on an array: the prediction of ``y`` from the structure's values.
    formula : callable
        ``t^{-1}(F)`` on a SymPy expression.
    defined : callable
        Whether the transform is offered for a target with these fitted values.
    arithmetic : bool
        Whether the formula for ``y`` stays a ratio of polynomials (``y``, ``1/y``); the other
        transforms' jobs are tried after every arithmetic stage (see
        :meth:`~nalu_sr.search.stacks.Architecture.stage_key`).
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    formula: Callable[[sympy.Expr], sympy.Expr]
    defined: Callable[[np.ndarray], bool]
    arithmetic: bool = False


def _positive(values: np.ndarray) -> bool:
    # Away from zero too, as for a division: log and roots are steep near 0.
    return bool(np.all(values > 0)) and divides_safely(values)


#: Smallest ratio of a target's least to its largest value for ``log(y)``: a bell curve's
#: tails fall by many decades, which its logarithm (a sum of squares) takes in its stride;
#: past this, values are the underflow of a float rather than data.
LOG_MIN_RATIO = 1e-30


def _log_defined(values: np.ndarray) -> bool:
    finite = bool(np.all(np.isfinite(values))) and values.size > 0
    return finite and bool(np.all(values > 0)) and values.min() >= LOG_MIN_RATIO * values.max()


#: Widest span of a target that ``exp(y)`` is offered for: the exponential of a wider one
#: spans more than a factor e**10, where a structure's constants would be fitted mostly to
#: its largest rows. A logarithm of a sum or ratio, ``log(a + b)``, ``log(a/b)``, stays well
#: inside.
EXP_SPAN = 10.0


def _moderate(values: np.ndarray) -> bool:
    finite = bool(np.all(np.isfinite(values))) and values.size > 0
    return finite and float(np.ptp(values)) <= EXP_SPAN and float(np.max(values)) <= EXP_SPAN


def _reciprocal(values):
    return 1 / values


def _square(values):
    return values**2


def _root(values):
    return np.sqrt(values) if isinstance(values, np.ndarray) else sympy.sqrt(values)


def _reciprocal_square(values):
    return 1 / values**2


def _reciprocal_root(values):
    return 1 / _root(values)


def _exp(values):
    return np.exp(values) if isinstance(values, np.ndarray) else sympy.exp(values)


def _log(values):
    return np.log(values) if isinstance(values, np.ndarray) else sympy.log(values)


def _identity(values):
    return values


#: The logarithm's name: a constant term fitted on it is the logarithm of a factor of ``y``.
LOG_TARGET = "log(y)"

#: Every transform, in the order the search tries them.
TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("y", _identity, _identity, _identity, lambda y: True, arithmetic=True),
        Transform("1/y", _reciprocal, _reciprocal, _reciprocal, divides_safely, arithmetic=True),
        Transform("y**2", _square, _root, _root, _positive),
        Transform("1/y**2", _reciprocal_square, _reciprocal_root, _reciprocal_root, _positive),
        Transform(LOG_TARGET, _log, _exp, _exp, _log_defined),
        Transform("sqrt(y)", _root, _square, _square, _positive),
        # y = log(a + b), log(a/b) + c: exp(y) = a + b is arithmetic.
        Transform("exp(y)", _exp, _log, _log, _moderate),
    )
}


def offered(y: np.ndarray) -> list[str]:
    """The transforms defined on the fitted target values ``y``, in search order."""
    return [name for name, t in TRANSFORMS.items() if t.defined(y)]


def apply_transform(values: np.ndarray, transform: str) -> np.ndarray:
    """The target as a structure trained on ``transform`` models it; non-finite where the
    transform is undefined."""
    with np.errstate(all="ignore"):
        return TRANSFORMS[transform].forward(np.asarray(values, dtype=float))


def invert_values(values: np.ndarray, transform: str) -> np.ndarray:
    """The prediction of ``y`` from a structure's values on ``transform``."""
    with np.errstate(all="ignore"):
        return TRANSFORMS[transform].inverse(np.asarray(values, dtype=float))


def invert_formula(expr: sympy.Expr, transform: str) -> sympy.Expr:
    """The formula for ``y`` from a structure's formula on ``transform``."""
    return TRANSFORMS[transform].formula(expr)
