"""Sums of two listed functions found in closed form: ``A*cos(w*t) + B*sin(w*t)``,
``N1*exp(-t/t1) + N2*exp(-t/t2)``.

The listed screen of :mod:`~nalu_sr.search.arguments` scores one column ``F`` at a time, by
the fit of the target over ``[m, m*F]``; where the formula adds two functions, each column
alone leaves the other's share, and the true columns may rank far down alone. Here pairs are
screened by the least-squares fit over ``[m, m*F, m*G]`` (``m`` the constant, the inputs and
their offered reciprocals; batched normal equations): the :data:`PAIRED` distinct columns
that fit best alone with each other, and each of the :data:`RELATED` best with the columns a
formula commonly adds to it (see :func:`_related`: the sine's or cosine's partner, the
exponential of the opposite rate, the same function of the group with one input swapped).
The best pairs are scored again exactly, over products of two inputs too, and a pair is
offered only where it fits far better than any column alone. The search then fits each rate
with the other function in the model, against the products that multiply the two in the
pair's sparse fit (:func:`pair_multipliers`; see :meth:`Scoring.add_functions
<nalu_sr.search.runner.Scoring.add_functions>`), and builds sums of monomials times the two
columns, on ``y`` and on ``1/y`` (``1/cosh(x)`` is ``2/(exp(x) + exp(-x))``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_limits

from ..snapping import Composition
from ..structure import Term, make_factor, raise_term
from .arguments import (
    FLOOR,
    ROUGH_FLOOR,
    _outer_terms,
    _outers_of,
    _residual,
    _residuals,
    _rounded,
    listed_columns,
    normal_residuals,
    screened_rows,
)
from .candidates import term_values
from .compositions import COMPOSED_FUNCTIONS, FittedRate, _solve, fit_rate
from .space import FeatureTable

#: Columns that fit best alone, screened in pairs (with their sine/cosine partners): in a
#: sum of two exponentials each alone may rank below fifty others.
PAIRED = 64

#: Columns that fit best alone whose related columns (see :func:`_related`) are screened
#: beside them.
RELATED = 256

#: Columns whose cosine similarity is above this are one column (up to a factor).
SAME_COLUMN = 1 - 1e-9

#: Pairs of the batched screen scored again precisely (the best, and all it cannot tell
#: from an exact fit).
PRECISE = 16
MAX_PRECISE = 256

#: Pairs offered per target transform, best first (each costs four rate fits).
OFFERED_PAIRS = 2

#: A pair is offered only where its residual is under this share of the best single
#: column's (on the same products ``m``).
BETTER = 0.1

#: Partners of the same argument and rate: ``A*cos(u) + B*sin(u)`` is one phase-shifted wave.
PARTNERS = {"sin": "cos", "cos": "sin"}


class FunctionPair(NamedTuple):
    """Two listed functions the target may add: each at the rate it was screened at."""

    first: Composition
    second: Composition


def _pair_residual(
    outers: np.ndarray, first: np.ndarray, second: np.ndarray, t: np.ndarray
) -> float:
    """Relative residual of the fit of ``t`` over ``[outers, outers*first, outers*second]``,
    by orthogonal factorisation."""
    design = np.column_stack([outers, outers * first[:, None], outers * second[:, None]])
    norms = np.linalg.norm(design, axis=0)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return np.inf
    return _solve(design / norms, t)[1] / float(t @ t)


def _pair_residuals(
    outers: np.ndarray, columns: np.ndarray, pairs: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """For each pair ``(i, j)`` of ``columns``, the relative residual of the fit of ``t`` over
    ``[outers, outers*F_i, outers*F_j]``, from the batched normal equations: every block of
    each Gram matrix is a product of a column (or a pair's product) with the rows' pairwise
    products of the outer columns."""
    rows, p = outers.shape
    products = (outers[:, :, None] * outers[:, None, :]).reshape(rows, p * p)
    plain = products.sum(axis=0).reshape(p, p)
    with_one = (columns.T @ products).reshape(-1, p, p)
    with_two = ((columns[:, pairs[:, 0]] * columns[:, pairs[:, 1]]).T @ products).reshape(-1, p, p)
    squares = ((columns**2).T @ products).reshape(-1, p, p)
    i, j = pairs[:, 0], pairs[:, 1]
    n = len(pairs)
    gram = np.empty((n, 3 * p, 3 * p))
    gram[:, :p, :p] = plain
    gram[:, :p, p : 2 * p] = with_one[i]
    gram[:, :p, 2 * p :] = with_one[j]
    gram[:, p : 2 * p, p : 2 * p] = squares[i]
    gram[:, 2 * p :, 2 * p :] = squares[j]
    gram[:, p : 2 * p, 2 * p :] = with_two
    for a, b in ((p, 0), (2 * p, 0), (2 * p, p)):
        gram[:, a : a + p, b : b + p] = np.transpose(gram[:, b : b + p, a : a + p], (0, 2, 1))
    weighted = (outers * t[:, None]).T @ columns  # (p, K)
    rhs = np.concatenate(
        [np.broadcast_to(outers.T @ t, (n, p)), weighted[:, i].T, weighted[:, j].T], axis=1
    )
    return normal_residuals(gram, rhs, float(t @ t))


def _formula_like(first: tuple[str, Term, float], second: tuple[str, Term, float]) -> bool:
    """Whether two listed columns may be a formula's two functions: one function of one
    argument at two rates is a fit, not a formula, but for the exponentials of opposite
    rates (a hyperbolic cosine or sine, ``a*cosh(x/a)``)."""
    (f, u, r), (g, v, q) = first, second
    return (f, u) != (g, v) or (f == "exp" and r == -q)


def _related(
    entry: tuple[str, Term, float], inputs: Sequence[int]
) -> list[tuple[str, Term, float]]:
    """Columns a formula commonly adds to ``entry`` = ``(function, argument, rate)``: the
    sine's or cosine's partner of the same argument and rate (``A*cos(w*t) + B*sin(w*t)``),
    the exponential of the opposite rate (``exp(x) + exp(-x) - 2`` is ``1/y`` of an
    oscillator's heat capacity ``x**2*exp(x)/(exp(x) - 1)**2``),
    and the same function at the same rate of the argument with one input swapped for
    another (``N1*exp(-t/t1) + N2*exp(-t/t2)``, ``cos(w1*t) + cos(w2*t)``), for an argument
    that is a product of inputs."""
    function, argument, rate = entry
    found = []
    if function in PARTNERS:
        found.append((PARTNERS[function], argument, rate))
    if function == "exp":
        found.append((function, argument, -rate))
    if all(len(factor) == 1 for factor, _ in argument):
        present = {factor[0][0] for factor, _ in argument}
        for old in present:
            for new in inputs:
                if new in present:
                    continue
                swapped = raise_term(
                    (make_factor([(new if i == old else i, c) for i, c in factor]), e)
                    for factor, e in argument
                )
                if swapped:
                    found.append((function, swapped, rate))
    return found


@threadpool_limits.wrap(limits=1)
def function_pairs(
    table: FeatureTable,
    columns: Sequence[int],
    target: np.ndarray,
    transform: str = "y",
    weights: np.ndarray | None = None,
) -> list[FunctionPair]:
    """The :data:`OFFERED_PAIRS` pairs of listed functions whose sum, each times a linear
    combination of the constant, the inputs and their reciprocals, fits ``target`` best
    (see the module's description); none where one function alone fits about as well."""
    rows, root, t = screened_rows(table, columns, target, weights)
    # The constant, the inputs and the reciprocals are the first products of the listed
    # screen's; all of them rescore the best pairs.
    _, products = _outer_terms(table, rows)
    outers = products[:, : 1 + len(table.inputs) + len(table.reciprocal_of)]
    if len(rows) <= 4 * outers.shape[1] or not np.all(np.isfinite(outers)):
        return []
    if not float(t @ t) > 0:
        return []
    outers = outers * root[:, None]
    products = products * root[:, None] if np.all(np.isfinite(products)) else outers
    listed, found, simplicity = listed_columns(table, rows)
    if not found:
        return []
    stacked = np.column_stack(found)
    alone = np.maximum(_residuals(outers, stacked, t), ROUGH_FLOOR)
    order = np.lexsort((np.arange(len(alone)), _rounded(alone)))
    # Distinct columns only: exp((t + t1)/t1) is e*exp(t/t1).
    norms = np.linalg.norm(stacked, axis=0)
    unit = stacked / np.where(norms > 0, norms, 1.0)
    distinct: list[int] = []
    for k in order:
        if len(distinct) == RELATED:
            break
        if not distinct or np.max(np.abs(unit[:, distinct].T @ unit[:, k])) < SAME_COLUMN:
            distinct.append(int(k))
    # The best single columns scored exactly: where one holds the target, no pair is better
    # by the margin asked (a pair beside it only fits rounding error).
    best_alone = min(max(_residual(outers, found[k], t), FLOOR) for k in distinct[:PRECISE])
    position = {entry: k for k, entry in enumerate(listed)}
    candidates = {
        (a, b)
        for a, b in itertools.combinations(distinct[:PAIRED], 2)
        if _formula_like(listed[a], listed[b])
    }
    for k in distinct:
        for entry in _related(listed[k], table.inputs):
            other = position.get(entry)
            if other is not None and other != k:
                candidates.add((min(k, other), max(k, other)))
    if not candidates:
        return []
    used = sorted({k for pair in candidates for k in pair})
    local = {k: n for n, k in enumerate(used)}
    candidates = sorted(candidates)
    pairs = np.array([(local[a], local[b]) for a, b in candidates])
    chosen = np.array(used)
    rough = np.maximum(_pair_residuals(outers, stacked[:, chosen], pairs, t), ROUGH_FLOOR)
    order = np.lexsort((np.arange(len(rough)), _rounded(rough)))
    tied = int(np.sum(rough <= rough[order[0]]))
    # Scored again precisely over the products of the listed screen too (x0*cos(w*t) +
    # v0*sin(w*t)/w needs v0/w), against the best single columns scored alike.
    best_product = min(
        (max(_residual(products, found[k], t), FLOOR) for k in distinct[:PRECISE]),
        default=np.inf,
    )
    scored = []
    for a, b in pairs[order[: max(PRECISE, min(tied, MAX_PRECISE))]]:
        i, j = sorted((int(chosen[a]), int(chosen[b])))
        residual = max(_pair_residual(outers, found[i], found[j], t), FLOOR)
        richer = max(_pair_residual(products, found[i], found[j], t), FLOOR)
        if residual < BETTER * best_alone or richer < BETTER * best_product:
            # Over the single inputs first: on one or two inputs the products fit most
            # pairs to rounding error.
            fits = _rounded(np.array([residual, richer]))
            scored.append((*fits, simplicity[i], simplicity[j], i, j))
    offered, taken = [], []
    for *_, i, j in sorted(scored):
        if len(offered) == OFFERED_PAIRS:
            break
        # The same two columns by other names (t*w as a product column) are offered once.
        if any(
            abs(unit[:, i] @ unit[:, a]) >= SAME_COLUMN
            and abs(unit[:, j] @ unit[:, b]) >= SAME_COLUMN
            for a, b in taken
        ):
            continue
        taken.append((i, j))
        offered.append(FunctionPair(*(Composition(*listed[k], ()) for k in (i, j))))
    return offered


def pair_multipliers(
    table: FeatureTable,
    rows: np.ndarray,
    pair: FunctionPair,
    target: np.ndarray,
    weights: np.ndarray | None = None,
) -> list[Term]:
    """The products of inputs and reciprocals that multiply either function of ``pair`` (at
    its screened rates) in the best sparse fits of ``target`` on ``rows``: ``x0`` and
    ``v0/w`` in ``x0*cos(w*t) + v0*sin(w*t)/w``; the rates are fitted against them."""
    terms, outers = _outer_terms(table, rows)
    columns = []
    for c in pair:
        with np.errstate(all="ignore"):
            columns.append(
                COMPOSED_FUNCTIONS[c.function][0](
                    c.rate * term_values(c.argument, table.values[rows])
                )
            )
    root = np.ones(len(rows)) if weights is None else np.sqrt(weights)
    stacked = np.column_stack(columns) * root[:, None]
    if not (np.all(np.isfinite(stacked)) and np.all(np.isfinite(outers))):
        return []
    found = _outers_of(outers * root[:, None], stacked, target * root, terms)
    return [term for term in found if term]


def fit_pair(
    pair: FunctionPair,
    values: np.ndarray,
    target: np.ndarray,
    multipliers: Sequence[Term],
    *,
    tolerance: float,
    weights: np.ndarray | None,
    misfit: float,
) -> list[FittedRate] | None:
    """The rates of both functions of ``pair`` on the rows of ``values`` (a table's values):
    each fitted (see :func:`~nalu_sr.search.compositions.fit_rate`) with the other function
    in the model at its latest rate, both times each of the ``multipliers``, twice over (the
    second pass refits each beside the other's fitted rate); ``None`` where either rate
    fits no better than ``misfit``."""
    outers = np.column_stack(
        [np.empty((values.shape[0], 0)), *(term_values(m, values) for m in multipliers)]
    )
    arguments = [term_values(c.argument, values) for c in pair]
    rates: list[FittedRate | None] = [None, None]
    for k in (0, 1, 0, 1):
        other = 1 - k
        at = pair[other].rate if rates[other] is None else rates[other].value
        with np.errstate(all="ignore"):
            column = COMPOSED_FUNCTIONS[pair[other].function][0](at * arguments[other])
        rates[k] = fit_rate(
            pair[k].function,
            arguments[k],
            outers,
            target,
            start=[pair[k].rate if rates[k] is None else rates[k].value],
            tolerance=tolerance,
            weights=weights,
            near=True,
            misfit=misfit,
            fixed=np.column_stack([column, outers * column[:, None]]),
        )
        if rates[k] is None:
            return None
    if not all(r.error <= misfit for r in rates):
        return None
    return rates
