"""Ratios of polynomials fitted in closed form: a numerator ``P`` and a denominator ``Q``,
each a weighted sum of monomials of the inputs, solved by least squares and made sparse.

A ratio unit (NAU -> NDU, (NMU -> NAU)/NAU) learns which columns its sums read by gradient
descent on the equation error ``mean((P - t*Q)**2) / mean((t*Q)**2)``
(:func:`~nalu_sr.training.fraction_mse`). Once the monomials are fixed, ``P`` and ``Q`` are
linear in their weights, and the minimum of that same loss is a generalised eigenproblem,
solved exactly (the linearised, equation-error fit of rational functions). Over every
monomial up to a degree that is one SVD; where the data are a ratio of polynomials of those
degrees, and the degrees are the least that hold it, the solution is unique and as sparse as
the formula. Sequential thresholding (as in SINDy) then drops the weights too small to matter,
at several thresholds, so that noisy data still yield the sparse forms.

A solved ratio becomes a :class:`~nalu_sr.structure.Structure` when ``Q`` factors into powers
of signed sums of the features (``c - vs``, ``(n - 1)*(R2 - R1)``, ``r1*r2``): each monomial of
``P`` over ``Q`` is one term, whose coefficient least squares refits. That reaches
``f*(c + vo)/(c - vs)``, ``M*m*(1/r1 - 1/r2)``, ``(m1*T1 + m2*T2)/(m1 + m2)`` and
``R1 + R2*R3/(R2 + R3)`` however stiff their input ranges, in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb

import numpy as np
import sympy
from threadpoolctl import threadpool_limits

from ..structure import (
    Factor,
    Structure,
    make_factor,
    make_structure,
    monomial_term,
    monomials,
)
from .space import FeatureTable
from .sparse_ratios import column_terms, finite_rows, fixed_denominator_structures
from .transforms import LOG_TARGET

#: Highest degree of the numerator and of the denominator, and of both together.
MAX_DEGREE = 4
MAX_TOTAL_DEGREE = 6
#: Most monomials in one solve, numerator and denominator together.
MAX_BASIS = 200
#: Relative sizes under which a monomial's share of ``P`` or ``Q`` is dropped, one sparse
#: form per threshold (the smallest keeps the dense solution, already sparse on noise-free
#: data of a formula).
THRESHOLDS = (1e-6, 1e-3, 1e-2, 0.1)
#: Re-solves on the kept monomials per threshold (sequential thresholding).
PASSES = 2
#: Above this relative equation error of the dense solution, the degrees fit the data too
#: poorly for a sparse form of them to be the formula (1% noise leaves about 1e-4).
LOOSE = 1e-2
#: A solve whose relative equation error is below this holds the data: a higher degree only
#: adds common factors to ``P`` and ``Q``, so the scan stops there.
HOLDS = 1e-20
#: Largest integer coefficient of the expanded denominator (``(a + b)**2`` has a 2).
MAX_DENOMINATOR_COEFFICIENT = 6
#: Most terms in a structure offered: a longer sum of monomials is a polynomial fit, not a
#: formula (noise-free data of a formula give its own few terms).
MAX_TERMS = 10
#: Relative singular values below this are taken as a rank deficiency of the monomials.
RANK_TOLERANCE = 1e-13


def _count(n_inputs: int, degree: int) -> int:
    return comb(n_inputs + degree, degree)


def degree_pairs(n_inputs: int, rows: int, extra: int = 0) -> list[tuple[int, int]]:
    """Numerator and denominator degrees to solve for, simplest first (by total degree, then
    the smaller denominator), within :data:`MAX_BASIS` columns and three quarters of the
    ``rows`` (validation rows, not these, tell an overfitted ratio); ``extra`` columns each
    add one per monomial of the denominator."""
    limit = min(MAX_BASIS, rows * 3 // 4)
    pairs = [
        (p, q)
        for p in range(MAX_DEGREE + 1)
        for q in range(MAX_DEGREE + 1)
        if p + q <= MAX_TOTAL_DEGREE
        and _count(n_inputs, p) + (1 + extra) * _count(n_inputs, q) <= limit
    ]
    return sorted(pairs, key=lambda pq: (pq[0] + pq[1], pq[1]))


def _orthonormal(matrix: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the columns of ``matrix`` (rank-deficient directions dropped)."""
    u, s, _ = np.linalg.svd(matrix, full_matrices=False)
    return u[:, s > s[0] * RANK_TOLERANCE] if s.size and s[0] > 0 else u[:, :0]


