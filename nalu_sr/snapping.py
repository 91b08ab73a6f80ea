"""From a trained stack of units to the discrete structures it may stand for.

Snapping rounds every weight to its nearest discrete value. A weight that training left
undecided (far from every discrete value) is also tried at its second-nearest value, so one
trained network yields several candidate structures; the scorer decides between them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .structure import Structure, Term, make_factor, make_structure, make_term
from .units import NALU, ArithmeticUnit

#: A weight further than this from its nearest discrete value counts as undecided.
UNDECIDED = 0.2

#: Most features a snapped sum is split into, one fitted coefficient each. A fit with many
#: free coefficients can pass for a formula on noisy data: at 1% noise, a linear fit of the
#: product of two 25-input sums on [1, 2] matches within the noise.
MAX_SEPARATE_TERMS = 10


def discrete_alternatives(
    weight: Tensor,
    targets: Sequence[float],
    *,
    undecided: float = UNDECIDED,
    max_alternatives: int = 16,
) -> list[Tensor]:
    """Discrete versions of ``weight``, most plausible first.

    The first is the nearest snap. Each undecided entry (distance to its nearest target above
    ``undecided``) may also take its second-nearest target; the combinations are ordered by
    their total distance from ``weight``, and at most ``max_alternatives`` are returned.

    Examples
    --------
    >>> w = torch.tensor([[0.98, 0.45, -0.02]])
    >>> [a.tolist() for a in discrete_alternatives(w, (-1, 0, 1))]
    [[[1.0, 0.0, 0.0]], [[1.0, 1.0, 0.0]]]
    """
    grid = torch.as_tensor(targets, dtype=weight.dtype)
    distance = (weight.unsqueeze(-1) - grid).abs()
    order = distance.argsort(dim=-1)
    nearest = grid[order[..., 0]]
    second = grid[order[..., 1]]
    gap = distance.gather(-1, order[..., 1:2]).squeeze(-1) - distance.gather(
        -1, order[..., 0:1]
    ).squeeze(-1)
    nearest_distance = distance.gather(-1, order[..., 0:1]).squeeze(-1)
    flat_uncertain = torch.nonzero((nearest_distance > undecided).flatten()).flatten()
    # The least decided entries first; keep only as many as the budget can enumerate.
    budget = max(0, int(np.floor(np.log2(max(1, max_alternatives)))))
    flat_gap = gap.flatten()
    uncertain = sorted(flat_uncertain.tolist(), key=lambda i: float(flat_gap[i]))[:budget]
    options = []
    for flips in itertools.product((False, True), repeat=len(uncertain)):
        cost = sum(float(flat_gap[i]) for i, flip in zip(uncertain, flips) if flip)
        options.append((cost, flips))
    options.sort(key=lambda item: item[0])
    alternatives = []
    for _, flips in options[:max_alternatives]:
        snapped = nearest.clone().flatten()
        for i, flip in zip(uncertain, flips):
            if flip:
                snapped[i] = second.flatten()[i]
        alternatives.append(snapped.reshape(weight.shape))
    return alternatives


def _signed_factor(row: Tensor, columns: Sequence[int]) -> tuple:
    return make_factor((columns[i], int(w)) for i, w in enumerate(row.tolist()) if w != 0)


def _selected(row: Tensor) -> list[int]:
    return [i for i, w in enumerate(row.tolist()) if w != 0]


def _product_factors(row: Tensor, columns: Sequence[int]) -> list:
    return [make_factor([(columns[i], 1)]) for i in _selected(row)]


def _layer_alternatives(unit: ArithmeticUnit, budget: int) -> list[Tensor]:
    return discrete_alternatives(
        unit.effective_weight().detach(), unit.snap_targets, max_alternatives=budget
    )


def nau_nmu_structures(
    kind: str, layers: Sequence[ArithmeticUnit], columns: Sequence[int], budget: int
) -> list[Structure]:
    """Structures of a snapped NAU / NMU stack (``kind`` as in :class:`Architecture`)."""
    per_layer = max(1, int(round(budget ** (1 / len(layers)))))
    alternatives = [_layer_alternatives(unit, per_layer) for unit in layers]
    structures = []
    for weights in itertools.product(*alternatives):
        if kind == "nau":
            terms = [make_term([_signed_factor(weights[0][0], columns)])]
        elif kind == "nmu":
            terms = [make_term(_product_factors(weights[0][0], columns))]
        elif kind == "nau-nmu":
            hidden = [_signed_factor(row, columns) for row in weights[0]]
            terms = [make_term([hidden[k] for k in _selected(weights[1][0])])]
        elif kind == "nmu-nau":
            terms = [
                make_term(_product_factors(weights[0][k], columns))
                for k in _selected(weights[1][0])
            ]
        else:
            raise ValueError(f"unknown architecture kind {kind!r}")
        structures.append(make_structure(t for t in terms if t))
    return structures


def nalu_structures(
    layers: Sequence[NALU],
    columns: Sequence[int],
    reciprocal_of: dict[int, int],
    x: Tensor,
) -> list[Structure]:
    """Structures of a snapped stack of one or two NALUs over positive inputs.

    A multiplicative path with weight -1 on an input reads that input's reciprocal column; a
    second-layer division by a hidden sum has no such structure and yields nothing.
    """
    snapped = []
    for unit in layers:
        snapped.append(unit.snap(x))
        x = unit(x)
    # Hidden values as terms: each hidden unit is a list of terms (a sum) or a single product.
    first = snapped[0]
    hidden: list[list[Term] | None] = []
    for row, gate in zip(first["weight"], first["gate"].tolist()):
        if gate >= 0.5:
            hidden.append([make_term([_signed_factor(row, columns)])])
        else:
            factors = []
            for i, w in enumerate(row.tolist()):
                if w > 0:
                    factors.append(make_factor([(columns[i], 1)]))
                elif w < 0:
                    if columns[i] not in reciprocal_of:
                        factors = None
                        break
                    factors.append(make_factor([(reciprocal_of[columns[i]], 1)]))
            hidden.append([make_term(factors)] if factors is not None else None)
    if len(snapped) == 1:
        return [make_structure(hidden[0])] if hidden[0] is not None else []
    second = snapped[1]
    row, gate = second["weight"][0].tolist(), float(second["gate"][0])
    used = [k for k, w in enumerate(row) if w != 0]
    if any(hidden[k] is None for k in used):
        return []
    if gate >= 0.5:  # a sum of hidden values
        return [make_structure(term for k in used for term in hidden[k])]
    if any(w < 0 for w in row):
        return []
    # A product of hidden values: each must be a single factor (a sum) or a product.
    factors = []
    for k in used:
        (term,) = hidden[k] if len(hidden[k]) == 1 else (None,)
        if term is None:
            return []
        factors.extend(term)
    return [make_structure([make_term(factors)])]


def network_structures(
    kind: str,
    network: nn.Module,
    columns: Sequence[int],
    *,
    reciprocal_of: dict[int, int] | None = None,
    x: Tensor | None = None,
    budget: int = 16,
    constant: int | None = None,
) -> list[Structure]:
    """All candidate structures of one trained network, most plausible first, deduplicated.

    ``constant`` is the feature column of ones. A sum's weight on it barely moves the loss
    when the inputs are large, so it may snap to +-1 by chance: each structure that uses it is
    also offered without it. A single NAU's sum of at most ``MAX_SEPARATE_TERMS`` features is
    also offered as separate terms, one per feature, so that least squares gives each its own
    coefficient (``a - 2*b + 3`` has weights of unequal size, which no snapped sum holds).
    """
    layers = [m for m in network.modules() if isinstance(m, ArithmeticUnit)]
    if kind.startswith("nalu"):
        found = nalu_structures(layers, columns, reciprocal_of or {}, x)
    else:
        found = nau_nmu_structures(kind, layers, columns, budget)
    if constant is not None:
        found = [variant for s in found for variant in (s, without_feature(s, constant))]
    if kind == "nau":
        separated = (separate_terms(s, constant) for s in found)
        found += [s for s in separated if len(s) <= MAX_SEPARATE_TERMS]
    unique = dict.fromkeys(s for s in found if s)
    return list(unique)


def separate_terms(structure: Structure, constant: int | None = None) -> Structure:
    """Every feature of ``structure``'s signed sums as a term of its own (the constant column
    left out: the fitted offset stands for it).

    Examples
    --------
    >>> separate_terms(((((0, 1), (1, -1), (2, 1)),),), constant=2)
    ((((0, 1),),), (((1, 1),),))
    """
    features = {i for term in structure for factor in term for i, _ in factor} - {constant}
    return make_structure(make_term([make_factor([(i, 1)])]) for i in sorted(features))


def without_feature(structure: Structure, feature: int) -> Structure:
    """``structure`` with ``feature`` dropped from every signed sum."""
    return make_structure(
        make_term(make_factor(p for p in factor if p[0] != feature) for factor in term)
        for term in structure
    )
