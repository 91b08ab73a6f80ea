"""From a trained stack of units to the discrete structures it may stand for.

Snapping rounds every weight to its nearest discrete value. A weight that training left
undecided (far from every discrete value) is also tried at its second-nearest value, so one
trained network yields several candidate structures; the scorer decides between them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from .structure import (
    Structure,
    Term,
    features_used,
    make_factor,
    make_structure,
    make_term,
    raise_term,
)
from .units import NALU, NAU, NFU, NMU, ArithmeticUnit

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


def signed_factor(row: Tensor, columns: Sequence[int]) -> tuple:
    """The signed sum of ``columns`` that a snapped NAU row stands for."""
    return make_factor((columns[i], int(w)) for i, w in enumerate(row.tolist()) if w != 0)


def selected(row: Tensor) -> list[int]:
    """Positions of a snapped row's non-zero weights."""
    return [i for i, w in enumerate(row.tolist()) if w != 0]


def product_factors(row: Tensor, columns: Sequence[int]) -> list:
    """The single-column factors that a snapped NMU row multiplies."""
    return [make_factor([(columns[i], 1)]) for i in selected(row)]


@dataclass(frozen=True)
class SnapInputs:
    """What snapping a trained network needs besides the network.

    Attributes
    ----------
    columns : sequence of int
        Feature columns fed to the first unit, in order.
    reciprocal_of : dict of int to int
        For each input column offered as a reciprocal, the column holding ``1/x``.
    x : Tensor or None
        The (scaled) training inputs, for units whose snapped form depends on them (NALU).
    budget : int
        Most alternative snaps tried per network.
    constant : int or None
        The feature column of ones.
    column_scales : ndarray or None
        The scale each column was divided by in training, for units whose snapped form
        keeps a trained constant (the function unit's rate).
    """

    columns: Sequence[int]
    reciprocal_of: dict[int, int] = field(default_factory=dict)
    x: Tensor | None = None
    budget: int = 16
    constant: int | None = None
    column_scales: np.ndarray | None = None


#: Terms of one discrete choice of every layer's weights, given what snapping reads (the first
#: unit's columns above all).
Compose = Callable[[Sequence[Tensor], SnapInputs], list[Term | None]]


def weight_alternatives(
    layers: Sequence[ArithmeticUnit], budget: int, scale_free: Sequence[int] = ()
) -> Iterator[tuple]:
    """Every combination of the layers' alternative snaps (about ``budget`` in all).

    The rows of the layers in ``scale_free`` are first divided by their largest weight in
    size (see :func:`scale_free_rows`).
    """
    per_layer = max(1, int(round(budget ** (1 / len(layers)))))
    alternatives = []
    for index, unit in enumerate(layers):
        weight = unit.effective_weight().detach()
        if index in scale_free:
            weight = scale_free_rows(weight)
        alternatives.append(
            discrete_alternatives(weight, unit.snap_targets, max_alternatives=per_layer)
        )
    return itertools.product(*alternatives)


def scale_free_rows(weight: Tensor) -> Tensor:
    """Each row of ``weight`` over its largest entry in size (rows of zeros stay zero).

    A sum that is only ever multiplied or divided by (a factor of a single product) has no
    scale of its own: the refitted coefficient takes any. Training may leave such a row at
    ``0.1*(a + 1)``, which rounds to nothing; divided by its largest weight it rounds to
    ``a + 1``.
    """
    largest = weight.abs().amax(dim=-1, keepdim=True)
    return torch.where(largest > 0, weight / largest.clamp_min(1e-300), weight)


@dataclass(frozen=True)
class SnapEach:
    """A stack's snapping function: ``compose`` applied to every alternative snap of its
    layers (a plain object rather than a closure, so that stacks pickle for worker processes).

    ``scale_free`` lists the layers whose rows are snapped after :func:`scale_free_rows`.
    """

    compose: Compose
    scale_free: tuple[int, ...] = ()

    def __call__(self, layers: Sequence[ArithmeticUnit], inputs: SnapInputs) -> list[Structure]:
        return [
            make_structure(self.compose(weights, inputs))
            for weights in weight_alternatives(layers, inputs.budget, self.scale_free)
        ]


def sum_terms(weights: Sequence[Tensor], inputs: SnapInputs) -> list[Term | None]:
    """NAU: one signed sum."""
    return [make_term([signed_factor(weights[0][0], inputs.columns)])]


def product_terms(weights: Sequence[Tensor], inputs: SnapInputs) -> list[Term | None]:
    """NMU: one product of columns."""
    return [make_term(product_factors(weights[0][0], inputs.columns))]


def power_terms(weights: Sequence[Tensor], inputs: SnapInputs) -> list[Term | None]:
    """NPU: one product of columns raised to the snapped integer exponents."""
    columns = inputs.columns
    row = weights[0][0].tolist()
    return [raise_term((make_factor([(columns[i], 1)]), int(w)) for i, w in enumerate(row) if w)]


def product_of_sums_terms(weights: Sequence[Tensor], inputs: SnapInputs) -> list[Term | None]:
    """NAU -> NMU: a product of the hidden signed sums the NMU selects."""
    hidden = [signed_factor(row, inputs.columns) for row in weights[0]]
    return [make_term([hidden[k] for k in selected(weights[1][0])])]


