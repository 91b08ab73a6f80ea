"""Functions of products found in closed form: ``f(r*u)`` for every argument ``u`` of a small
library and every rate ``r`` physics commonly writes, ranked by how well the column fits.

A trained function stack (``NMU*f(NMU)``, see :mod:`~nalu_sr.search.stacks`) learns its
argument by gradient descent, which takes a fresh network per function and a long schedule,
and comes after every arithmetic stage. Most arguments in science are dimensionless
groups of two to four inputs, ``t/(R*C)``, ``w*t``, ``E/(k*T)``, ``(E - mu)/T``,
``(S + N)/N``, at a rate of 1, 2, 1/2 or 2*pi: few enough to list. Each becomes a column
``F = f(r*u)`` and is scored by the least-squares fit of the target over ``[m, m*F]``, ``m``
running over the constant and the products of a few inputs and reciprocals (see
:data:`OUTER_DEGREES`): that model holds the usual shapes ``A + B*F`` exactly
(``V0 - V0*exp(-t/(R*C))``, ``Ta + (T0 - Ta)*exp(-k*t)``, ``(1 + exp(-r*t))/K`` on ``1/y``),
and a wrong column leaves a residual. The best few become
:class:`~nalu_sr.snapping.Composition` s, whose rate the search then fits and names as it
does for trained ones (:func:`~nalu_sr.search.compositions.fit_rate`): the rate listed here is
only where that fit starts.

The functions are the exponential, the logarithm, the sine, the cosine, the hyperbolic
tangent (``N*m*tanh(m*B/(k*T))``), the arctangent (a phase, ``atan(w*R*C)``) and the arcsine
(an angle, ``asin(n*lam/(2*d))``). Domains are respected: a logarithm only of an argument that
keeps one sign away from zero, an exponential only within
:data:`~nalu_sr.search.space.EXP_LIMIT`, a sine or a cosine of an argument that spans at most
a few turns, a hyperbolic tangent or an arctangent short of saturation, an arcsine of an
argument within [-1, 1].
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from ..snapping import Composition
from ..structure import Term, make_factor, raise_term
from .candidates import term_values
from .compositions import COMPOSED_FUNCTIONS, _solve
from .space import EXP_LIMIT, RECIPROCAL_MIN_RATIO, FeatureTable, divides_safely
from .sparse_ratios import best_subsets, finite_rows

#: Rates tried per function (the search refits each); the sign of a sine's or a cosine's rate
#: is the coefficient's, and a logarithm's rate is an additive constant.
RATES = {
    "exp": (1.0, -1.0, 2.0, -2.0, 0.5, -0.5),
    "sin": (1.0, 2.0, 0.5, 2 * math.pi, math.pi),
    "cos": (1.0, 2.0, 0.5, 2 * math.pi, math.pi),
    "tanh": (1.0, 2.0, 0.5),
    "atan": (1.0, 2.0, 0.5),
    "asin": (1.0, 0.5, 2.0),
    "log": (1.0,),
}

#: Largest argument (in size, over the fitted rows) a sine or cosine column is made of: four
#: turns; past that, the column is noise to every linear model, and a rate that large is not a
#: simple number times a dimensionless group.
ANGLE_LIMIT = 8 * math.pi

#: A hyperbolic tangent whose argument stays beyond this size is a constant (1 - 1e-7).
SATURATED = 8.0

#: Smallest spread of ``r*u`` over the rows: below it the function is nearly linear in ``u``,
#: and the arithmetic stacks reach the same shape.
MIN_SPREAD = 0.05

#: Most inputs in a product argument (``B*q*t/m``).
MAX_ARGUMENT_INPUTS = 4

#: Most inputs of a table whose arguments include a square times two other inputs
#: (``m*v**2/(k*T)``); beyond it, a square times one other (``g*R/v**2``).
SQUARED_GROUP_INPUTS = 4

#: Most inputs and reciprocals in one product ``m`` of the screening model, by the number of
#: inputs up to which it applies: three on two inputs (``f**3/(exp(f/T) - 1)``), two up to
#: four (``V*(1 - exp(-R*t/L))/R``), one beyond.
OUTER_DEGREES = ((2, 3), (4, 2))

#: Relative residuals (of sums of squares) below these count as equal: the batched normal
#: equations are precise to about the first; a column that holds the data leaves rounding
#: error below the second (far below: on two inputs a wrong column times enough products
#: fits to 1e-15).
ROUGH_FLOOR = 1e-9
FLOOR = 1e-20

#: Columns the batched screen shortlists to be scored again precisely: this many, or all
#: those it cannot tell from an exact fit, up to the second.
SHORTLIST = 32
MAX_SHORTLIST = 512


#: Compositions offered per target transform, best first (each costs a fit of its rate).
OFFERED = 4


def argument_terms(table: FeatureTable, rows: np.ndarray) -> list[Term]:
    """The library of arguments over ``table``'s inputs: each input and its square (and their
    reciprocals where the input divides safely on ``rows``); products of two to four inputs,
    each to the power 1 or -1, and the squares of those of two; one input squared times one or
    two others (see :data:`SQUARED_GROUP_INPUTS`); differences and sums of two inputs, alone,
    over an input or times one; differences and sums of two products of two inputs, or of one
    and a third input, and differences and sums of two inputs over a product of two others
    (where the table holds the products); and the squared differences of two inputs, alone or
    over the square of an input."""
    inputs = list(table.inputs)
    divides = {i: divides_safely(table.values[rows, i]) for i in inputs}
    powers = {i: (1, -1) if divides[i] else (1,) for i in inputs}
    found: dict[Term, None] = {}

    def add(term: Term | None) -> None:
        if term:
            found.setdefault(term, None)

    for i in inputs:
        for e in powers[i]:
            add(raise_term([(make_factor([(i, 1)]), e)]))
            add(raise_term([(make_factor([(i, 1)]), 2 * e)]))
    for size in range(2, MAX_ARGUMENT_INPUTS + 1):
        for chosen in itertools.combinations(inputs, size):
            for exponents in itertools.product(*(powers[i] for i in chosen)):
                add(raise_term((make_factor([(i, 1)]), e) for i, e in zip(chosen, exponents)))
                if size == 2:
                    # Squared ratios, as in a bell curve: exp(-(x/s)**2/2).
                    add(
                        raise_term(
                            (make_factor([(i, 1)]), 2 * e)
                            for i, e in zip(chosen, exponents, strict=True)
                        )
                    )
    # One input squared times one or two others: g*R/v**2, m*v**2/(k*T).
    for i in inputs:
        others = [j for j in inputs if j != i]
        for size in range(1, (2 if len(inputs) <= SQUARED_GROUP_INPUTS else 1) + 1):
            for chosen in itertools.combinations(others, size):
                for e in powers[i]:
                    for exponents in itertools.product(*(powers[j] for j in chosen)):
                        square = (make_factor([(i, 1)]), 2 * e)
                        add(
                            raise_term(
                                [
                                    square,
                                    *(
                                        (make_factor([(j, 1)]), f)
                                        for j, f in zip(chosen, exponents)
                                    ),
                                ]
                            )
                        )
    for a, b in itertools.combinations(inputs, 2):
        for sign in (1, -1):
            pair = make_factor([(a, 1), (b, sign)])
            add(raise_term([(pair, 1)]))
            for c in inputs:
                for e in powers[c]:
                    add(raise_term([(pair, 1), (make_factor([(c, 1)]), e)]))
    # Sums and differences of two products of two inputs, or of one and a third input, as a
    # wave's phase is: k*x - w*t, w*t - phi (products are columns of narrow tables only).
    for p, q in itertools.combinations(table.products, 2):
        if not set(table.products[p]) & set(table.products[q]):
            for sign in (1, -1):
                add(raise_term([(make_factor([(p, 1), (q, sign)]), 1)]))
    for p, used in table.products.items():
        for c in inputs:
            if c not in used:
                for sign in (1, -1):
                    add(raise_term([(make_factor([(p, 1), (c, sign)]), 1)]))
    # A difference of two inputs over a product of two others, as an energy over k*T is:
    # (E - mu)/(k*T).
    for p, used in table.products.items():
        if not divides_safely(table.values[rows, p]):
            continue
        for a, b in itertools.combinations([i for i in inputs if i not in used], 2):
            for sign in (1, -1):
                pair = make_factor([(a, 1), (b, sign)])
                add(raise_term([(pair, 1), (make_factor([(p, 1)]), -1)]))
    # Squared differences, alone or over a square: exp(-(x - m)**2/(2*s**2)). After the
    # rest, so that where two columns fit alike (log(u**2) is 2*log(u)) the simpler is first.
    for a, b in itertools.combinations(inputs, 2):
        for sign in (1, -1):
            pair = make_factor([(a, 1), (b, sign)])
            add(raise_term([(pair, 2)]))
            for c in inputs:
                if divides[c]:
                    add(raise_term([(pair, 2), (make_factor([(c, 1)]), -2)]))
    return list(found)


def _outer_terms(table: FeatureTable, rows: np.ndarray) -> tuple[list[Term], np.ndarray]:
    """The products ``m`` of the screening model, as terms and as values on ``rows``: 1, and
    the products of up to :data:`OUTER_DEGREES` inputs and offered reciprocals (never a
    column times its own reciprocal, and a column times itself only in products of three)."""
    values = table.values[rows]
    singles = [(i, 1) for i in table.inputs] + [(i, -1) for i in table.reciprocal_of]
    n = len(table.inputs)
    degree = next((d for most, d in OUTER_DEGREES if n <= most), 1)
    # Powers of one column only where products of three are listed: each adds a column per
    # input to every Gram matrix of the screen.
    combine = itertools.combinations_with_replacement if degree > 2 else itertools.combinations
    chosen = [
        powers
        for size in range(degree + 1)
        for powers in combine(singles, size)
        if all(len({e for i, e in powers if i == j}) <= 1 for j in table.inputs)
    ]
    terms = [raise_term((make_factor([(i, 1)]), e) for i, e in powers) for powers in chosen]
    columns = [
        np.prod([values[:, i] ** float(e) for i, e in powers], axis=0)
        if powers
        else np.ones(len(rows))
        for powers in chosen
    ]
    return terms, np.column_stack(columns)


def _columns(function: str, arguments: np.ndarray) -> list[tuple[int, float, np.ndarray]]:
    """Per rate of :data:`RATES`, the columns ``function(rate * argument)`` of the
    ``arguments`` (one per column) that are defined and worth a fit on these rows, as
    ``(argument position, rate, column values)``."""
    if function == "log":
        positive = np.all(arguments > 0, axis=0) & (
            np.min(arguments, axis=0) >= RECIPROCAL_MIN_RATIO * np.max(arguments, axis=0)
        )
        kept = np.flatnonzero(positive)
        return [(int(k), 1.0, np.log(arguments[:, k])) for k in kept]
    found = []
    for rate in RATES[function]:
        scaled = rate * arguments
        keep = np.ptp(scaled, axis=0) >= MIN_SPREAD
        if function == "exp":
            keep &= np.max(scaled, axis=0) <= EXP_LIMIT
        if function in ("sin", "cos"):
            keep &= np.max(np.abs(scaled), axis=0) <= ANGLE_LIMIT
        if function in ("tanh", "atan"):
            keep &= np.min(np.abs(scaled), axis=0) <= SATURATED
        if function == "asin":
            keep &= np.max(np.abs(scaled), axis=0) <= 1
        kept = np.flatnonzero(keep)
        with np.errstate(all="ignore"):
            values = COMPOSED_FUNCTIONS[function][0](scaled[:, kept])
        finite = np.all(np.isfinite(values), axis=0)
        found += [(int(k), rate, values[:, j]) for j, k in enumerate(kept) if finite[j]]
    return found


#: Added to the diagonal of the screening model's (unit) Gram matrix before solving.
RIDGE = 1e-10

#: Columns screened per batch (each batch holds a Gram matrix per column).
BATCH = 256


def _residuals(outers: np.ndarray, columns: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each of ``columns``, the residual sum of squares of the least-squares fit of
    ``target`` over ``[outers, outers*column]``, over that of ``target``.

    Every Gram matrix comes from two products with the rows' pairwise products of the outer
    columns, so a batch of columns costs two matrix products and a batched solve."""
    rows, p = outers.shape
    total = float(target @ target)
    pairs = (outers[:, :, None] * outers[:, None, :]).reshape(rows, p * p)
    plain = pairs.sum(axis=0).reshape(p, p)
    moment = outers.T @ target
    weighted = outers * target[:, None]
    found = np.full(columns.shape[1], np.inf)
    for start in range(0, columns.shape[1], BATCH):
        block = columns[:, start : start + BATCH]
        n = block.shape[1]
        cross = (block.T @ pairs).reshape(n, p, p)
        square = ((block**2).T @ pairs).reshape(n, p, p)
        gram = np.empty((n, 2 * p, 2 * p))
        gram[:, :p, :p] = plain
        gram[:, :p, p:] = cross
        gram[:, p:, :p] = np.transpose(cross, (0, 2, 1))
        gram[:, p:, p:] = square
        rhs = np.concatenate([np.broadcast_to(moment, (n, p)), block.T @ weighted], axis=1)
        found[start : start + n] = normal_residuals(gram, rhs, total)
    return found