def solve_ratio(
    numerator: np.ndarray, denominator: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Weights ``a`` and ``b`` minimising ``|N a - t*(D b)|**2 / |t*(D b)|**2`` for monomial
    columns ``N`` and ``D``, and that minimum (the relative equation error); ``None`` where
    ``t*D`` is all zero.

    For fixed ``b`` the best ``a`` is a projection, so the minimum is the smallest singular
    value of ``t*D`` (orthonormalised) with its part in the span of ``N`` removed.
    """
    scaled = target[:, None] * denominator
    u, s, vt = np.linalg.svd(scaled, full_matrices=False)
    if not s.size or s[0] <= 0:
        return None
    keep = s > s[0] * RANK_TOLERANCE
    u, s, vt = u[:, keep], s[keep], vt[keep]
    basis = _orthonormal(numerator)
    rest = u - basis @ (basis.T @ u)
    _, sigma, wt = np.linalg.svd(rest, full_matrices=False)
    b = vt.T @ (wt[-1] / s)
    a = np.linalg.lstsq(numerator, scaled @ b, rcond=None)[0]
    return a, b, float(sigma[-1] ** 2)


def _sparse_forms(
    numerator: np.ndarray, denominator: np.ndarray, target: np.ndarray
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], float]:
    """``(kept numerator monomials, kept denominator monomials, denominator weights)`` at each
    of :data:`THRESHOLDS`, by sequential thresholding of each monomial's share; and the
    relative equation error of the dense solution (infinite where there is none)."""
    dense = solve_ratio(numerator, denominator, target)
    if dense is None:
        return [], np.inf
    if dense[2] > LOOSE:
        return [], dense[2]
    scaled = target[:, None] * denominator
    forms = []
    for threshold in THRESHOLDS:
        p, q = np.arange(numerator.shape[1]), np.arange(denominator.shape[1])
        solved = dense
        for _ in range(PASSES):
            a, b, _ = solved
            share_p = np.abs(a) * np.linalg.norm(numerator[:, p], axis=0)
            share_q = np.abs(b) * np.linalg.norm(scaled[:, q], axis=0)
            top = max(share_p.max(initial=0.0), share_q.max(initial=0.0))
            keep_p, keep_q = share_p > threshold * top, share_q > threshold * top
            if keep_p.all() and keep_q.all():
                break
            if not (keep_p.any() and keep_q.any()):
                solved = None
                break
            p, q = p[keep_p], q[keep_q]
            solved = solve_ratio(numerator[:, p], denominator[:, q], target)
            if solved is None:
                break
        if solved is not None:
            forms.append((p, q, solved[1]))
    return forms, dense[2]


def _signed_sum(poly: sympy.Poly, columns: Sequence[int], constant: int) -> Factor | None:
    """The factor a linear polynomial with coefficients +-1 stands for, else ``None``."""
    if poly.total_degree() != 1:
        return None
    pairs = []
    for exponents, coefficient in poly.terms():
        if abs(coefficient) != 1:
            return None
        sign = int(coefficient)
        if sum(exponents) == 0:
            pairs.append((constant, sign))
        else:
            pairs.append((columns[exponents.index(1)], sign))
    return make_factor(pairs)


def denominator_factors(
    exponents: Sequence[tuple[int, ...]],
    weights: np.ndarray,
    columns: Sequence[int],
    constant: int,
    roots: Mapping[int, sympy.Expr] | None = None,
) -> list[tuple[Factor, int]] | None:
    """``Q = sum(w * monomial)`` (in the inputs' own units) as powers of signed sums of
    features, ``[(factor, power), ...]``, or of ``roots`` (columns holding the square root of
    a polynomial, given in the symbols ``x0, x1, ...`` of ``columns``), a factor ``d**2 + L**2``
    being the square of the column ``sqrt(d**2 + L**2)``; ``None`` where it is not one.

    The weights are divided by the smallest in size and rounded: a product of signed sums
    has integer coefficients when expanded.
    """
    smallest = np.min(np.abs(weights))
    if not np.isfinite(smallest) or smallest <= 0:
        return None
    ratios = weights / smallest
    rounded = np.round(ratios)
    if np.any(np.abs(rounded) > MAX_DENOMINATOR_COEFFICIENT) or np.any(rounded == 0):
        return None
    symbols = sympy.symbols(f"x:{len(columns)}")
    expanded = sympy.Add(
        *(
            int(r) * sympy.Mul(*(s**e for s, e in zip(symbols, powers, strict=True)))
            for r, powers in zip(rounded, exponents, strict=True)
        )
    )
    _, parts = sympy.factor_list(expanded, *symbols)
    factors = []
    for part, power in parts:
        factor = _signed_sum(sympy.Poly(part, *symbols), columns, constant)
        if factor is not None:
            factors.append((factor, power))
            continue
        # A sum of squares (up to its sign) whose root the table holds.
        square = next(
            (
                c
                for c, r in (roots or {}).items()
                if sympy.expand(part - r) == 0 or sympy.expand(part + r) == 0
            ),
            None,
        )
        if square is None:
            return None
        factors.append((make_factor([(square, 1)]), 2 * power))
    return factors


def radicands(table: FeatureTable, columns: Sequence[int]) -> dict[int, sympy.Expr]:
    """The table's roots of sums of squares over ``columns`` only, each as the polynomial
    under its root in the symbols ``x0, x1, ...`` of ``columns`` (see
    :func:`denominator_factors`)."""
    symbols = sympy.symbols(f"x:{len(columns)}")
    local = {table.expressions[c]: s for c, s in zip(columns, symbols, strict=True)}
    return {
        c: table.expressions[c].args[0].xreplace(local)
        for c, used in table.roots.items()
        if set(used) <= set(columns)
    }


@threadpool_limits.wrap(limits=1)  # small SVDs: more threads only contend with the workers
def ratio_structures(
    table: FeatureTable,
    columns: Sequence[int],
    target: np.ndarray,
    transform: str = "y",
    weights: np.ndarray | None = None,
) -> list[Structure]:
    """:func:`rational_structures` over the ``columns`` of ``table`` (inputs, and functions of
    them taken as variables of their own); on ``log(y)`` the numerator also reads the
    logarithms of the inputs where the table has them, so that a power times an exponential,
    ``v**2*exp(-v**2/2)``, is ``2*log(v) - v**2/2`` there. The sparse ratios over a library of
    denominators join them, the functions of the inputs multiplying their monomials
    (:func:`~nalu_sr.search.sparse_ratios.fixed_denominator_structures`): noise moves them
    less, and they reach ``m*g*L*(1 - cos(theta))`` over four inputs; on ``y`` over the plain
    inputs they also divide by the powers of the table's roots of sums of squares."""
    logs = table.functions.get("log", []) if transform == LOG_TARGET else []
    logs = [c for c in logs if c not in columns]
    solved = rational_structures(
        table.values[:, list(columns)],
        target,
        columns,
        table.constant,
        weights,
        extra=(table.values[:, logs], logs),
        roots=radicands(table, columns),
    )
    plain = [c for c in columns if c in table.inputs]
    functions = [c for c in columns if c not in table.inputs]
    # Roots of sums of squares divide y itself, over the plain inputs:
    # V/sqrt(R**2 + X**2), S**2/(K**2 + S**2), q*z/(z**2 + R**2)**(3/2).
    offered = transform == "y" and not functions
    roots = [c for c, used in table.roots.items() if offered and set(used) <= set(plain)]
    fixed = fixed_denominator_structures(
        table.values[:, plain],
        target,
        plain,
        table.constant,
        weights,
        extra=(table.values[:, logs], logs),
        times=(table.values[:, functions], functions),
        roots=(table.values[:, roots], roots),
    )
    return list(dict.fromkeys([*solved, *fixed]))


def rational_structures(
    inputs: np.ndarray,
    target: np.ndarray,
    columns: Sequence[int],
    constant: int,
    weights: np.ndarray | None = None,
    extra: tuple[np.ndarray, Sequence[int]] | None = None,
    roots: Mapping[int, sympy.Expr] | None = None,
) -> list[Structure]:
    """Structures ``sum_k c_k m_k / Q`` of the sparse ratios of polynomials that fit
    ``target`` over ``inputs`` (the feature ``columns``, ``constant`` the column of ones),
    simplest degrees first; row ``weights`` weigh the equation error; ``Q`` factors into
    signed sums and squares of the ``roots`` columns (see :func:`denominator_factors`).
    ``extra`` columns (values and feature indices) join the numerator times each monomial of
    the denominator's basis, so that ``P/Q + f`` is one ratio: ``log(s) - (x - m)**2/(2*s**2)`` has
    ``Q = s**2`` and ``log(s)*s**2`` in ``P``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(1, 2, size=(60, 2))
    >>> found = rational_structures(x, x[:, 0] / (x[:, 0] + x[:, 1]), [0, 1], 2)
    >>> from nalu_sr.structure import make_term
    >>> a, a_plus_b = make_factor([(0, 1)]), make_factor([(0, 1), (1, 1)])
    >>> (make_term([a], [a_plus_b]),) in found
    True
    """
    rows, n_inputs = inputs.shape
    extra_values, extra_columns = extra if extra is not None else (np.empty((rows, 0)), [])
    finite = finite_rows(target, inputs, extra_values)
    if n_inputs == 0 or finite.sum() < 4:
        return []
    scales = np.sqrt(np.mean(inputs[finite] ** 2, axis=0))
    if np.any(scales <= 0):
        return []
    t_scale = np.sqrt(np.mean(target[finite] ** 2))
    if not t_scale > 0:
        return []
    u = inputs[finite] / scales
    extra_values = extra_values[finite]
    extra_values = extra_values / np.where(
        np.std(extra_values, axis=0) > 0, np.std(extra_values, axis=0), 1.0
    )
    extra_terms = column_terms(extra_columns)
    root_w = np.ones(u.shape[0]) if weights is None else np.sqrt(weights[finite])
    t = target[finite] / t_scale * root_w
    pairs = degree_pairs(n_inputs, int(finite.sum()), len(extra_columns))
    if not pairs:
        return []
    top = max(max(p, q) for p, q in pairs)
    exponents = monomials(n_inputs, top)
    values = np.column_stack([np.prod(u ** np.array(e), axis=1) for e in exponents])
    # Weights are in the scaled inputs' units; a monomial's weight in the inputs' own units
    # is divided by the scales to its powers.
    unit = np.array([np.prod(scales ** np.array(e)) for e in exponents])
    found: dict[Structure, None] = {}
    for p_degree, q_degree in pairs:
        # Rows weighted by the square roots of their weights: P's columns and t (the target
        # times the denominator's columns), not the denominator's columns twice.
        n_p = _count(n_inputs, p_degree)
        n_q = _count(n_inputs, q_degree)
        # Column n_p + j*n_q + m: the extra column j times the denominator's monomial m.
        times = (extra_values[:, :, None] * values[:, None, :n_q]).reshape(len(values), -1)
        numerator = np.column_stack([values[:, :n_p], times]) * root_w[:, None]
        denominator = values[:, :n_q]
        try:
            forms, dense = _sparse_forms(numerator, denominator, t)
        except np.linalg.LinAlgError:  # an SVD that does not converge on degenerate columns
            continue
        for kept_p, kept_q, b in forms:
            if len(kept_p) > MAX_TERMS:
                continue
            below = denominator_factors(
                [exponents[k] for k in kept_q], b / unit[kept_q], columns, constant, roots
            )
            if below is None:
                continue
            terms = (
                monomial_term(exponents[k], below, columns)
                if k < n_p
                else monomial_term(
                    exponents[(k - n_p) % n_q],
                    below,
                    columns,
                    extra_terms[(k - n_p) // n_q],
                )
                for k in kept_p
            )
            # The constant term is the intercept every structure is fitted with.
            structure = make_structure(term for term in terms if term != ())
            if structure:
                found.setdefault(structure, None)
        if dense < HOLDS:
            break
    return list(found)
