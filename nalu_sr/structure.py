"""The discrete form every snapped network is reduced to: a sum of products of signed sums.

A snapped stack of arithmetic units computes

.. math::
    y = c_0 + \\sum_t c_t \\prod_k \\Big(\\sum_j s_{tkj} f_j\\Big),
    \\qquad s_{tkj} \\in \\{-1, 0, 1\\},

over a table of *features* ``f`` (the inputs, their reciprocals where allowed, a constant 1).
NAU is one term with one factor, NMU one term of single-feature factors, NAU→NMU one term of
several factors, NMU→NAU several terms. The coefficients ``c`` (output scale and offset) are not
part of the structure: they are fitted by least squares after snapping.

Representation (hashable, so candidates deduplicate by structure before any SymPy work):

- a *factor* is a sorted tuple of ``(feature_index, sign)`` pairs, ``sign`` in {-1, 1};
- a *term* is a sorted tuple of factors (repeats allowed: ``x*x`` is two equal factors);
- a *structure* is a sorted tuple of terms.
"""

from __future__ import annotations

from collections.abc import Iterable

Factor = tuple[tuple[int, int], ...]
Term = tuple[Factor, ...]
Structure = tuple[Term, ...]


def make_factor(pairs: Iterable[tuple[int, int]]) -> Factor:
    """A canonical factor from ``(feature_index, sign)`` pairs; zero signs are dropped."""
    merged: dict[int, int] = {}
    for index, sign in pairs:
        merged[int(index)] = merged.get(int(index), 0) + int(sign)
    if any(abs(s) > 1 for s in merged.values()):
        raise ValueError("a factor's weights must be -1, 0 or 1; a feature appeared twice.")
    return tuple(sorted((i, s) for i, s in merged.items() if s != 0))


def canonical_factor(factor: Factor) -> tuple[Factor, int]:
    """``factor`` with its first sign made positive, and the sign taken out (-1 or 1)."""
    if factor and factor[0][1] < 0:
        return tuple((i, -s) for i, s in factor), -1
    return factor, 1


def make_term(factors: Iterable[Factor]) -> Term | None:
    """A canonical term; ``None`` when a factor is empty (the product is identically 0).

    Overall signs are taken out of each factor: they are absorbed by the fitted coefficient.
    """
    canonical = []
    for factor in factors:
        if not factor:
            return None
        canonical.append(canonical_factor(factor)[0])
    return tuple(sorted(canonical))


def make_structure(terms: Iterable[Term | None]) -> Structure:
    """A canonical structure: empty terms dropped, duplicates merged, terms sorted."""
    return tuple(sorted({t for t in terms if t is not None}))


def n_features_used(structure: Structure) -> int:
    return len({i for term in structure for factor in term for i, _ in factor})


def structure_size(structure: Structure) -> int:
    """A cheap complexity proxy: the number of feature entries in the structure."""
    return sum(len(factor) for term in structure for factor in term)
