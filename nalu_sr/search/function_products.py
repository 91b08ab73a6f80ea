"""Products of functions found in closed form: ``y = C * m * f(r*v)**k * exp(a*u)``, with
``m`` a monomial of the inputs in powers of 1/2, screened on ``log|y|``.

The listed screen of :mod:`~nalu_sr.search.arguments` fits ``y`` over ``[m, m*F]`` for
monomials ``m`` of a few inputs, which holds ``A + B*F`` but no product of two functions
(``A*exp(-b*t)*cos(w*t)``, a damped oscillation) and no monomial of more inputs than it lists
(``n*R*T*log(V2/V1)``). On the logarithm of the target's magnitude such products are sums:

.. math::
    \\log|y| = \\log|C| + \\sum_i e_i \\log|x_i| + k \\log|f(r v)| + a u,

linear in the exponents ``e``, the power ``k`` and the rate ``a``, for each function column
``f(r*v)`` of the listed library and each argument ``u`` of it. With the monomial's columns
projected out once, every (column, argument) pair is a two-column least-squares fit whose
residual comes from five inner products, so all pairs are scored together. The rows are
weighed by ``y**2``: an error ``e`` of ``log|y|`` is an error of about ``y*e`` in ``y``, and
near a zero of the target the logarithm holds nothing but noise.

The best few pairs whose power ``k`` is a small whole number become
:class:`FunctionProduct` s; the search fits their rates on ``y`` itself (see
:meth:`~nalu_sr.search.runner.Scoring.multiply`), names them by the rule every constant
follows, and scores the product as one term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from ..structure import Term
from .arguments import MIN_SPREAD, OFFERED, RATES, _columns, argument_terms
from .candidates import MISFIT, term_values
from .compositions import COMPOSED_FUNCTIONS, FittedRate, fit_rate, misfit_for
from .space import EXP_LIMIT, FeatureTable
from .sparse_ratios import finite_rows

#: Functions whose logarithm is a column of the screen (the exponential is the argument
#: ``u`` itself).
FUNCTIONS = tuple(f for f in RATES if f != "exp")

#: Powers a function may have in the product (``sin(theta)**2``, ``1/sin(theta)``).
POWERS = (1, 2, -1, -2)

#: A fitted power or exponent counts as its nearest allowed value within this distance.
SNAP_DISTANCE = 0.1

#: Single columns, and pairs, that the screen looks at more closely (the lowest residuals):
#: the rest could only be offered after these.
SCREENED = 64

#: Columns that fit best alone, each of which is screened beside every argument of the
#: exponential.
PAIRED_COLUMNS = 256

#: Most rows the screen is fitted on (the first ones; the fit is exact on any of them).
MAX_ROWS = 2000

#: Most inputs in an argument ``u`` of the exponential (the pairs with every function
#: column grow with the product of both libraries).
MAX_EXP_INPUTS = 3

#: Relative residual (of the weighted sum of squares of ``log|y|`` about the monomial fit)
#: below which the monomial alone holds the target: nothing is left for a function.
MONOMIAL_HOLDS = 1e-12

#: The screen's floor of relative residuals: below it, fits are exact to the precision of
#: the projections, and tie. One more column (the exponential) must cut the residual by
#: more than the price of a parameter, ``rows**(2/rows)`` (see
#: :func:`~nalu_sr.search.arguments._price`).
FLOOR = 1e-12


class FunctionProduct(NamedTuple):
    """``m * f(rate*argument)**power * exp(exp_rate*exp_argument)``, up to a constant factor.

    ``exponents`` are ``(input column, exponent)`` pairs of the monomial ``m``, each
    exponent a multiple of 1/2; ``function`` is ``None`` for the monomial alone, and
    ``exp_argument`` where there is no exponential.
    The rates are where the search's fit starts (see
    :func:`~nalu_sr.search.compositions.fit_rate`).
    """

    exponents: tuple[tuple[int, float], ...]
    function: str | None
    argument: Term
    rate: float
    power: int
    exp_argument: Term | None
    exp_rate: float


def _monomial(exponents: tuple[tuple[int, float], ...]) -> FunctionProduct:
    """The monomial alone: no function, no exponential."""
    return FunctionProduct(exponents, None, (), 0.0, 0, None, 0.0)


def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` smallest finite ``values``, in no particular order."""
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) > count:
        finite = finite[np.argpartition(values[finite], count)[:count]]
    return finite


