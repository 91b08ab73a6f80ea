"""Compiled backend: one Numba kernel, parallel over candidates.

Each candidate makes two passes over the rows in blocks of :data:`BLOCK`: the first accumulates
the Gram matrix of ``[1, terms, y]`` on the training rows, the second the residual statistics of
every split (both weighted by the rows' weights, when there are any). Only a block of term
values is ever held, never a candidates-by-rows array. Sums over rows keep
:data:`~nalu_sr.scoring.rows.LANES` partial sums, as :func:`~nalu_sr.scoring.rows.lane_sum` does
for NumPy. Importing this module imports Numba; compiling happens on the first call and is
cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .normal_equations import solve_normal_equations
from .packing import PackedCandidates
from .rows import LANES, SplitRows

#: Rows per block: the block's term values stay in the first-level cache. A multiple of LANES.
BLOCK = 256

_solve = njit(cache=True)(solve_normal_equations)


def residual_sums(
    packed: PackedCandidates,
    rows: SplitRows,
    coefficients: np.ndarray,
    fit: bool,
    fit_intercept: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as :func:`nalu_sr.scoring.numpy_backend.residual_sums`."""
    n = packed.n_candidates
    square_sum = np.zeros((n, 3))
    max_abs = np.zeros((n, 3))
    structures = (
        packed.term_offsets,
        packed.factor_offsets,
        packed.entry_offsets,
        np.ascontiguousarray(packed.feature, dtype=np.int32),
        np.ascontiguousarray(packed.sign, dtype=np.int8),
        np.ascontiguousarray(packed.power, dtype=np.int8),
    )
    # An empty array stands for no weights: the kernel takes the same types either way.
    weights = np.empty(0) if rows.weights is None else rows.weights
    _kernel(
        structures,
        (rows.features, rows.y, rows.offsets, weights),
        bool(fit),
        np.ascontiguousarray(fit_intercept, dtype=np.bool_),
        coefficients,
        square_sum,
        max_abs,
    )
    return square_sum, max_abs


def compiled_kernel() -> numba.core.registry.CPUDispatcher:
    """The kernel's dispatcher, whose ``stats`` tell whether it came from the disk cache."""
    return _kernel


@njit(cache=True)
def _term_block(features, start, n, t, structures, scratch, out):
    """``out[:n]`` = term ``t`` of ``structures`` (the packed arrays, see :func:`_kernel`) on
    rows ``start:start + n``; ``scratch`` is space for two blocks (a factor, a power's base).

    The first factor is built in ``out`` itself and each factor starts from its first entry,
    which saves a pass over the block each; NumPy's ``term_values`` does the same.
    """
    _, factor_offsets, entry_offsets, feature, sign, power = structures
    factor = scratch[0]
    if factor_offsets[t] == factor_offsets[t + 1]:
        for r in range(n):
            out[r] = 1.0
    for f in range(factor_offsets[t], factor_offsets[t + 1]):
        target = out if f == factor_offsets[t] else factor
        first, last = entry_offsets[f], entry_offsets[f + 1]
        if first == last:
            for r in range(n):
                target[r] = 0.0
        for e in range(first, last):
            # A slice, not features[i, start + r]: its indices are provably in range, so the
            # loop compiles to SIMD instructions.
            column = features[feature[e], start : start + n]
            if e == first:
                if sign[e] > 0:
                    for r in range(n):
                        target[r] = column[r]
                else:
                    for r in range(n):
                        target[r] = -column[r]
            elif sign[e] > 0:
                for r in range(n):
                    target[r] += column[r]
            else:
                for r in range(n):
                    target[r] -= column[r]
        if power[f] != 1:
            _raise(target, n, power[f], scratch[1])
        if f != factor_offsets[t]:
            for r in range(n):
                out[r] *= factor[r]


@njit(cache=True, error_model="numpy")
def _raise(values, n, exponent, scratch):
    """``values[:n] **= exponent`` in :func:`~nalu_sr.scoring.powers.raised`'s order of
    operations; ``scratch`` is space for the base."""
    for r in range(n):
        scratch[r] = values[r]
    for _ in range(abs(exponent) - 1):
        for r in range(n):
            values[r] *= scratch[r]
    if exponent < 0:
        for r in range(n):
            values[r] = 1.0 / values[r]


@njit(cache=True)
def _add_products(a, b, n, lanes):
    """``lanes[l] += a[r] * b[r]`` for every ``r < n`` with ``r % LANES == l``."""
    for g in range(0, n, LANES):
        for lane in range(LANES):
            lanes[lane] += a[g + lane] * b[g + lane]