def sum_of_products_terms(weights: Sequence[Tensor], inputs: SnapInputs) -> list[Term | None]:
    """NMU -> NAU: the hidden products the NAU selects, each a term (its sign is refitted)."""
    columns = inputs.columns
    return [make_term(product_factors(weights[0][k], columns)) for k in selected(weights[1][0])]


def _divided(gates: Tensor) -> tuple[list[int], list[int]]:
    """The inputs a snapped NDU row multiplies and those it divides by (both: they cancel)."""
    n = gates.numel() // 2
    numerator, denominator = set(selected(gates[:n])), set(selected(gates[n:]))
    return sorted(numerator - denominator), sorted(denominator - numerator)


def ratio_of_sums_terms(weights: Sequence[Tensor], inputs: SnapInputs) -> list[Term | None]:
    """NAU -> NDU: the hidden signed sums the NDU multiplies, over those it divides by."""
    hidden = [signed_factor(row, inputs.columns) for row in weights[0]]
    above, below = _divided(weights[1][0])
    return [make_term([hidden[k] for k in above], [hidden[k] for k in below])]


def polynomial_ratio_terms(weights: Sequence[Tensor], inputs: SnapInputs) -> list[Term | None]:
    """(NMU -> NAU) / NAU: a sum of monomials ``P`` over a signed sum ``Q`` of the same
    columns, written as the terms ``m / Q`` for each monomial ``m`` of ``P`` (each with its
    coefficient refitted). A column the NMU reads is a factor of its monomial, except the
    constant column, which is the factor 1."""
    columns = inputs.columns
    monomials, numerator, denominator = weights
    factor = signed_factor(denominator[0], columns)
    if not factor:
        return []
    ones = {make_factor([(c, 1)]) for c in columns if c == inputs.constant}
    return [
        make_term([f for f in product_factors(monomials[k], columns) if f not in ones], [factor])
        for k in selected(numerator[0])
    ]


def nalu_structures(layers: Sequence[NALU], inputs: SnapInputs) -> list[Structure]:
    """Structures of a snapped stack of one or two NALUs over positive inputs.

    A multiplicative path with weight -1 on an input reads that input's reciprocal column; a
    second-layer division by a hidden sum has no such structure and yields nothing.
    """
    x, columns, reciprocal_of = inputs.x, inputs.columns, inputs.reciprocal_of
    snapped = []
    for unit in layers:
        snapped.append(unit.snap(x))
        x = unit(x)
    hidden = [
        _nalu_hidden(row, gate, columns, reciprocal_of)
        for row, gate in zip(snapped[0]["weight"], snapped[0]["gate"].tolist())
    ]
    if len(snapped) == 1:
        return [make_structure(hidden[0])] if hidden[0] is not None else []
    return _nalu_second_layer(snapped[1], hidden)


def _nalu_hidden(
    row: Tensor, gate: float, columns: Sequence[int], reciprocal_of: dict[int, int]
) -> list[Term] | None:
    """A first-layer NALU output as terms: a sum (gate 1) or a single product (gate 0);
    ``None`` when the product divides by an input that has no reciprocal column."""
    if gate >= 0.5:
        return [make_term([signed_factor(row, columns)])]
    factors = []
    for i, w in enumerate(row.tolist()):
        if w > 0:
            factors.append(make_factor([(columns[i], 1)]))
        elif w < 0:
            if columns[i] not in reciprocal_of:
                return None
            factors.append(make_factor([(reciprocal_of[columns[i]], 1)]))
    return [make_term(factors)]


def _nalu_second_layer(second: dict, hidden: list[list[Term] | None]) -> list[Structure]:
    row, gate = second["weight"][0].tolist(), float(second["gate"][0])
    used = [k for k, w in enumerate(row) if w != 0]
    if any(hidden[k] is None for k in used):
        return []
    if gate >= 0.5:  # a sum of hidden values
        return [make_structure(term for k in used for term in hidden[k])]
    if any(w < 0 for w in row):
        return []
    # A product of hidden values: each must be a single factor (a sum) or a product.
    powers = []
    for k in used:
        (term,) = hidden[k] if len(hidden[k]) == 1 else (None,)
        if term is None:
            return []
        powers.extend(term)
    return [make_structure([raise_term(powers)])]


def structure_variants(
    found: Sequence[Structure], *, constant: int | None = None, separate: bool = False
) -> list[Structure]:
    """``found`` with the variants every stack's snaps are also tried as, most plausible first,
    deduplicated.

    ``constant`` is the feature column of ones. A sum's weight on it barely moves the loss
    when the inputs are large, so it may snap to +-1 by chance: each structure that uses it is
    also offered without it. With ``separate``, a sum of at most ``MAX_SEPARATE_TERMS``
    features is also offered as separate terms, one per feature, so that least squares gives
    each its own coefficient (``a - 2*b + 3`` has weights of unequal size, which no snapped
    sum holds).
    """
    found = list(found)
    if constant is not None:
        found = [variant for s in found for variant in (s, without_feature(s, constant))]
    if separate:
        separated = (separate_terms(s, constant) for s in found)
        found += [s for s in separated if len(s) <= MAX_SEPARATE_TERMS]
    return list(dict.fromkeys(s for s in found if s))


