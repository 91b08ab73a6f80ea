"""Functions of hidden products: fitting the rate inside ``f(rate * argument)`` and making
the function a feature column.

A trained function stack (see :class:`~nalu_sr.units.NFU`) snaps its products to discrete
terms but keeps the rate as trained, and gradients of ``sin(a*x)`` in ``a`` have many local
minima, so the trained value is only a start. With the argument fixed, the formula is linear
in every other constant, so the rate is the minimiser of a one-dimensional least-squares
problem (variable projection): a grid over every scale the argument's size allows, then a
bounded refinement and Gauss-Newton steps. The rate gets an exact form (``-1``, ``2*pi``,
``1/2``) only where the data pin it, by the rule every constant follows
(:func:`~nalu_sr.search.candidates.is_pinned`); otherwise it stays a float and every formula
using the column counts it as an estimate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np
import sympy
from scipy.optimize import minimize_scalar
from threadpoolctl import threadpool_limits

from ..snapping import Composition
from ..structure import Structure, Term, make_factor, make_structure, make_term, raise_term
from ..symbolic import decimal_number, rationalize_candidates, shortest_decimal
from .candidates import MISFIT, NOISE_FREE, is_pinned, term_values
from .space import UNARY_FUNCTIONS, FeatureTable

#: The sizes of argument (``|rate| * RMS(argument)``)
#: its rate grid spans: exponentials from slow drifts to 30 e-folds, sines and cosines from a
#: twentieth of a radian to four turns.
#: Whether a rate's sign matters (sine and cosine are odd and even: the coefficient takes it).
FUNCTIONS = {
    "sin": ((0.05, 8 * np.pi), False),
    "cos": ((0.05, 8 * np.pi), False),
    "exp": ((0.01, 30.0), True),
    # From nearly linear to saturated (tanh(5) is 0.9999); odd, as the sine.
    "tanh": ((0.05, 5.0), False),
    # A phase angle from nearly linear to nearly a right angle; odd.
    "atan": ((0.05, 20.0), False),
    # Defined up to an argument of 1 (a rate past that gives no finite fit); odd.
    "asin": ((0.05, 1.0), False),
}

#: Functions a composition may apply, as NumPy and SymPy write them: those of the feature
#: table's columns, and those that only groups of inputs need, not every input on its own:
#: the hyperbolic tangent (``N*m*tanh(m*B/(k*T))``), the arctangent of a phase
#: (``atan(w*R*C)``) and the arcsine of an angle (``asin(n*lam/(2*d))``).
COMPOSED_FUNCTIONS = {
    **UNARY_FUNCTIONS,
    "tanh": (np.tanh, sympy.tanh),
    "atan": (np.arctan, sympy.atan),
    "asin": (np.arcsin, sympy.asin),
}

#: Functions whose rate the formula's linear constants absorb, fitted with a rate of 1: the
#: logarithm (``c*o*log(a*x) = c*o*log(a) + c*o*log(x)``, and ``o`` is an outer product).
RATE_FREE = frozenset({"log"})

#: Rates tried per decade of the grid.
GRID_PER_DECADE = 40

#: A rate screened from a list is searched within this factor of it, at this many points
#: (the list's neighbours, 1/2 and 2, are within reach of each other).
NEAR = 2.5
NEAR_POINTS = 25

#: Most outer products found by training that the rate is fitted against (the most frequent
#: among a job's copies), beside each input.
MAX_OUTERS = 3


#: Most arguments per job also tried without each of their inputs in turn.
MAX_VARIED = 3

#: Inputs whose spread is under this share of their size are steady: an argument is also
#: tried without them (see :func:`argument_groups`).
STEADY = 0.1

#: A model with fewer outer products is preferred to the best fit while its error is within
#: this factor of the best one's.
SAME_FIT = 1.02

#: A fit within this factor of the noise (see :func:`misfit_for`) is the formula with noise,
#: not an approximation.
NOISE_MARGIN = 1.5


def misfit_for(target: np.ndarray, carried: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The error of a fit to ``target`` (relative to its spread, as :func:`fit_rate` measures
    it) above which the fit is an approximation: ``MISFIT``, or :data:`NOISE_MARGIN` times the
    share of the spread that the noise takes, ``carried`` being the noise carried into each
    row of ``target``. On a target whose spread is small beside its size
    (``T = Ta + (T0 - Ta)*exp(-k*t)``, ``T`` near 300, spread 17), 1% noise is a fifth of the
    spread."""
    finite = np.isfinite(target) & np.isfinite(carried)
    if weights is not None:
        finite &= weights > 0
    if finite.sum() < 2:
        return MISFIT
    w = None if weights is None else weights[finite]
    centre = np.average(target[finite], weights=w)
    spread = float(np.sqrt(np.average((target[finite] - centre) ** 2, weights=w)))
    noise = float(np.sqrt(np.average(carried[finite] ** 2, weights=w)))
    if not spread > 0:
        return MISFIT
    return max(MISFIT, NOISE_MARGIN * noise / spread)


