"""Ratios over a known denominator, made sparse by subset search: ``t = c0 + sum_k c_k m_k/Q``
for ``Q`` from a small library (1, a monomial of the inputs, a signed sum of two or
three features, a difference of two squares) and ``m_k`` monomials of the inputs.

The closed-form solve of :mod:`~nalu_sr.search.rational` finds ``P`` and ``Q`` together, which
is exact on noise-free data but fragile on noisy data over stiff input ranges: with
``c`` in [330, 350] and ``vo``, ``vs`` in [0, 30], ``f*(c + vo)/(c - vs)`` and a quadratic
in the inputs agree within 0.1% noise, the dense solve spreads its weights over near-collinear
monomials, and thresholding no longer leaves the formula's own. With ``Q`` fixed, the fit is
linear in the ``c_k``, and the best one, two or three monomials (a beam search beyond) can be
found by comparing every small subset: the formula's few terms fit the noise level, any other
few terms do not.

Each denominator is a signed sum of features taken as they are (``c - vs``, ``1 + r``), offered
only where it keeps one sign away from zero on the rows (as reciprocals are, see
:data:`~nalu_sr.search.space.RECIPROCAL_MIN_RATIO`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from math import comb

import numpy as np
from threadpoolctl import threadpool_limits

from ..structure import (
    Factor,
    Structure,
    Term,
    make_factor,
    make_structure,
    make_term,
    monomial_term,
    monomials,
)
from .space import RECIPROCAL_MIN_RATIO

#: Most columns a library is built over (signed sums of three of eight features already give
#: several hundred denominators).
MAX_COLUMNS = 6
#: Most numerator monomials to choose from: the degree is the highest (up to
#: :data:`MAX_DEGREE`) whose monomials fit, 6 on three inputs (``m**2*c**4``), 4 on four, 3 on
#: five or six (each function of an input that multiplies them counts them once more).
MAX_MONOMIALS = 120
MAX_DEGREE = 6
#: Highest degree of a monomial denominator: 4 over up to :data:`NARROW_COLUMNS` columns
#: (``n1**2*n2**2`` below ``n2**2 - n1**2``), 2 over more.
MONOMIAL_DENOMINATOR_DEGREE = 4
NARROW_COLUMNS = 2
#: Most features in a signed-sum denominator (the constant 1 counts as one): three over up
#: to :data:`WIDE_COLUMNS` columns, two over more.
MAX_SUM_FEATURES = 3
WIDE_COLUMNS = 4
#: Most numerator monomials in one structure: every pair is compared exhaustively, larger
#: subsets grow from the best :data:`BEAM` of the size below.
MAX_TERMS = 4
BEAM = 24
#: Added to the diagonal of the (unit) Gram matrix of a subset before solving.
RIDGE = 1e-10
#: Structures offered per number of terms, the best over every denominator.
PER_SIZE = 3
#: Highest power of a root of a sum of squares in a denominator: ``1/sqrt(R**2 + X**2)``,
#: ``1/(K**2 + S**2)``, ``1/(z**2 + R**2)**(3/2)``.
ROOT_POWERS = 3
#: Above this relative residual (of the target's sum of squares) a subset is not offered.
LOOSE = 1e-2


def denominators(
    values: np.ndarray,
    columns: Sequence[int],
    constant: int,
    sums: bool = True,
    roots: tuple[np.ndarray, Sequence[int]] | None = None,
) -> list[tuple[list[tuple[Factor, int]], np.ndarray]]:
    """The library of denominators over ``values`` (one column per feature in ``columns``),
    each as factors with powers and its values on the rows: 1 (the empty list), monomials of
    the inputs (up to degree 4 over two inputs, 2 over more), signed sums of two or three
    features (the constant among them) and differences of two squares (unless ``sums`` is
    false), and the powers 1 to :data:`ROOT_POWERS` of the ``roots`` columns (values and
    feature indices: square roots of sums of squares, ``(z**2 + R**2)**(3/2)``), and each
    root times an input; only those that keep one sign away from zero."""
    ones = np.ones(len(values))
    found = [([], ones)]
    singles = [make_factor([(c, 1)]) for c in columns]
    degree = MONOMIAL_DENOMINATOR_DEGREE if len(columns) <= NARROW_COLUMNS else 2
    for powers in monomials(len(columns), degree)[1:]:
        below = [(f, e) for f, e in zip(singles, powers, strict=True) if e]
        found.append((below, np.prod(values ** np.array(powers), axis=1)))
    features = (
        [*((c, values[:, i]) for i, c in enumerate(columns)), (constant, ones)] if sums else []
    )
    widest = MAX_SUM_FEATURES if len(columns) <= WIDE_COLUMNS else 2
    for size in range(2, widest + 1):
        for chosen in itertools.combinations(features, size):
            for signs in itertools.product((1, -1), repeat=size - 1):
                value = chosen[0][1] + sum(s * v for s, (_, v) in zip(signs, chosen[1:]))
                factor = make_factor(
                    [(chosen[0][0], 1), *((c, s) for s, (c, _) in zip(signs, chosen[1:]))]
                )
                found.append(([(factor, 1)], value))
    # Differences of squares, (a - b)*(a + b): c**2 - v**2, 1 - b**2.
    for (a, va), (b, vb) in itertools.combinations(features, 2):
        below = [(make_factor([(a, 1), (b, -1)]), 1), (make_factor([(a, 1), (b, 1)]), 1)]
        found.append((below, va * va - vb * vb))
    found = [(below, value) for below, value in found if _keeps_away_from_zero(value)]
    # A root that keeps away from zero divides safely at any power (as a monomial's inputs
    # do; its cube spans more than a hundredfold where the root spans five).
    root_values, root_columns = roots if roots is not None else (values[:, :0], [])
    for r, column in zip(root_values.T, root_columns, strict=True):
        if not _keeps_away_from_zero(r):
            continue
        root = make_factor([(column, 1)])
        found += [([(root, power)], r**power) for power in range(1, ROOT_POWERS + 1)]
        # The root times an input: I*L/(d*sqrt(d**2 + L**2)), v**2*h/(g*sqrt(h**2 + L**2)).
        found += [
            ([(root, 1), (s, 1)], r * v)
            for s, v in zip(singles, values.T, strict=True)
            if _keeps_away_from_zero(v)
        ]
    return found


def finite_rows(target: np.ndarray, *blocks: np.ndarray) -> np.ndarray:
    """Rows where the target and every column of each block of ``blocks`` are finite."""
    finite = np.isfinite(target)
    for block in blocks:
        finite &= np.all(np.isfinite(block), axis=1)
    return finite


def column_terms(columns: Sequence[int]) -> list[Term]:
    """One term per feature of ``columns``: the feature itself."""
    return [make_term([make_factor([(c, 1)])]) for c in columns]


def _keeps_away_from_zero(value: np.ndarray) -> bool:
    size = np.abs(value)
    return bool(
        np.all(np.isfinite(value))
        and (np.all(value > 0) or np.all(value < 0))
        and size.min() >= RECIPROCAL_MIN_RATIO * size.max()
    )


def best_subsets(
    gram: np.ndarray, moment: np.ndarray, total: float
) -> dict[int, list[tuple[float, tuple[int, ...]]]]:
    """Per number of terms (1 to :data:`MAX_TERMS`), the subsets of columns 1.. (column 0 is
    the intercept, always in) with their residual sums of squares, best first, from the Gram
    matrix ``gram`` of the unit-norm columns and their products ``moment`` with the target.

    The intercept is projected out first, so that one and two columns have closed-form
    residuals (every pair at once); larger subsets grow from the best :data:`BEAM` of the
    size below, solved in a batch. A ridge of :data:`RIDGE` keeps near-collinear subsets
    solvable; their residual stays an upper bound of the true one's."""
    n = gram.shape[0] - 1
    scale = gram[0, 0] + RIDGE
    g = gram[1:, 1:] - np.outer(gram[1:, 0], gram[0, 1:]) / scale + RIDGE * np.eye(n)
    m = moment[1:] - gram[1:, 0] * moment[0] / scale
    left = total - moment[0] ** 2 / scale
    diagonal = np.diag(g)
    best: dict[int, list[tuple[float, tuple[int, ...]]]] = {}
    frontier = np.empty((1, 0), dtype=int)
    for size in range(1, min(MAX_TERMS, n) + 1):
        if size == 1:
            subsets = np.arange(n)[:, None]
            rss = left - m**2 / diagonal
        elif size == 2:
            i, j = np.triu_indices(n, 1)
            subsets = np.column_stack([i, j])
            a, b, d = diagonal[i], g[i, j], diagonal[j]
            with np.errstate(all="ignore"):
                explained = (d * m[i] ** 2 - 2 * b * m[i] * m[j] + a * m[j] ** 2) / (a * d - b * b)
            rss = np.where(np.isfinite(explained), left - explained, np.inf)
        else:
            grown = np.column_stack(
                [np.repeat(frontier, n, axis=0), np.tile(np.arange(n), len(frontier))]
            )
            grown.sort(axis=1)
            grown = grown[np.all(np.diff(grown, axis=1) > 0, axis=1)]
            keys = grown @ n ** np.arange(size)
            subsets = grown[np.unique(keys, return_index=True)[1]]
            if not len(subsets):
                break
            block = g[subsets[:, :, None], subsets[:, None, :]]
            rhs = m[subsets]
            coef = np.linalg.solve(block, rhs[:, :, None])[:, :, 0]
            rss = left - np.einsum("ij,ij->i", rhs, coef)
        top = np.argpartition(rss, BEAM)[:BEAM] if len(rss) > BEAM else np.arange(len(rss))
        order = top[np.lexsort((top, rss[top]))]
        best[size] = [(float(rss[k]), tuple(int(c) + 1 for c in subsets[k])) for k in order]
        frontier = subsets[order]
    return best