def _snap(value: float, step: float) -> float | None:
    """``value`` rounded to a multiple of ``step``, or ``None`` when it is not near one."""
    rounded = round(value / step) * step
    return rounded if abs(value - rounded) <= SNAP_DISTANCE else None


@threadpool_limits.wrap(limits=1)
def function_products(
    table: FeatureTable,
    columns: Sequence[int],
    target: np.ndarray,
    transform: str = "y",
    weights: np.ndarray | None = None,
) -> list[FunctionProduct]:
    """The :data:`~nalu_sr.search.arguments.OFFERED` products that fit ``log|target|`` best
    (see the module's description), simplest first among equal fits. Only on ``y``: other
    transforms of the target have stages of their own."""
    if transform != "y":
        return []
    inputs = list(table.inputs)
    values = table.values
    rows = finite_rows(target, values[:, inputs]) & (target != 0)
    if weights is not None:
        rows &= weights > 0
    rows = np.flatnonzero(rows)[:MAX_ROWS]
    if len(rows) < 4 * (len(inputs) + 3):
        return []
    # Inputs that are zero on some row cannot be powers of the monomial (log|0|).
    logged = [i for i in inputs if np.all(values[rows, i] != 0)]
    t = target[rows]
    scale = np.abs(t) / math.sqrt(float(np.mean(t**2)))
    if weights is not None:
        scale = scale * np.sqrt(weights[rows] / np.mean(weights[rows]))
    base = np.column_stack([np.ones(len(rows)), *(np.log(np.abs(values[rows, i])) for i in logged)])
    basis, _ = np.linalg.qr(base * scale[:, None])

    def projected(block: np.ndarray) -> np.ndarray:
        block = block * scale[:, None]
        return block - basis @ (basis.T @ block)

    log_t = np.log(np.abs(t))
    y = projected(log_t[:, None])[:, 0]
    total = float(np.sum((log_t * scale - np.mean(log_t * scale)) ** 2))
    yy = float(y @ y)
    if not total > 0:
        return []
    # The monomial alone, in powers of 1/2 (sqrt(2*g*h), 2*pi*sqrt(L/g)): noise leaves the
    # trained power unit's exponents at 0.503, and the search may stop before y**2.
    alone = _exponents(base, scale, log_t)
    found = [] if alone is None else [_monomial(tuple((i, e) for i, e in zip(logged, alone) if e))]
    if yy <= MONOMIAL_HOLDS * total:
        return found

    arguments = argument_terms(table, rows)
    argument_values = np.column_stack([term_values(a, values[rows]) for a in arguments])
    finite = np.all(np.isfinite(argument_values), axis=0)
    listed, logs = [], []
    for function in FUNCTIONS:
        for k, rate, column in _columns(function, argument_values):
            if not finite[k]:
                continue
            with np.errstate(divide="ignore"):
                log_column = np.log(np.abs(column))
            if np.all(np.isfinite(log_column)):
                listed.append((function, k, rate))
                logs.append(log_column)
    if not logs:
        return found
    F = projected(np.column_stack(logs))
    # A product column reads two inputs.
    small = [
        k
        for k, a in enumerate(arguments)
        if finite[k]
        and len({i for f, _ in a for c, _ in f for i in table.products.get(c, (c,))})
        <= MAX_EXP_INPUTS
    ]
    U = projected(argument_values[:, small])

    ff = np.einsum("ij,ij->j", F, F)
    fy = F.T @ y
    n = len(rows)
    with np.errstate(all="ignore"):
        # Without an exponential: one column.
        alone = np.where(ff > 1e-12 * yy, yy - fy**2 / ff, np.inf)
        power_alone = fy / ff
    single = np.maximum(alone / yy, FLOOR)
    # With an exponential: every argument beside each of the columns that fit best alone
    # (a column that holds the target with an exponential holds most of it without).
    near = _smallest(single, PAIRED_COLUMNS)
    ff, fy, F = ff[near], fy[near], F[:, near]
    uu = np.einsum("ij,ij->j", U, U)
    uy = U.T @ y
    uf = U.T @ F
    with np.errstate(all="ignore"):
        determinant = uu[:, None] * ff[None, :] - uf**2
        usable = (determinant > 1e-9 * uu[:, None] * ff[None, :]) & (ff[None, :] > 1e-12 * yy)
        explained = (
            ff[None, :] * uy[:, None] ** 2
            - 2 * uf * uy[:, None] * fy[None, :]
            + uu[:, None] * fy[None, :] ** 2
        ) / determinant
        paired = np.where(usable, yy - explained, np.inf)
        power_paired = (uu[:, None] * fy[None, :] - uf * uy[:, None]) / determinant
        rate_paired = (ff[None, :] * uy[:, None] - uf * fy[None, :]) / determinant
    # One more column must pay its price, and beat the best single column.
    double = np.maximum(paired / yy, FLOOR) * n ** (2 / n)
    double[double >= np.min(single)] = np.inf
    options = []  # (priced residual, simplicity, column, argument position or -1, power, rate)
    for j in _smallest(single, SCREENED):
        options.append((float(single[j]), 0, int(j), -1, float(power_alone[j]), 0.0))
    for k in _smallest(double.ravel(), SCREENED):
        u, c = np.unravel_index(k, double.shape)
        power, rate = float(power_paired[u, c]), float(rate_paired[u, c])
        options.append((float(double[u, c]), 1, int(near[c]), int(u), power, rate))
    options.sort(key=lambda o: (round(math.log10(max(o[0], FLOOR)), 1), o[1], o[2], o[3]))

    seen = set()
    offered = len(found) + OFFERED
    for _, _, j, u, power, exp_rate in options:
        if len(found) == offered:
            break
        function, k, rate = listed[j]
        key = (function, k, u)
        if key in seen:
            continue
        seen.add(key)
        snapped = _snap(power, 1.0)
        if snapped is None or int(snapped) not in POWERS:
            continue
        if function not in ("sin", "cos") and abs(snapped) != 1:
            continue
        exp_argument = None if u < 0 else arguments[small[u]]
        if exp_argument is not None:
            # An exponential that stays within its limit and is not constant on the rows.
            exponent = exp_rate * argument_values[:, small[u]]
            if not (np.max(exponent) <= EXP_LIMIT and np.ptp(exponent) >= MIN_SPREAD):
                continue
        rest = log_t - snapped * logs[j]
        if exp_argument is not None:
            rest = rest - exponent
        exponents = _exponents(base, scale, rest)
        if exponents is None:
            continue
        found.append(
            FunctionProduct(
                tuple((i, e) for i, e in zip(logged, exponents) if e != 0),
                function,
                arguments[k],
                rate,
                int(snapped),
                exp_argument,
                exp_rate,
            )
        )
    return found