#: Relative precision of a fitted rate on noise-free data: the minimiser of a squared error
#: is found to about the square root of the float precision.
PRECISION = 1e-7


def term_expression(term: Term, expressions: Sequence[sympy.Expr]) -> sympy.Expr:
    return sympy.Mul(
        *(
            sympy.Add(*(s * expressions[i] for i, s in factor)) ** exponent
            for factor, exponent in term
        )
    )


class FittedRate(NamedTuple):
    """A rate fitted to the data: its value, its exact form where pinned, and whether it is
    an estimate (a float the data know only to within ``margin``)."""

    value: float
    expression: sympy.Expr
    estimated: bool
    margin: float
    error: float


def _design(
    function: str, rate: float, argument: np.ndarray, outers: np.ndarray, fixed: np.ndarray
) -> np.ndarray:
    with np.errstate(all="ignore"):
        column = COMPOSED_FUNCTIONS[function][0](rate * argument)
    return np.column_stack(
        [np.ones_like(argument), column, *outers.T, *(outers.T * column), *fixed.T]
    )


def _solve(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    if not np.all(np.isfinite(design)):
        return np.zeros(design.shape[1]), np.inf
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coefficients
    return coefficients, float(residual @ residual)


class _Problem:
    """The rate's least-squares problem on the fitted rows (root-weighted rows)."""

    def __init__(
        self,
        function: str,
        argument: np.ndarray,
        outers: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray | None,
        fixed: np.ndarray | None = None,
    ) -> None:
        self.function, self.argument, self.outers = function, argument, outers
        self.fixed = np.empty((len(y), 0)) if fixed is None else fixed
        self.root = np.ones_like(y) if weights is None else np.sqrt(weights)
        self.y = y * self.root
        self.spread = float(np.sum((y - np.average(y, weights=weights)) ** 2 * self.root**2))

    def design(self, rate: float) -> np.ndarray:
        design = _design(self.function, rate, self.argument, self.outers, self.fixed)
        return design * self.root[:, None]

    def loss(self, rate: float) -> float:
        return _solve(self.design(rate), self.y)[1]

    def derivative(self, rate: float, coefficients: np.ndarray) -> np.ndarray:
        """d(prediction)/d(rate) at fixed linear coefficients."""
        step = 1e-6 * max(abs(rate), 1e-12)
        high, low = self.design(rate + step), self.design(rate - step)
        return (high - low) @ coefficients / (2 * step)

    def newton(self, rate: float, steps: int = 5) -> float:
        """Gauss-Newton steps on the rate, kept only while they lower the loss."""
        best = self.loss(rate)
        for _ in range(steps):
            coefficients, _ = _solve(self.design(rate), self.y)
            residual = self.y - self.design(rate) @ coefficients
            slope = self.derivative(rate, coefficients)
            denominator = float(slope @ slope)
            if not np.isfinite(denominator) or denominator == 0:
                break
            trial = rate + float(slope @ residual) / denominator
            loss = self.loss(trial)
            if not loss < best:
                break
            rate, best = trial, loss
        return rate

    def margin(self, rate: float) -> float:
        """Three standard errors of the rate, with the linear coefficients free too."""
        design = self.design(rate)
        coefficients, loss = _solve(design, self.y)
        jacobian = np.column_stack([design, self.derivative(rate, coefficients)])
        n, p = jacobian.shape
        if n <= p or not np.all(np.isfinite(jacobian)):
            return np.inf
        covariance = loss / (n - p) * np.linalg.pinv(jacobian.T @ jacobian)
        return 3 * float(np.sqrt(max(covariance[-1, -1], 0.0)))

    def error(self, rate: float) -> float:
        """Relative RMS error: the root of the loss over the target's spread."""
        return float(np.sqrt(self.loss(rate) / self.spread)) if self.spread > 0 else np.inf


def _grid(function: str, argument: np.ndarray) -> np.ndarray:
    size = float(np.sqrt(np.mean(argument**2)))
    (low, high), signed = FUNCTIONS[function]
    if not np.isfinite(size) or size == 0:
        return np.array([])
    count = int(np.ceil(np.log10(high / low) * GRID_PER_DECADE)) + 1
    magnitudes = np.geomspace(low / size, high / size, count)
    return np.concatenate([-magnitudes[::-1], magnitudes]) if signed else magnitudes


def _locate(problem: _Problem, grid: np.ndarray) -> tuple[float, tuple[float, float]] | None:
    """The rate of ``grid`` with the lowest loss of ``problem``, and its neighbours of the same
    sign (the bounds of its refinement); ``None`` where no rate gives a finite loss."""
    losses = np.array([problem.loss(r) for r in grid])
    if not np.isfinite(losses).any():
        return None
    rough = float(grid[int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))])
    ordered = np.sort(grid[np.sign(grid) == np.sign(rough)])
    at = int(np.searchsorted(ordered, rough))
    return rough, (ordered[max(at - 1, 0)], ordered[min(at + 1, len(ordered) - 1)])


