"""Many candidate structures as a handful of flat integer arrays.

A :class:`~nalu_sr.structure.Structure` is a nested tuple (terms of powers of factors of signed
feature entries). Scoring thousands of them in compiled code needs the nesting as offsets
instead, the layout sparse matrices use (CSR): each level stores where its children start and
stop in the level below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..structure import Structure

#: Largest size of a factor's exponent (they are stored as int8).
MAX_EXPONENT = 127


@dataclass(frozen=True)
class PackedCandidates:
    """Candidate structures flattened into offset arrays.

    Candidate ``c`` owns terms ``term_offsets[c]:term_offsets[c + 1]``, term ``t`` owns
    factors ``factor_offsets[t]:factor_offsets[t + 1]`` and factor ``f`` owns entries
    ``entry_offsets[f]:entry_offsets[f + 1]``. Entry ``e`` adds
    ``sign[e] * features[:, feature[e]]`` to its factor's sum, and the term multiplies its
    factors' sums, each raised to ``power[f]``. Build it with :func:`pack`.

    Attributes
    ----------
    term_offsets : ndarray of int64, shape (n_candidates + 1,)
    factor_offsets : ndarray of int64, shape (n_terms_total + 1,)
    entry_offsets : ndarray of int64, shape (n_factors_total + 1,)
    feature : ndarray of int32, shape (n_entries,)
        Column of the feature table each entry reads.
    sign : ndarray of int8, shape (n_entries,)
        -1 or 1.
    power : ndarray of int8, shape (n_factors_total,)
        Non-zero integer exponent of each factor.
    """

    term_offsets: np.ndarray
    factor_offsets: np.ndarray
    entry_offsets: np.ndarray
    feature: np.ndarray
    sign: np.ndarray
    power: np.ndarray

    @property
    def n_candidates(self) -> int:
        return int(self.term_offsets.size - 1)

    @property
    def n_terms(self) -> np.ndarray:
        """Number of terms of each candidate, shape (n_candidates,)."""
        return np.diff(self.term_offsets)

    @property
    def max_terms(self) -> int:
        """The largest number of terms of any candidate (0 when there are none)."""
        return int(self.n_terms.max()) if self.n_candidates else 0

    @property
    def n_features_required(self) -> int:
        """Columns a feature table needs for every entry to be in range."""
        return int(self.feature.max()) + 1 if self.feature.size else 0

    def __len__(self) -> int:
        return self.n_candidates

    def subset(self, candidates: np.ndarray | slice) -> PackedCandidates:
        """The candidates selected by ``candidates`` (indices or a slice), packed again."""
        return pack([self.structure(c) for c in np.arange(self.n_candidates)[candidates]])

    def structure(self, candidate: int) -> Structure:
        """Candidate ``candidate`` as a nested tuple, the inverse of :func:`pack`."""
        terms = []
        for t in range(self.term_offsets[candidate], self.term_offsets[candidate + 1]):
            factors = []
            for f in range(self.factor_offsets[t], self.factor_offsets[t + 1]):
                entries = range(self.entry_offsets[f], self.entry_offsets[f + 1])
                pairs = tuple((int(self.feature[e]), int(self.sign[e])) for e in entries)
                factors.append((pairs, int(self.power[f])))
            terms.append(tuple(factors))
        return tuple(terms)


def pack(structures: Sequence[Structure]) -> PackedCandidates:
    """Flatten candidate structures into a :class:`PackedCandidates`.

    Terms, factors and entries keep the order they have in each structure. An empty term is the
    constant 1 (an empty product) and an empty factor the constant 0 (an empty sum); canonical
    structures from :func:`~nalu_sr.structure.make_structure` may hold the empty term (a
    product whose factors cancelled) but never an empty factor.

    Parameters
    ----------
    structures : sequence of Structure
        Each a tuple of terms, each term a tuple of ``(factor, exponent)`` powers, each factor
        a tuple of ``(feature_index, sign)`` pairs with ``feature_index >= 0`` and ``sign`` -1
        or 1, each exponent a non-zero integer.

    Returns
    -------
    PackedCandidates

    Examples
    --------
    >>> x0 = ((((0, 1),), 1),)  # a term with one factor, the sum 1 * f0
    >>> over_x1_minus_x2 = ((((1, 1), (2, -1)), -1),)  # 1 / (f1 - f2)
    >>> packed = pack([(x0, over_x1_minus_x2), ()])  # two terms, then an empty structure
    >>> packed.n_terms.tolist(), packed.feature.tolist(), packed.sign.tolist()
    ([2, 0], [0, 1, 2], [1, 1, -1])
    >>> packed.power.tolist()
    [1, -1]
    """
    term_sizes: list[int] = []
    factor_sizes: list[int] = []
    entry_sizes: list[int] = []
    features: list[int] = []
    signs: list[int] = []
    powers: list[int] = []
    for c, structure in enumerate(structures):
        term_sizes.append(len(structure))
        for term in structure:
            factor_sizes.append(len(term))
            for factor, power in term:
                if power == 0 or abs(power) > MAX_EXPONENT:
                    raise ValueError(
                        f"candidate {c} raises a factor to the power {power}; exponents need "
                        f"to be non-zero integers of at most {MAX_EXPONENT} in size."
                    )
                powers.append(power)
                entry_sizes.append(len(factor))
                for index, sign in factor:
                    if sign not in (-1, 1) or index < 0:
                        raise ValueError(
                            f"candidate {c} has the entry (feature={index}, sign={sign}); "
                            "entries need a feature index >= 0 and a sign of -1 or 1."
                        )
                    features.append(index)
                    signs.append(sign)
    return PackedCandidates(
        term_offsets=_offsets(term_sizes),
        factor_offsets=_offsets(factor_sizes),
        entry_offsets=_offsets(entry_sizes),
        feature=np.asarray(features, dtype=np.int32),
        sign=np.asarray(signs, dtype=np.int8),
        power=np.asarray(powers, dtype=np.int8),
    )


def unpack(packed: PackedCandidates) -> list[Structure]:
    """The structures :func:`pack` flattened, in their original order."""
    return [packed.structure(c) for c in range(packed.n_candidates)]


def _offsets(sizes: list[int]) -> np.ndarray:
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return offsets