def _exponents(base: np.ndarray, scale: np.ndarray, rest: np.ndarray) -> list[float] | None:
    """The monomial's exponents that fit ``rest`` (``log|y|`` less the other factors'
    logarithms) over the ``base`` columns, each snapped to a multiple of 1/2; ``None`` when
    one is not near a multiple of 1/2."""
    solution, *_ = np.linalg.lstsq(base * scale[:, None], rest * scale, rcond=None)
    snapped = [_snap(float(e), 0.5) for e in solution[1:]]
    if any(e is None for e in snapped):
        return None
    return [float(e) for e in snapped]


class FittedProduct(NamedTuple):
    """A product's rates fitted on ``y``: the function's and the exponential's (``None``
    where there is none)."""

    rate: FittedRate | None
    exp_rate: FittedRate | None


def _fit_factor(
    function: str,
    argument: np.ndarray,
    power: int,
    others: np.ndarray,
    y: np.ndarray,
    start: float,
    tolerance: float,
    weights: np.ndarray | None,
    noise: float | None,
) -> FittedRate | None:
    """The rate of the factor ``function(rate*argument)**power`` of ``y``, the product's
    other factors (``others``) held fixed. A factor that multiplies is fitted to ``y/others``
    weighed by ``others**2``, which is the error of ``y`` itself; one that divides, to
    ``others/y``. A square of a sine or a cosine is the cosine of twice the argument plus a
    constant (``sin(x)**2 = (1 - cos(2*x))/2``), fitted as that and halved. ``noise``: the
    noise of ``y``, carried into the fitted target to judge the fit (see
    :func:`~nalu_sr.search.compositions.misfit_for`)."""
    with np.errstate(all="ignore"):
        if power > 0:
            target = y / others
            w = others**2 if weights is None else weights * others**2
            carried = np.full_like(y, noise or 0.0) / others
        else:
            target = others / y
            w = weights
            carried = others / (y + (noise or 0.0)) - target
    doubled = abs(power) == 2
    fitted = fit_rate(
        "cos" if doubled else function,
        argument,
        np.empty((len(y), 0)),
        target,
        start=[2 * start if doubled else start],
        tolerance=tolerance,
        weights=w,
        near=True,
        misfit=MISFIT if noise is None else misfit_for(target, carried, w),
    )
    if fitted is None or not doubled:
        return fitted
    return fitted._replace(
        value=fitted.value / 2, expression=fitted.expression / 2, margin=fitted.margin / 2
    )