@njit(cache=True)
def _add_weighted_products(a, b, w, n, lanes):
    """``lanes[l] += a[r] * b[r] * w[r]`` (multiplied in that order, as NumPy's backend does)
    for every ``r < n`` with ``r % LANES == l``."""
    for g in range(0, n, LANES):
        for lane in range(LANES):
            lanes[lane] += a[g + lane] * b[g + lane] * w[g + lane]


@njit(cache=True)
def _fill_weights(weights, start, n, filled, out):
    """``out[:filled]`` = the weights of rows ``start:start + n``, then zeros."""
    for r in range(n):
        out[r] = weights[start + r]
    for r in range(n, filled):
        out[r] = 0.0


@njit(cache=True)
def _largest(values, n, lanes):
    """``lanes[l] = max(lanes[l], |values[r]|)`` for every ``r < n`` with ``r % LANES == l``."""
    for g in range(0, n, LANES):
        for lane in range(LANES):
            size = abs(values[g + lane])
            if size > lanes[lane]:
                lanes[lane] = size


@njit(cache=True)
def _fold(lanes):
    """The lanes added in order, as :func:`~nalu_sr.scoring.rows.lane_sum` does."""
    total = 0.0
    for lane in range(LANES):
        total += lanes[lane]
    return total


@njit(parallel=True, cache=True)
def _kernel(structures, rows, fit, fit_intercept, coefficients, square_sum, max_abs):
    # structures: (term_offsets, factor_offsets, entry_offsets, feature, sign, power) as packed;
    # rows: (features, y, offsets, weights) grouped by split; weights empty for none.
    term_offsets = structures[0]
    features, y, offsets, weights = rows
    weighted = weights.size > 0
    for c in prange(term_offsets.size - 1):
        first = term_offsets[c]
        n_terms = term_offsets[c + 1] - first
        k = n_terms + 2
        # Rows of the design block: the constant 1, the terms, then y. A block is filled up to
        # a whole number of lanes; the rows past its end are zeros, which add nothing.
        design = np.zeros((k, BLOCK))
        scratch = np.empty((2, BLOCK))
        prediction = np.empty(BLOCK)
        residual = np.zeros(BLOCK)
        block_weights = np.zeros(BLOCK)
        coef = coefficients[c]

        if fit:
            gram_lanes = np.zeros((k * (k + 1) // 2, LANES))
            for start in range(offsets[0], offsets[1], BLOCK):
                n = min(BLOCK, offsets[1] - start)
                filled = -(-n // LANES) * LANES
                for r in range(n):
                    design[0, r] = 1.0
                    design[k - 1, r] = y[start + r]
                for i in range(n_terms):
                    _term_block(features, start, n, first + i, structures, scratch, design[i + 1])
                for i in range(k):
                    for r in range(n, filled):
                        design[i, r] = 0.0
                if weighted:
                    _fill_weights(weights, start, n, filled, block_weights)
                pair = 0
                for i in range(k):
                    for j in range(i, k):
                        if weighted:
                            _add_weighted_products(
                                design[i], design[j], block_weights, filled, gram_lanes[pair]
                            )
                        else:
                            _add_products(design[i], design[j], filled, gram_lanes[pair])
                        pair += 1
            gram = np.zeros((k, k))
            pair = 0
            for i in range(k):
                for j in range(i, k):
                    gram[i, j] = _fold(gram_lanes[pair])
                    pair += 1
            _solve(gram, fit_intercept[c], coef)

        for s in range(3):
            squares = np.zeros(LANES)
            largest = np.zeros(LANES)
            for start in range(offsets[s], offsets[s + 1], BLOCK):
                n = min(BLOCK, offsets[s + 1] - start)
                for r in range(n):
                    prediction[r] = coef[0]
                for i in range(n_terms):
                    weight = coef[i + 1]
                    if weight != 0.0:
                        values = design[i + 1]
                        _term_block(features, start, n, first + i, structures, scratch, values)
                        for r in range(n):
                            prediction[r] += weight * values[r]
                targets = y[start : start + n]
                for r in range(n):
                    residual[r] = targets[r] - prediction[r]
                filled = -(-n // LANES) * LANES
                for r in range(n, filled):
                    residual[r] = 0.0
                if weighted:
                    _fill_weights(weights, start, n, filled, block_weights)
                    _add_weighted_products(residual, residual, block_weights, filled, squares)
                else:
                    _add_products(residual, residual, filled, squares)
                _largest(residual, filled, largest)
            square_sum[c, s] = _fold(squares)
            max_abs[c, s] = largest.max()