def _refine(problem: _Problem, rate: float, bounds: tuple[float, float]) -> float:
    """``rate`` refined within ``bounds`` (Brent's method), then by Gauss-Newton steps."""
    low, high = bounds
    if low < high:
        found = minimize_scalar(
            problem.loss, bounds=(low, high), method="bounded", options={"xatol": 1e-12 * abs(rate)}
        )
        if found.fun <= problem.loss(rate):
            rate = float(found.x)
    return problem.newton(rate)


@threadpool_limits.wrap(limits=1)  # small solves: more threads only contend
def fit_rate(
    function: str,
    argument: np.ndarray,
    outers: np.ndarray,
    y: np.ndarray,
    *,
    start: Sequence[float] = (),
    apart: Sequence[int] | None = None,
    tolerance: float,
    weights: np.ndarray | None = None,
    near: bool = False,
    misfit: float = MISFIT,
    fixed: np.ndarray | None = None,
) -> FittedRate | None:
    """The rate of ``function(rate * argument)`` that best fits ``y`` on the fitted rows,
    with the intercept, the column and ``outers`` (columns of products) and their products
    with the column fitted by least squares; ``None`` when no rate fits at all. ``apart``:
    the positions of the outer products that share no input with the argument. ``fixed``:
    columns the model always holds, each with a free coefficient (another function of the
    formula, times each outer product, where the target adds two).

    Every rate of the grid (see :data:`FUNCTIONS`) and the trained ``start`` values are
    tried (only rates within :data:`NEAR` of the ``start`` values where ``near``: a rate
    screened from a list, see :mod:`~nalu_sr.search.arguments`); the best is refined. Its
    exact form is the simplest number (integers, fractions,
    fractions times a power of pi) within its margin of three standard errors that keeps the
    error within ``tolerance`` or 5% of the float fit's, and that the data pin (see
    :func:`~nalu_sr.search.candidates.is_pinned`). A fit whose error (relative to the
    spread of ``y``) is above ``misfit`` is an approximation, and its rate stays a float: on
    noisy data the caller raises ``misfit`` to the noise's share of that spread (see
    :func:`misfit_for`).
    """
    finite = np.isfinite(argument) & np.isfinite(y) & np.all(np.isfinite(outers), axis=1)
    if fixed is not None:
        finite &= np.all(np.isfinite(fixed), axis=1)
    if weights is not None:
        finite &= weights > 0
    if finite.sum() < 2 * (2 + 2 * outers.shape[1]):
        return None
    w = None if weights is None else weights[finite]
    kept = None if fixed is None else fixed[finite]
    wide = _Problem(function, argument[finite], outers[finite], y[finite], w, kept)
    if function in RATE_FREE:
        error = wide.error(1.0)
        if not np.isfinite(error):
            return None
        return FittedRate(1.0, sympy.Integer(1), False, 0.0, error)
    starts = np.asarray(start, dtype=float)
    if near:
        grid = (starts[:, None] * np.geomspace(1 / NEAR, NEAR, NEAR_POINTS)).ravel()
    else:
        grid = np.concatenate([_grid(function, wide.argument), starts])
    grid = grid[np.isfinite(grid) & (grid != 0)]
    if grid.size == 0:
        return None
    located = _locate(wide, grid)
    if located is None:
        return None
    rough, bounds = located
    rough = _refine(wide, rough, bounds)
    # With every outer product at once, a small change of the rate is absorbed by the
    # products of the column with the others (d/da exp(a*u) = u*exp(a*u)): the rate is
    # located, not determined. Each outer product alone determines it, and so do the
    # ``apart`` ones together (those with no factor of the argument: T0 and Ta in
    # Ta + (T0 - Ta)*exp(-k*t)).
    subsets = [[k] for k in range(outers.shape[1])] + [[]]
    if apart is not None and 1 < len(apart) < outers.shape[1]:
        subsets.append(list(apart))
    narrow = [
        _Problem(function, argument[finite], outers[finite][:, subset], y[finite], w, kept)
        for subset in subsets
    ]
    if near:
        # The short grid is searched by each narrow problem itself: on noisy data the wide
        # one fits most rates of it about equally, and its choice may lie far from the rate.
        starts_of = [_locate(problem, grid) for problem in narrow]
        refined = [
            (problem, _refine(problem, *where) if where else rough)
            for problem, where in zip(narrow, starts_of, strict=True)
        ]
    else:
        refined = [(problem, _refine(problem, rough, bounds)) for problem in narrow]
    lowest = min(problem.error(rate) for problem, rate in refined)
    # The smallest model that fits as well: on noisy data a product more always fits a
    # little better, and its rate, fitted to the noise too, looks more certain than it is.
    simplest = sorted(refined, key=lambda item: item[0].outers.shape[1])
    problem, best = next(
        (p, r) for p, r in simplest if p.error(r) <= max(SAME_FIT * lowest, NOISE_FREE)
    )
    if not problem.error(best) <= misfit:
        problem, best = wide, rough
    base = problem.error(best)
    if not np.isfinite(base):
        return None
    margin = float(np.nanmax([problem.margin(best), PRECISION * abs(best)]))
    if base > misfit:
        return FittedRate(best, sympy.Float(best), True, margin, base)
    allowed = max(tolerance, 1.05 * base)
    rtol = min(MISFIT, max(1e-3, margin / abs(best)))
    for option in rationalize_candidates(best, rtol=rtol):
        if isinstance(option, sympy.Float) or abs(float(option) - best) > margin:
            continue
        if problem.error(float(option)) <= allowed:
            pinned = is_pinned(option, best, margin, tolerance)
            return FittedRate(float(option), option, not pinned, margin, base)
    decimal = shortest_decimal(best, margin)
    rate = decimal_number(decimal)
    # Inside a function a rounding of the rate grows with the argument, out of the fitted
    # ranges too: it is rounded only where the fit does not notice (on noisy data).
    if problem.error(float(rate)) > 1.05 * base + NOISE_FREE:
        rate = sympy.Float(best)
    return FittedRate(float(rate), rate, not is_pinned(rate, best, margin, tolerance), margin, base)