def fit_product(
    product: FunctionProduct,
    table: FeatureTable,
    rows: np.ndarray,
    y: np.ndarray,
    *,
    tolerance: float,
    weights: np.ndarray | None = None,
    noise: float | None = None,
) -> FittedProduct | None:
    """Fit the rates of ``product`` on ``y`` over ``rows`` of ``table``: the exponential's
    with the function at its screened rate, the function's with that exponential, then the
    exponential's again (see :func:`~nalu_sr.search.compositions.fit_rate`, which also names
    each rate by the rule every constant follows). ``None`` where a rate does not fit."""
    if product.function is None:
        return FittedProduct(None, None)
    values = table.values[rows]
    monomial = np.ones(len(rows))
    for i, e in product.exponents:
        monomial = monomial * values[:, i] ** e
    argument = term_values(product.argument, values)
    function = COMPOSED_FUNCTIONS[product.function][0]
    with np.errstate(all="ignore"):
        column = function(product.rate * argument) ** product.power
    if product.exp_argument is None:
        rate = _fit_factor(
            product.function,
            argument,
            product.power,
            monomial,
            y,
            product.rate,
            tolerance,
            weights,
            noise,
        )
        return None if rate is None else FittedProduct(rate, None)
    exp_argument = term_values(product.exp_argument, values)
    exp_rate = _fit_factor(
        "exp", exp_argument, 1, monomial * column, y, product.exp_rate, tolerance, weights, noise
    )
    if exp_rate is None:
        return None
    rate = _fit_factor(
        product.function,
        argument,
        product.power,
        monomial * np.exp(exp_rate.value * exp_argument),
        y,
        product.rate,
        tolerance,
        weights,
        noise,
    )
    if rate is None:
        return None
    with np.errstate(all="ignore"):
        column = function(rate.value * argument) ** product.power
    exp_rate = _fit_factor(
        "exp", exp_argument, 1, monomial * column, y, exp_rate.value, tolerance, weights, noise
    )
    return None if exp_rate is None else FittedProduct(rate, exp_rate)