def normal_residuals(gram: np.ndarray, rhs: np.ndarray, total: float) -> np.ndarray:
    """Relative residual sums of squares of a batch of least-squares fits from their normal
    equations: Gram matrices ``(n, k, k)``, right-hand sides ``(n, k)`` and the target's
    sum of squares. Each system is scaled to a unit diagonal, with :data:`RIDGE` added;
    systems with a zero or non-finite column get ``inf``."""
    n, k = rhs.shape
    found = np.full(n, np.inf)
    scale = np.sqrt(np.einsum("nii->ni", gram))
    good = np.all(scale > 0, axis=1) & np.all(np.isfinite(gram), axis=(1, 2))
    if not good.any():
        return found
    scale = np.where(scale > 0, scale, 1.0)
    gram = gram / scale[:, :, None] / scale[:, None, :] + RIDGE * np.eye(k)
    rhs = rhs / scale
    with np.errstate(all="ignore"):
        try:
            solution = np.linalg.solve(gram[good], rhs[good][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            return found
    explained = np.einsum("ni,ni->n", rhs[good], solution)
    found[good] = np.maximum(total - explained, 0.0) / total
    return found


def screened_rows(
    table: FeatureTable,
    columns: Sequence[int],
    target: np.ndarray,
    weights: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows a closed-form screen fits (finite in the target and ``columns``, of positive
    weight), the roots of their weights (ones without weights) and the target on them times
    those roots, so that plain least squares weighs each row's error by its weight."""
    rows = np.flatnonzero(finite_rows(target, table.values[:, list(columns)]))
    if weights is not None:
        rows = rows[weights[rows] > 0]
    root = np.ones(len(rows)) if weights is None else np.sqrt(weights[rows])
    return rows, root, target[rows] * root


@threadpool_limits.wrap(limits=1)  # small solves: more threads only contend with the workers
def function_compositions(
    table: FeatureTable,
    columns: Sequence[int],
    target: np.ndarray,
    transform: str = "y",
    weights: np.ndarray | None = None,
) -> list[Composition]:
    """The :data:`OFFERED` functions of an argument of the library that fit ``target`` best
    as ``A + B*F`` (see the module's description), each as compositions with the rate it
    was screened at, one per product that multiplies it in its best sparse fits (and none).
    ``columns`` are the inputs (the kind reads them all); ``transform`` names the target's
    form, which ``target`` already is."""
    rows, root, t = screened_rows(table, columns, target, weights)
    outer_terms, outers = _outer_terms(table, rows)
    if len(rows) <= 2 * outers.shape[1] or not np.all(np.isfinite(outers)):
        return []
    total = float(t @ t)
    if not total > 0:
        return []
    outers = outers * root[:, None]
    listed, columns, simplicity = listed_columns(table, rows)
    if not columns:
        return []
    simple = np.argsort(
        np.array(simplicity, dtype=[("a", int), ("r", int), ("f", int)]), kind="stable"
    ).argsort()
    # Scored over the single inputs and reciprocals (the first products) and over all of
    # them, each fit's residual priced by its number of columns (the Bayesian information
    # criterion): on noisy data every column fits within the noise once enough products may
    # multiply it, and the smaller model tells the true one. The batched normal equations
    # rank every column to about 1e-9; the best are scored again by orthogonal
    # factorisation, which tells an exact fit from a close one.
    sizes = list(dict.fromkeys((1 + len(table.inputs) + len(table.reciprocal_of), outers.shape[1])))
    stacked = np.column_stack(columns)
    rough = [np.maximum(_residuals(outers[:, :size], stacked, t), ROUGH_FLOOR) for size in sizes]
    small_rough, priced_rough = _scored(rough, sizes, len(t))
    order = np.lexsort((simple, small_rough, priced_rough))
    # Every column the rough fit cannot tell from exact, and the best others.
    tied = int(np.sum(priced_rough <= priced_rough[order[0]]))
    shortlist = order[: min(max(SHORTLIST, tied), MAX_SHORTLIST)]
    precise = [
        np.maximum([_residual(outers[:, :size], columns[k], t) for k in shortlist], FLOOR)
        for size in sizes
    ]
    scores, small = _scored(precise, sizes, len(t))[::-1]
    # Within a bin of the price, the simplest column: on noisy data cos(theta) and
    # tanh(theta**2/2) may fit L*(1 - cos(theta)) equally well.
    binned = np.round(np.log10(np.maximum(_price(precise, sizes, len(t)), FLOOR)), 1)
    offered: dict[tuple[str, Term], None] = {}
    found = []
    for position in np.lexsort((small, simple[shortlist], binned)):
        k = int(shortlist[position])
        if len(offered) == OFFERED or not np.isfinite(scores[position]):
            break
        function, argument, rate = listed[k]
        if (function, argument) in offered:
            continue
        offered[function, argument] = None
        outers_of = _outers_of(outers, columns[k][:, None], t, outer_terms)
        found += [Composition(function, argument, rate, outer) for outer in outers_of]
    return found


def listed_columns(
    table: FeatureTable, rows: np.ndarray
) -> tuple[list[tuple[str, Term, float]], list[np.ndarray], list[tuple[int, int, int]]]:
    """Every column ``f(r*u)`` of the library on ``rows``: ``(function, argument, rate)``,
    its values, and its place in the library's order (the simpler argument first, then the
    simpler rate, then the function's order)."""
    arguments = argument_terms(table, rows)
    values = np.column_stack([term_values(a, table.values[rows]) for a in arguments])
    finite = np.flatnonzero(np.all(np.isfinite(values), axis=0))
    arguments, values = [arguments[k] for k in finite], values[:, finite]
    listed, columns, simplicity = [], [], []
    for f, function in enumerate(RATES):
        for k, rate, column in _columns(function, values):
            listed.append((function, arguments[k], rate))
            columns.append(column)
            simplicity.append((k, RATES[function].index(rate), f))
    return listed, columns, simplicity


def _scored(
    residuals: Sequence[np.ndarray], sizes: Sequence[int], rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sort keys, last first (as :func:`numpy.lexsort` takes them): the smaller model's
    residual, then the lower price over both models (``residual * rows**(2*size/rows)``),
    each rounded so that equal fits tie (see :func:`_rounded`) and the library's order, the
    simplest first, decides among them."""
    return _rounded(residuals[0]), _rounded(_price(residuals, sizes, rows))


def _price(residuals: Sequence[np.ndarray], sizes: Sequence[int], rows: int) -> np.ndarray:
    """The lower of the models' residuals, each times ``rows**(2*size/rows)``."""
    return np.min([r * rows ** (2 * size / rows) for r, size in zip(residuals, sizes)], axis=0)


def _residual(outers: np.ndarray, column: np.ndarray, target: np.ndarray) -> float:
    """Relative residual of the least-squares fit of ``target`` over
    ``[outers, outers*column]``, by orthogonal factorisation."""
    design = np.column_stack([outers, outers * column[:, None]])
    norms = np.linalg.norm(design, axis=0)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return math.inf
    return _solve(design / norms, target)[1] / float(target @ target)


def _rounded(losses: np.ndarray) -> np.ndarray:
    """Relative residuals on a log scale, rounded so that columns that fit equally well tie
    (cos(2*pi*(P + t)/P) is cos(2*pi*t/P), exp((E + m)/m) is e*exp(E/m)): the library's
    order, simplest first, then decides."""
    return np.round(np.log10(np.maximum(losses, FLOOR)), 3)


def _outers_of(
    outers: np.ndarray, columns: np.ndarray, target: np.ndarray, terms: Sequence[Term]
) -> list[Term]:
    """The products that multiply a column of ``columns`` (one per column of the array) in
    the best sparse fits of ``target`` over ``[outers, outers*column, ...]`` of one to
    :data:`~nalu_sr.search.sparse_ratios.MAX_TERMS` terms (the first outer column is the
    intercept): ``V/R`` in ``V/R - V*exp(-R*t/L)/R``. The empty product first, so that every
    composition is fitted alone too."""
    blocks = [np.column_stack([outers[:, 1:] * c[:, None], c]) for c in columns.T]
    design = np.column_stack([outers, *blocks])
    norms = np.linalg.norm(design, axis=0)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return [()]
    design = design / norms
    best = best_subsets(design.T @ design, design.T @ target, float(target @ target))
    p = outers.shape[1]
    # Past the outer columns, each column's block: outer k (k >= 1) times the column, then
    # the column alone.
    found: dict[Term, None] = {(): None}
    for subsets in best.values():
        for k in subsets[0][1]:
            if k >= p:
                within = (k - p) % p
                found.setdefault(terms[within + 1] if within < p - 1 else (), None)
    return list(found)