def function_column(
    table: FeatureTable, function: str, argument: Term, rate: FittedRate
) -> tuple[np.ndarray, sympy.Expr]:
    """The values over every row of ``table`` and the expression of
    ``function(rate * argument)``."""
    numpy_function, sympy_function = COMPOSED_FUNCTIONS[function]
    with np.errstate(all="ignore"):
        values = numpy_function(rate.value * term_values(argument, table.values))
    factor, written = rate.expression, argument
    odd = [k for k, (f, e) in enumerate(argument) if len(f) > 1 and e % 2]
    if factor.is_negative and odd:
        # A negative rate goes into a sum: exp((E1 - E2)/T), not exp(-(-E1 + E2)/T).
        k = odd[0]
        flipped = tuple((i, -sign) for i, sign in argument[k][0])
        written = (*argument[:k], (flipped, argument[k][1]), *argument[k + 1 :])
        factor = -factor
    return values, sympy_function(factor * term_expression(written, table.expressions))


def argument_groups(
    found: Sequence[Composition], steady: Collection[int] = ()
) -> dict[tuple[str, Term], list[Composition]]:
    """The compositions of one job by function and argument, with nearby arguments too.

    Training often settles on the reciprocal of the argument (``R*C/t`` for ``t/(R*C)``: a
    decreasing function of either fits the target about as well), or on the argument times
    inputs that barely vary (``k*t*T0/Ta`` for ``k*t``, with ``T0/Ta`` near 1.2 and the rate
    taking it): each argument comes with its reciprocal, and without its ``steady`` inputs
    (all of them, and each in turn); the ``MAX_VARIED`` most frequent ones without each of
    their inputs in turn (``r*t`` for ``r*t/K``, ``K`` taking the place of the outer
    product ``1/K`` in ``1/N = (1 + exp(-r*t))/K``).
    """
    groups: dict[tuple[str, Term], list[Composition]] = {}
    for c in found:
        groups.setdefault((c.function, c.argument), []).append(c)
    frequent = sorted(groups, key=lambda key: -len(groups[key]))[:MAX_VARIED]
    for key, members in list(groups.items()):
        function, argument = key
        shifts = [p for p in argument if all(i in steady for i, _ in p[0])]
        kept = [[p for p in argument if p not in shifts]] if shifts else []
        if len(shifts) > 1 or (key in frequent and len(argument) > 1):
            dropped = argument if key in frequent else shifts
            kept += [[p for p in argument if p != shift] for shift in dropped]
        nearby = []
        for powers in [list(argument), *(k for k in kept if k)]:
            term = raise_term(powers)
            nearby.append(term)
            if function not in RATE_FREE:
                # (The logarithm of a reciprocal is the same column, negated.)
                nearby.append(raise_term((f, -e) for f, e in term))
        for other in nearby:
            # No trained rate to start from there (the grid covers every scale).
            moved = [c._replace(argument=other, rate=math.nan) for c in members]
            groups.setdefault((function, other), moved)
    return groups