@threadpool_limits.wrap(limits=1)  # small solves: more threads only contend
def fixed_denominator_structures(
    inputs: np.ndarray,
    target: np.ndarray,
    columns: Sequence[int],
    constant: int,
    weights: np.ndarray | None = None,
    extra: tuple[np.ndarray, Sequence[int]] | None = None,
    times: tuple[np.ndarray, Sequence[int]] | None = None,
    roots: tuple[np.ndarray, Sequence[int]] | None = None,
) -> list[Structure]:
    """Structures ``sum_k m_k/Q`` (and an intercept) of the best subsets of one to
    :data:`MAX_TERMS` monomials over each denominator ``Q`` of the library
    (:func:`denominators`, with the powers of the ``roots`` columns), the :data:`PER_SIZE`
    best per number of terms. ``extra`` columns
    (values and feature indices) may join a subset as terms of their own, not divided by
    ``Q``: on ``log(y)``, the logarithms of the inputs, so that ``p0*exp(-m*g*h/(k*T))`` is
    ``log(p0) - m*g*h/(k*T)``. ``times`` columns (functions of one input) multiply each
    monomial, as monomials of their own: ``m*g*L - m*g*L*cos(theta)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform([200, 330, 0, 0], [800, 350, 30, 30], size=(200, 4))
    >>> y = x[:, 0] * (x[:, 1] + x[:, 2]) / (x[:, 1] - x[:, 3])
    >>> y = y * (1 + 1e-3 * rng.standard_normal(200))
    >>> c_minus_vs = make_factor([(1, 1), (3, -1)])
    >>> f, c, vo = (make_factor([(i, 1)]) for i in range(3))
    >>> f_c, f_vo = make_term([f, c], [c_minus_vs]), make_term([f, vo], [c_minus_vs])
    >>> make_structure([f_c, f_vo]) in fixed_denominator_structures(x, y, [0, 1, 2, 3], 4)
    True
    """
    rows, n_inputs = inputs.shape
    none = (np.empty((rows, 0)), [])
    extra_values, extra_columns = extra if extra is not None else none
    times_values, times_columns = times if times is not None else none
    root_values, root_columns = roots if roots is not None else none
    finite = finite_rows(target, inputs, extra_values, times_values, root_values)
    if not 0 < n_inputs <= MAX_COLUMNS or finite.sum() < 8:
        return []
    x, t = inputs[finite], target[finite]
    extra_values, times_values = extra_values[finite], times_values[finite]
    root_values = root_values[finite]
    extra_terms = column_terms(extra_columns)
    times_terms = [(), *column_terms(times_columns)]
    root_w = np.ones(len(t)) if weights is None else np.sqrt(weights[finite])
    scales = np.sqrt(np.mean(x**2, axis=0))
    t_scale = np.sqrt(np.mean(t**2))
    if np.any(scales <= 0) or not t_scale > 0:
        return []
    copies = len(times_terms)
    fitting = [d for d in range(MAX_DEGREE + 1) if copies * comb(n_inputs + d, d) <= MAX_MONOMIALS]
    if not fitting:
        return []
    exponents = monomials(n_inputs, max(fitting))
    u = x / scales
    plain = np.column_stack([np.prod(u ** np.array(e), axis=1) for e in exponents])
    times_values = times_values / np.sqrt(np.mean(times_values**2, axis=0))
    # Column j*len(exponents) + k: the monomial k times the function j (0: none).
    values = np.column_stack([plain, *(plain * f[:, None] for f in times_values.T)])
    numerator = [(e, times) for times in times_terms for e in exponents]
    t = t / t_scale * root_w
    total = float(t @ t)
    ranked: dict[int, list[tuple[float, int, tuple[int, ...]]]] = {}
    # With functions multiplying the monomials, the sums below are left to the joint solve:
    # each would cost as much as the plain library over again.
    library = denominators(
        x, columns, constant, sums=not times_columns, roots=(root_values, root_columns)
    )
    for position, (below, q) in enumerate(library):
        q = q / np.sqrt(np.mean(q**2))
        # Over Q = 1 the constant monomial is the intercept itself.
        first = 1 if not below else 0
        design = np.column_stack([np.ones(len(t)), values[:, first:] / q[:, None], extra_values])
        design *= root_w[:, None]
        norms = np.linalg.norm(design, axis=0)
        if np.any(norms <= 0):
            continue
        design /= norms
        best = best_subsets(design.T @ design, design.T @ t, total)
        for size, found in best.items():
            ranked.setdefault(size, []).extend(
                (rss, position, tuple(k - 1 + first for k in subset))
                for rss, subset in found[:PER_SIZE]
                if rss <= LOOSE * total
            )
    offered: dict[Structure, None] = {}
    for size in sorted(ranked):
        for _, position, chosen in sorted(ranked[size])[:PER_SIZE]:
            below = library[position][0]
            terms = (
                monomial_term(numerator[k][0], below, columns, numerator[k][1])
                if k < len(numerator)
                else extra_terms[k - len(numerator)]
                for k in chosen
            )
            structure = make_structure(term for term in terms if term != ())
            if structure:
                offered.setdefault(structure, None)
    return list(offered)