def separate_terms(structure: Structure, constant: int | None = None) -> Structure:
    """Every feature of ``structure``'s signed sums as a term of its own (the constant column
    left out: the fitted offset stands for it).

    Examples
    --------
    >>> separate_terms((((((0, 1), (1, -1), (2, 1)), 1),),), constant=2)
    (((((0, 1),), 1),), ((((1, 1),), 1),))
    """
    features = features_used(structure) - {constant}
    return make_structure(make_term([make_factor([(i, 1)])]) for i in sorted(features))


def without_feature(structure: Structure, feature: int) -> Structure:
    """``structure`` with ``feature`` dropped from every signed sum."""
    return make_structure(
        raise_term((make_factor(p for p in factor if p[0] != feature), e) for factor, e in term)
        for term in structure
    )


class Composition(NamedTuple):
    """What a trained function stack snaps to: ``outer * (c + f(rate * argument))``, a
    library function of one product of columns times another (see
    :class:`~nalu_sr.units.NFU`).

    ``argument`` and ``outer`` are terms over the feature columns (``outer`` may be the empty
    term, 1); ``rate`` is the trained rate in the columns' own units, a starting point for
    the search's fit of it.
    """

    function: str
    argument: Term
    rate: float
    outer: Term


#: Alternative snaps of each of a function stack's two products.
COMPOSITION_ALTERNATIVES = 4


def compositions(network: torch.nn.Module, inputs: SnapInputs) -> list[Composition]:
    """Every composition one trained function stack (an NMU beside an NMU feeding an
    :class:`~nalu_sr.units.NFU`, or beside a NAU -> NMU feeding one; see
    :mod:`nalu_sr.search.stacks`) stands for: each pair of the products' alternative snaps
    whose argument is not constant."""
    outer_unit, argument_unit = (m for m in network.modules() if isinstance(m, NMU))
    sums = [m for m in network.modules() if isinstance(m, NAU)]
    unit = next(m for m in network.modules() if isinstance(m, NFU))
    trained_rate = float(unit.rate.detach().flatten()[0])
    scales = np.ones(len(inputs.columns)) if inputs.column_scales is None else inputs.column_scales
    options = [
        discrete_alternatives(
            u.effective_weight().detach(), u.snap_targets, max_alternatives=COMPOSITION_ALTERNATIVES
        )
        for u in (outer_unit, argument_unit)
    ]
    arguments: list[tuple[Term, float]] = []
    if sums:
        # A product of hidden sums: its rate in raw units is not the trained one (each column
        # was scaled on its own), so the search's grid finds it.
        for sum_weight in discrete_alternatives(
            sums[0].effective_weight().detach(), sums[0].snap_targets, max_alternatives=2
        ):
            for argument_weight in options[1]:
                argument = _product_of_sums(sum_weight, argument_weight[0], inputs)
                if argument:
                    arguments.append((argument, math.nan))
    else:
        for argument_weight in options[1]:
            chosen = selected(argument_weight[0])
            argument = _monomial(argument_weight[0], inputs)
            if chosen and argument:
                # The unit saw each column divided by its scale: the rate of the raw product.
                arguments.append((argument, trained_rate / float(np.prod(scales[chosen]))))
    found = []
    for argument, rate in arguments:
        for outer_weight in options[0]:
            outer = _monomial(outer_weight[0], inputs)
            found.append(Composition(unit.function, argument, rate, outer))
    return list(dict.fromkeys(found, None))


def _product_of_sums(sums: Tensor, gates: Tensor, inputs: SnapInputs) -> Term | None:
    """The product of the snapped NAU rows ``sums`` that the NMU row ``gates`` selects, a
    hidden sum of one reciprocal column written as its input to the power -1 (``(E - mu)/T``,
    not ``(E - mu)*(1/T)``); ``None`` where a selected sum is empty or only the constant."""
    input_of = {r: i for i, r in inputs.reciprocal_of.items()}
    powers = []
    for k in selected(gates):
        factor = signed_factor(sums[k], inputs.columns)
        if not factor or all(column == inputs.constant for column, _ in factor):
            return None
        if len(factor) == 1 and factor[0][0] in input_of:
            column, sign = factor[0]
            powers.append((make_factor([(input_of[column], sign)]), -1))
        else:
            powers.append((factor, 1))
    return raise_term(powers) if powers else None


def _monomial(row: Tensor, inputs: SnapInputs) -> Term:
    """The product of the columns a snapped NMU row selects, each reciprocal column written as
    its input to the power -1, so that ``V * (1/V)`` cancels (the empty term is 1)."""
    input_of = {r: i for i, r in inputs.reciprocal_of.items()}
    powers = []
    for i in selected(row):
        column = inputs.columns[i]
        if column in input_of:
            powers.append((make_factor([(input_of[column], 1)]), -1))
        else:
            powers.append((make_factor([(column, 1)]), 1))
    return raise_term(powers) or ()
