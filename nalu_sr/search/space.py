"""The search space: the feature table the units see, and measures of its columns that decide
which stacks are offered (see :mod:`nalu_sr.search.stacks`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import sympy
import torch

from ..training import second_moment

#: An input is offered as a reciprocal, and a sum as a denominator, only if it keeps one sign and
#: its smallest magnitude is at least this share of its largest (the NMRU idea needs inputs
#: bounded away from zero).
RECIPROCAL_MIN_RATIO = 1e-2

#: A product of sums whose inputs' second moment has a largest eigenvalue at least this many
#: times its mean one is also trained in whitened coordinates
#: (see :func:`~nalu_sr.search.stacks.whitened_instances`).
STIFFNESS = 20.0

#: Columns whose typical sizes (RMS) differ by more than this factor fall into separate scale
#: groups (see :func:`~nalu_sr.search.stacks.scale_group_instances`).
SCALE_GAP = 10.0

#: Most target scales a scale-group variant trains at (one per product of its groups' scales
#: that the target's size allows).
MAX_SCALE_CENTRES = 6


@dataclass(frozen=True)
class FeatureTable:
    """Columns the units see: the inputs, their reciprocals where safe, functions of the
    inputs where they are defined (see :func:`function_columns`), and a constant 1.

    Attributes
    ----------
    values : ndarray (n_rows, n_columns)
    expressions : list of sympy.Expr, one per column (``x``, ``1/x``, ``1``)
    inputs : list of int
        Columns holding the raw inputs.
    reciprocal_of : dict of int to int
        For each input column offered as a reciprocal, the column holding ``1/x``.
    constant : int
        Column of ones.
    functions : dict of str to list of int
        For each function of :data:`UNARY_FUNCTIONS`, the columns holding it of one input
        (``sqrt(x)``, ``sin(x)``, ...), where it is offered.
    roots : dict of int to tuple of int
        Columns holding the square root of a signed sum of squares (``sqrt(z**2 + R**2)``,
        ``sqrt(c**2 - v**2)``; see :func:`root_sums`), each with the
        inputs it reads. No unit reads them; the closed-form solves divide by their powers.
    products : dict of int to tuple of int
        Columns holding the product of two inputs (on tables of up to
        :data:`PRODUCT_INPUTS` inputs), each with the inputs it reads. No unit reads them;
        the listed arguments of functions sum them (``sin(k*x - w*t)``).
    """

    values: np.ndarray
    expressions: list[sympy.Expr]
    inputs: list[int]
    reciprocal_of: dict[int, int]
    constant: int
    functions: dict[str, list[int]] = field(default_factory=dict)
    roots: dict[int, tuple[int, ...]] = field(default_factory=dict)
    products: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def reciprocals(self) -> list[int]:
        return list(self.reciprocal_of.values())

    @property
    def function_columns(self) -> list[int]:
        return [c for columns in self.functions.values() for c in columns]

    @property
    def n_columns(self) -> int:
        return self.values.shape[1]

    def with_column(self, values: np.ndarray, expression: sympy.Expr) -> FeatureTable:
        """This table with one more column (after the constant, so that every column keeps
        its index): a function of a product, found during the search."""
        return replace(
            self,
            values=np.column_stack([self.values, values]),
            expressions=[*self.expressions, expression],
        )


def build_feature_table(
    X: np.ndarray, symbols: Sequence[sympy.Symbol], fit_rows: np.ndarray
) -> FeatureTable:
    """The feature table for inputs ``X``; reciprocals, functions and roots of sums of
    squares are judged on ``fit_rows`` only."""
    columns = [X[:, j] for j in range(X.shape[1])]
    expressions: list[sympy.Expr] = list(symbols)
    reciprocal_of = {}
    for j, symbol in enumerate(symbols):
        if divides_safely(X[fit_rows, j]):
            with np.errstate(divide="ignore"):
                columns.append(1.0 / X[:, j])
            expressions.append(1 / symbol)
            reciprocal_of[j] = len(columns) - 1
    functions: dict[str, list[int]] = {}
    if X.shape[1] <= MAX_FUNCTION_INPUTS:
        offered = [offered_functions(X[fit_rows, j]) for j in range(X.shape[1])]
        for name, (numpy_function, sympy_function) in UNARY_FUNCTIONS.items():
            for j, symbol in enumerate(symbols):
                if name in offered[j]:
                    with np.errstate(all="ignore"):
                        columns.append(numpy_function(X[:, j]))
                    expressions.append(sympy_function(symbol))
                    functions.setdefault(name, []).append(len(columns) - 1)
    roots = {}
    if X.shape[1] <= MAX_FUNCTION_INPUTS:
        for used, values, expression in root_sums(X, symbols, fit_rows):
            columns.append(values)
            expressions.append(expression)
            roots[len(columns) - 1] = used
    products = {}
    if X.shape[1] <= PRODUCT_INPUTS:
        for a, b in itertools.combinations(range(X.shape[1]), 2):
            columns.append(X[:, a] * X[:, b])
            expressions.append(symbols[a] * symbols[b])
            products[len(columns) - 1] = (a, b)
    columns.append(np.ones(X.shape[0]))
    expressions.append(sympy.Integer(1))
    return FeatureTable(
        values=np.column_stack(columns).astype(np.float64),
        expressions=expressions,
        inputs=list(range(X.shape[1])),
        reciprocal_of=reciprocal_of,
        constant=len(columns) - 1,
        functions=functions,
        roots=roots,
        products=products,
    )


#: Most inputs of a table whose products of two inputs are columns (see
#: :attr:`FeatureTable.products`): their sums and differences in twos are arguments of the
#: listed functions, a few hundred more columns of the screens on five inputs.
PRODUCT_INPUTS = 5

#: Most inputs whose squares are summed three at a time (``sqrt(x**2 + y**2 + z**2)``).
TRIPLE_INPUTS = 4


def root_sums(
    X: np.ndarray, symbols: Sequence[sympy.Symbol], fit_rows: np.ndarray
) -> list[tuple[tuple[int, ...], np.ndarray, sympy.Expr]]:
    """Square roots of the signed sums of squares physics divides by, as ``(inputs read,
    values, expression)``: ``a**2 + b**2`` for every pair of inputs (and every triple on up to
    :data:`TRIPLE_INPUTS` inputs) and ``a**2 - b**2`` signed to stay positive, each only where
    its sum keeps one sign away from zero on ``fit_rows`` (as a denominator must). Their
    powers give ``1/sqrt(R**2 + X**2)``, ``S**2/(K**2 + S**2)`` and ``z/(z**2 + R**2)**(3/2)``,
    which no product of signed sums writes; with a constant, ``1 + x**2`` is a polynomial on
    ``1/y`` or ``y**2``, found there.

    Examples
    --------
    >>> a, b = sympy.symbols("a b")
    >>> X = np.array([[1.0, 3.0], [2.0, 4.0], [1.5, 5.0]])
    >>> [str(e) for _, _, e in root_sums(X, [a, b], np.arange(3))]
    ['sqrt(a**2 + b**2)', 'sqrt(-a**2 + b**2)']
    """
    n = X.shape[1]
    squares = [X[:, j] ** 2 for j in range(n)]
    sums: list[tuple[tuple[int, ...], list[tuple[np.ndarray, sympy.Expr, int]]]] = []
    for size in (2, 3) if n <= TRIPLE_INPUTS else (2,):
        for chosen in itertools.combinations(range(n), size):
            sums.append((chosen, [(squares[j], symbols[j] ** 2, 1) for j in chosen]))
    for a, b in itertools.combinations(range(n), 2):
        sums.append(((a, b), [(squares[a], symbols[a] ** 2, 1), (squares[b], symbols[b] ** 2, -1)]))
    found = []
    for used, parts in sums:
        total = sum(sign * values for values, _, sign in parts)
        if not divides_safely(total[fit_rows]):
            continue
        sign = 1 if total[fit_rows][0] > 0 else -1
        expression = sympy.Add(*(sign * s * e for _, e, s in parts))
        with np.errstate(invalid="ignore"):
            found.append((used, np.sqrt(sign * total), sympy.sqrt(expression)))
    return found


#: Functions of one input the feature table may hold, each as NumPy and SymPy write it.
UNARY_FUNCTIONS = {
    "sqrt": (np.sqrt, sympy.sqrt),
    "log": (np.log, sympy.log),
    "exp": (np.exp, sympy.exp),
    "sin": (np.sin, sympy.sin),
    "cos": (np.cos, sympy.cos),
}

#: Function columns are built only for tables of at most this many inputs: each input may add
#: five columns, and every stack that reads them grows with them.
MAX_FUNCTION_INPUTS = 6

#: Largest magnitude of an input whose exponential is a column (``exp(30)`` is about 1e13, past
#: which the column swamps every other); and of one whose sine and cosine are (a few turns: an
#: angle in radians, not a quantity that merely happens to be small).
EXP_LIMIT = 30.0
ANGLE_LIMIT = 4 * np.pi


def offered_functions(values: np.ndarray) -> list[str]:
    """The functions of :data:`UNARY_FUNCTIONS` offered for an input with these fitted values:
    ``sqrt`` and ``log`` of a positive input away from zero (as a denominator must be), ``exp``
    of one within :data:`EXP_LIMIT`, ``sin`` and ``cos`` of one within :data:`ANGLE_LIMIT` that
    is not constant. An input of one value gets none.

    Examples
    --------
    >>> offered_functions(np.array([1.0, 2.0, 3.0]))
    ['sqrt', 'log', 'exp', 'sin', 'cos']
    >>> offered_functions(np.array([-50.0, 50.0]))
    []
    """
    if values.size == 0 or np.ptp(values) == 0:
        return []
    names = []
    if np.all(values > 0) and divides_safely(values):
        names += ["sqrt", "log"]
    largest = float(np.max(np.abs(values)))
    if largest <= EXP_LIMIT:
        names.append("exp")
    if largest <= ANGLE_LIMIT:
        names += ["sin", "cos"]
    return names


def keeps_sign(values: np.ndarray) -> bool:
    """Whether ``values`` are all positive or all negative (no zeros): finite logarithms of
    their magnitudes, and no pole for a single column that divides."""
    return bool(np.all(values > 0) or np.all(values < 0))


def divides_safely(values: np.ndarray) -> bool:
    """Whether ``values`` keep one sign, away from zero (see :data:`RECIPROCAL_MIN_RATIO`).

    Examples
    --------
    >>> divides_safely(np.array([-2.0, -0.5])), divides_safely(np.array([-1.0, 3.0]))
    (True, False)
    """
    magnitude = np.abs(values)
    return keeps_sign(values) and bool(magnitude.min() >= RECIPROCAL_MIN_RATIO * magnitude.max())


def product_columns(table: FeatureTable, max_power: int, limit: int) -> tuple[int, ...]:
    """Columns a product reads: inputs and reciprocals, each ``max_power`` times.

    Wide tables would make products of every column with every power too costly to train, so
    repeats are dropped first, then reciprocals, to stay within ``limit`` columns.
    """
    for power, reciprocals in ((max_power, True), (1, True), (1, False)):
        columns = (*table.inputs, *(table.reciprocals if reciprocals else ()))
        if len(columns) * power <= limit or (power == 1 and not reciprocals):
            return tuple(c for c in columns for _ in range(power))
    raise AssertionError("unreachable")


def stiffness(values: np.ndarray) -> float:
    """Largest eigenvalue of the second moment ``E[x x^T]`` of ``values``' rows over the mean one.

    Many inputs that share a mean (all in [1, 2], say) give one direction, every weight of a
    row moving together, this many times stiffer than an average one; Adam's per-weight step
    sizes cannot see a direction spread over all weights.
    """
    eigenvalues = np.linalg.eigvalsh(second_moment(torch.as_tensor(values)).numpy())
    mean = float(eigenvalues.mean())
    return float(eigenvalues[-1]) / mean if mean > 0 else 1.0


def typical_size(
    values: np.ndarray, axis: int | None = None, weights: np.ndarray | None = None
) -> np.ndarray | float:
    """RMS of ``values`` (per column with ``axis=0``), 1 where it is 0 or not finite: the
    size a column or target is divided by to bring it near 1. Row ``weights`` weigh the mean
    of the squares."""
    squares = np.asarray(values, dtype=np.float64) ** 2
    if weights is None:
        rms = np.sqrt(np.mean(squares, axis=axis))
    else:
        rms = np.sqrt(np.average(squares, axis=0 if axis is None else axis, weights=weights))
    rms = np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)
    return float(rms) if axis is None else rms


def scale_group_scales(values: np.ndarray) -> np.ndarray:
    """A training scale per column, shared within each group: columns whose RMS lie within
    ``SCALE_GAP`` of their neighbours' form a group, scaled by the geometric mean of its RMS,
    so that its columns are near 1 (a power of ten would leave a difference of columns near
    350 and 300 at 0.06, their scale being 1,000).

    Examples
    --------
    >>> values = np.array([[290.0, 305.0, 1.5], [310.0, 295.0, 1.2]])
    >>> np.round(scale_group_scales(values), 1).tolist()
    [300.1, 300.1, 1.4]
    """
    logs = np.log10(typical_size(values, axis=0))
    order = np.argsort(logs, kind="stable")
    group = np.cumsum(np.diff(logs[order], prepend=logs[order[0]]) > np.log10(SCALE_GAP))
    scales = np.empty(len(logs))
    for g in np.unique(group):
        members = order[group == g]
        scales[members] = 10.0 ** logs[members].mean()
    return scales