def steady_inputs(table: FeatureTable, rows: np.ndarray) -> list[int]:
    """The inputs whose spread on ``rows`` is under ``STEADY`` of their size."""
    values = table.values[rows][:, table.inputs]
    with np.errstate(all="ignore"):
        spread = np.std(values, axis=0) / np.sqrt(np.mean(values**2, axis=0))
    return [i for i, s in zip(table.inputs, spread, strict=True) if s < STEADY]


def composed_structures(
    column: int, outers: Sequence[Term], inputs: Sequence[int]
) -> list[Structure]:
    """The structures scored over a function column ``F``: ``o*F`` for each outer product
    ``o`` (the empty term among them), with ``o`` as a term of its own too
    (``V - V*exp(-t/(R*C))``), and ``(a + b)*F`` with ``a`` and ``b`` for each pair of
    ``inputs`` (``Ta + (T0 - Ta)*exp(-k*t)``)."""
    power = (make_factor([(column, 1)]), 1)
    structures = []
    for outer in outers:
        term = raise_term([*outer, power])
        structures.append(make_structure([term]))
        if outer:
            structures.append(make_structure([term, outer]))
    for i, j in itertools.combinations(inputs, 2):
        a, b = (make_term([make_factor([(k, 1)])]) for k in (i, j))
        structures.append(make_structure([raise_term([*a, power]), raise_term([*b, power]), a, b]))
    return structures
