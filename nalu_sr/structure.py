"""The discrete form every snapped network is reduced to: a sum of products of powers of
signed sums.

A snapped stack of arithmetic units computes

.. math::
    y = c_0 + \\sum_t c_t \\prod_k \\Big(\\sum_j s_{tkj} f_j\\Big)^{e_{tk}},
    \\qquad s_{tkj} \\in \\{-1, 0, 1\\}, \\quad e_{tk} \\in \\mathbb{Z} \\setminus \\{0\\},

over a table of *features* ``f`` (the inputs, their reciprocals where allowed, a constant 1).
NAU is one term with one factor, NMU one term of single-feature factors, NAU→NMU one term of
several factors, NMU→NAU several terms, and a ratio unit divides by sums (negative ``e``). The
coefficients ``c`` (output scale and offset) are not part of the structure: they are fitted by
least squares after snapping.

Representation (hashable, so candidates deduplicate by structure before any SymPy work):

- a *factor* is a sorted tuple of ``(feature_index, sign)`` pairs, ``sign`` in {-1, 1};
- a *power* is a ``(factor, exponent)`` pair, ``exponent`` a non-zero integer (``x*x`` is
  ``(x, 2)``, a division by ``a + b`` is ``(a + b, -1)``);
- a *term* is a sorted tuple of powers of distinct factors (the empty term is the constant 1);
- a *structure* is a sorted tuple of terms.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

Factor = tuple[tuple[int, int], ...]
Power = tuple[Factor, int]
Term = tuple[Power, ...]
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


def make_term(factors: Iterable[Factor], denominators: Iterable[Factor] = ()) -> Term | None:
    """A canonical term: the product of ``factors`` divided by that of ``denominators``.

    ``None`` when a factor is empty (an empty sum is 0: the product is identically 0, or the
    division undefined). Overall signs are taken out of each factor: they are absorbed by the
    fitted coefficient. Repeated factors become powers; a factor in both lists cancels.
    """
    powers = [(f, 1) for f in factors] + [(f, -1) for f in denominators]
    return raise_term(powers)


def raise_term(powers: Iterable[tuple[Factor, int]]) -> Term | None:
    """A canonical term from ``(factor, exponent)`` pairs (see :func:`make_term`)."""
    exponents: dict[Factor, int] = {}
    for factor, exponent in powers:
        if not factor:
            return None
        base = canonical_factor(factor)[0]
        exponents[base] = exponents.get(base, 0) + int(exponent)
    return tuple(sorted((f, e) for f, e in exponents.items() if e != 0))


def make_structure(terms: Iterable[Term | None]) -> Structure:
    """A canonical structure: empty terms dropped, duplicates merged, terms sorted."""
    return tuple(sorted({t for t in terms if t is not None}))


def factors(structure: Structure) -> Iterator[Factor]:
    """Every factor of every term, once per term it appears in."""
    return (factor for term in structure for factor, _ in term)


def denominators(structure: Structure) -> set[Factor]:
    """The factors that ``structure`` divides by (negative exponents)."""
    return {factor for term in structure for factor, exponent in term if exponent < 0}


def features_used(structure: Structure) -> set[int]:
    return {i for factor in factors(structure) for i, _ in factor}


def monomials(n_inputs: int, degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples of every monomial of ``n_inputs`` inputs up to ``degree``, by degree.

    Examples
    --------
    >>> monomials(2, 2)
    [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]
    """
    found = []
    for d in range(degree + 1):
        for chosen in itertools.combinations_with_replacement(range(n_inputs), d):
            exponents = [0] * n_inputs
            for i in chosen:
                exponents[i] += 1
            found.append(tuple(exponents))
    return found


def monomial_term(
    powers: Sequence[int],
    below: Iterable[tuple[Factor, int]],
    columns: Sequence[int],
    times: Term = (),
) -> Term | None:
    """The monomial with exponents ``powers`` of the features ``columns`` (times the term
    ``times``), divided by the factors ``below`` raised to their powers."""
    above = [(make_factor([(c, 1)]), e) for c, e in zip(columns, powers, strict=True) if e]
    return raise_term([*times, *above, *((factor, -power) for factor, power in below)])
