"""The registry of stack kinds: every stack of units the search trains, described once.

A :class:`StackKind` says how a stack is built from units, which feature columns it reads, how
its trained weights snap to a structure, which target transforms it is tried on and where it
stands in the search's order. :data:`STACK_KINDS` lists them; the search trains an
:class:`Architecture` (a kind at one width, on its columns) for every instance a kind offers on
the data. Adding a kind is one entry here plus its unit's file in ``nalu_sr/units/``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ..snapping import (
    Composition,
    SnapEach,
    SnapInputs,
    compositions,
    nalu_structures,
    polynomial_ratio_terms,
    power_terms,
    product_of_sums_terms,
    product_terms,
    ratio_of_sums_terms,
    structure_variants,
    sum_of_products_terms,
    sum_terms,
)
from ..structure import Structure
from ..units import NALU, NAU, NDU, NFU, NMU, NPU, ArithmeticUnit
from ..units.nfu import FUNCTIONS as UNIT_FUNCTIONS
from .arguments import function_compositions
from .function_pairs import FunctionPair, function_pairs
from .function_products import FunctionProduct, function_products
from .rational import ratio_structures
from .space import (
    MAX_FUNCTION_INPUTS,
    MAX_SCALE_CENTRES,
    STIFFNESS,
    FeatureTable,
    keeps_sign,
    product_columns,
    scale_group_scales,
    stiffness,
    typical_size,
)
from .transforms import TRANSFORMS


class Family(IntEnum):
    """Stacks of one family are all tried before any of the next: arithmetic units first,
    then NALUs (whose gates make them slower to settle), then the stacks that reach beyond
    arithmetic (functions of the inputs, and every job on a transform of the target other
    than ``y`` and ``1/y``), which have a share of the plan of their own (see
    :func:`~nalu_sr.search.runner.plan_within`)."""

    ARITHMETIC = 0
    NALU = 1
    FUNCTIONS = 2


class Place(IntEnum):
    """Where a kind's stacks stand among the stacks of their width and family."""

    #: In a stage of their own before the plain stacks (variants expected where those stall).
    BEFORE = -1
    WITH = 0
    #: In a stage of their own after the plain stacks (tried when those found nothing).
    AFTER = 1
    #: After those (the closed-form solves over functions of single inputs, which cost more
    #: than the listed functions of groups of inputs before them).
    LAST = 2


class StageKey(NamedTuple):
    """The order of stages, compared field by field: jobs with equal keys form one stage.

    ``reciprocal`` puts jobs on the reciprocal side (the ``1/y`` target, or a stack of input
    reciprocals) after the plain ones of the same width.
    """

    family: Family
    width: int
    place: Place
    reciprocal: bool


@dataclass(frozen=True)
class Space:
    """The data and limits that decide which stacks are offered.

    Attributes
    ----------
    table : FeatureTable
    rows : ndarray of int
        Feature-table rows used for training (for data-dependent variants).
    target : ndarray
        The target on ``rows``.
    max_power : int
        Largest integer power of an input inside a product.
    max_hidden : int, optional
        Widest hidden layer (default: the number of inputs, between 2 and 4).
    max_product_columns : int
        Most columns a product reads (repeats for powers count).
    """

    table: FeatureTable
    rows: np.ndarray
    target: np.ndarray
    max_power: int = 2
    max_hidden: int | None = None
    max_product_columns: int = 48

    @property
    def widths(self) -> range:
        d = len(self.table.inputs)
        top = min(4, max(2, d)) if self.max_hidden is None else self.max_hidden
        return range(2, top + 1)

    @property
    def sum_columns(self) -> tuple[int, ...]:
        """Inputs and the constant: what sums inside a product read."""
        return (*self.table.inputs, self.table.constant)

    @property
    def product_columns(self) -> tuple[int, ...]:
        return product_columns(self.table, self.max_power, self.max_product_columns)


#: Builds a kind's units for ``n_in`` columns and a hidden layer of width ``hidden``.
Layers = Callable[[int, int], list[nn.Module]]
#: Snaps a trained stack's units to candidate structures.
Snap = Callable[[Sequence[ArithmeticUnit], SnapInputs], list[Structure]]
#: Fits a kind in closed form: ``(table, columns, target, transform, weights) -> structures``.
Solve = Callable[
    ..., list[Structure] | list[Composition] | list[FunctionProduct] | list[FunctionPair]
]
#: Training runs a kind fitted in closed form counts as in the search plan: none, as it trains
#: nothing; its solves are bounded by their own limits (see :mod:`~nalu_sr.search.rational`),
#: and the plan of trained stages stays as it was.
SOLVE_RUNS = 0.0


@dataclass(frozen=True)
class StackKind:
    """One kind of stack the search trains.

    Attributes
    ----------
    label : str
        Display name; ``{h}`` is replaced by the hidden width (``"NAU->NMU[{h}]"``).
    layers : callable
        ``layers(n_in, hidden)``: the stack's units, first to last.
    instances : callable
        ``instances(kind, space)``: the architectures of this kind offered on the data (none
        where the kind does not apply), which also fixes the columns each one reads.
    snap : callable
        ``snap(units, inputs)``: the structures a trained stack stands for.
    transforms : tuple of str
        Target transforms it is tried on (when the data allows them).
    family, place : Family, Place
        Its place in the stage order (see :class:`StageKey`).
    reciprocal : bool
        Whether it reads reciprocals of the inputs, so that it belongs with the ``1/y`` jobs.
    common_scale : bool
        Whether all columns must share one training scale (sums need it; pure products can
        scale each column on its own).
    multiplies_sums : bool
        Whether its output is a product of ``hidden`` sums, whose training scale is the
        columns' scale to that power.
    separate_sums : bool
        Whether its snapped sum is also offered as separate terms, one coefficient each.
    whitened : bool
        Whether the first layer is trained in whitened coordinates, longer and on more rows
        (see :class:`~nalu_sr.search.engine.TrainingSettings`).
    fraction : bool
        Whether the stack ends in a division whose numerator and denominator are trained
        apart (:func:`~nalu_sr.training.fraction_mse`).
    degree : int or None
        The output's degree in the columns' common scale, when it is not that of a sum (1) or
        of a product of ``hidden`` sums (``multiplies_sums``): 0 for a ratio of sums, whose
        numerator and denominator most often have as many.
    log_space : bool
        Whether it is trained on the logarithms of its columns' and the target's magnitudes,
        up to an offset (:func:`~nalu_sr.training.centred_mse`): a product of powers is
        linear there. Its columns and the target must keep one sign away from zero.
    composes : bool
        Whether it applies a library function to a hidden product (:class:`~nalu_sr.units.NFU`):
        it snaps to :class:`~nalu_sr.snapping.Composition` s, whose rates the search fits
        before it scores them, and all its copies fit the target up to scale and offset.
    solve : callable or None
        For a kind fitted in closed form instead of trained:
        ``solve(table, columns, target, transform, weights)`` returns its structures directly
        (see :mod:`~nalu_sr.search.rational`), its compositions for a composing kind (see
        :mod:`~nalu_sr.search.arguments`), or its products of functions for a multiplying
        one; it has no layers and counts as :data:`SOLVE_RUNS` training runs in the plan.
    multiplies : bool
        Whether its ``solve`` returns products of functions
        (:class:`~nalu_sr.search.function_products.FunctionProduct`), whose rates the search
        fits before it scores each product as one term.
    adds : bool
        Whether its ``solve`` returns pairs of functions the target adds
        (:class:`~nalu_sr.search.function_pairs.FunctionPair`), whose rates the search fits
        together before it builds sums of monomials times both.
    """

    label: str
    layers: Layers
    instances: Callable[[StackKind, Space], list[Architecture]]
    snap: Snap
    transforms: tuple[str, ...] = ("y", "1/y")
    family: Family = Family.ARITHMETIC
    place: Place = Place.WITH
    reciprocal: bool = False
    common_scale: bool = True
    multiplies_sums: bool = False
    separate_sums: bool = False
    whitened: bool = False
    fraction: bool = False
    degree: int | None = None
    log_space: bool = False
    composes: bool = False
    solve: Solve | None = None
    multiplies: bool = False
    adds: bool = False

    def name(self, hidden: int = 0) -> str:
        return self.label.format(h=hidden)

    def structures(self, network: nn.Module, inputs: SnapInputs) -> list[Structure]:
        """Every candidate structure of one trained ``network`` of this kind, most plausible
        first, deduplicated (see :func:`~nalu_sr.snapping.structure_variants`)."""
        units = [m for m in network.modules() if isinstance(m, ArithmeticUnit)]
        found = self.snap(units, inputs)
        return structure_variants(found, constant=inputs.constant, separate=self.separate_sums)

    def compositions(self, network: nn.Module, inputs: SnapInputs) -> list[Composition]:
        """Every composition one trained ``network`` of a composing kind stands for."""
        return compositions(network, inputs)

    def at(self, columns: Sequence[int], hidden: int = 0, **fields) -> Architecture:
        """This kind on ``columns`` with a hidden layer of width ``hidden``."""
        return Architecture(self.name(hidden), self, tuple(columns), hidden, **fields)


class _Network:
    """``kind.layers(n_in, hidden)`` in sequence; an object rather than a closure, so that
    it pickles for worker processes."""

    def __init__(self, kind: StackKind, n_in: int, hidden: int) -> None:
        self.kind, self.n_in, self.hidden = kind, n_in, hidden

    def __call__(self) -> nn.Module:
        return nn.Sequential(*self.kind.layers(self.n_in, self.hidden))


@dataclass(frozen=True)
class Architecture:
    """One stack of units and the feature columns it reads.

    Attributes
    ----------
    name : str
        Shown in the candidates table, e.g. ``"NAU->NMU[2]"``.
    kind : StackKind
    columns : tuple of int
        Feature-table columns fed to the first unit, in order (repeats give integer powers).
    hidden : int
        Width of the hidden layer (0 for single-unit stacks).
    column_scales : tuple of float
        Fixed training scale of each column, one per scale group, with ``centres`` the target
        scales trained at (see :func:`scale_group_instances`); empty for the usual scaling.
    centres : tuple of float
    """

    name: str
    kind: StackKind
    columns: tuple[int, ...]
    hidden: int = 0
    column_scales: tuple[float, ...] = field(default=())
    centres: tuple[float, ...] = field(default=())

    @property
    def whitened(self) -> bool:
        return self.kind.whitened

    @property
    def scale_groups(self) -> bool:
        return bool(self.column_scales)

    @property
    def common_scale(self) -> bool:
        return self.kind.common_scale

    def network_factory(self) -> Callable[[], nn.Module]:
        return _Network(self.kind, len(self.columns), self.hidden)

    def stage_key(self, transform: str) -> StageKey:
        kind = self.kind
        # A kind fitted in closed form costs too little to wait for the stages beyond
        # arithmetic on any transform.
        arithmetic = TRANSFORMS[transform].arithmetic or kind.solve is not None
        family = kind.family if arithmetic else Family.FUNCTIONS
        return StageKey(family, self.hidden, kind.place, transform != "y" or kind.reciprocal)


@dataclass(frozen=True)
class Single:
    """Instances of a single-unit kind: one on ``columns(space)``, none if that is empty."""

    columns: Callable[[Space], Sequence[int]]

    def __call__(self, kind: StackKind, space: Space) -> list[Architecture]:
        chosen = self.columns(space)
        return [kind.at(chosen)] if chosen else []


@dataclass(frozen=True)
class PerWidth:
    """Instances of a two-layer kind on ``columns(space)``: one per hidden width of the space
    up to ``widest``, or one at ``width`` alone."""

    columns: Callable[[Space], Sequence[int]]
    widest: int | None = None
    width: int | None = None

    def __call__(self, kind: StackKind, space: Space) -> list[Architecture]:
        chosen = self.columns(space)
        if not chosen:
            return []
        if self.width is not None:
            return [kind.at(chosen, self.width)]
        return [kind.at(chosen, h) for h in space.widths if self.widest is None or h <= self.widest]


def _inputs(space: Space) -> tuple[int, ...]:
    return tuple(space.table.inputs)


def _reciprocals(space: Space) -> tuple[int, ...]:
    return tuple(space.table.reciprocals)


def _sum_columns(space: Space) -> tuple[int, ...]:
    return space.sum_columns


def _sum_and_reciprocal_columns(space: Space) -> tuple[int, ...]:
    # Only where there are reciprocals: otherwise it is the plain NAU->NMU.
    return (
        (*space.table.inputs, *space.table.reciprocals, space.table.constant)
        if space.table.reciprocals
        else ()
    )


def _log_columns(space: Space) -> tuple[int, ...]:
    # Inputs of one sign, without zeros, for a target of one sign: both have finite logs.
    if not keeps_sign(space.target):
        return ()
    values = space.table.values[space.rows]
    return tuple(c for c in space.table.inputs if keeps_sign(values[:, c]))


def _product_columns(space: Space) -> tuple[int, ...]:
    return space.product_columns


def _single_product_columns(space: Space) -> tuple[int, ...]:
    # Each column once; only where the plain product columns repeat some (powers).
    once = tuple(dict.fromkeys(space.product_columns))
    return once if len(once) < len(space.product_columns) else ()


def _function_sum_columns(space: Space) -> tuple[int, ...]:
    # Only where there are functions: otherwise it is the plain stack.
    table = space.table
    functions = table.function_columns
    return (*table.inputs, *functions, table.constant) if functions else ()


#: The functions a stack of products reads together: one stack per group, each smaller than
#: one over every function, so that its snaps stay few and its training settles. Square roots
#: of monomials are the power unit's (on ``y**2``); sine and cosine go together, for
#: ``cos(a)*cos(b) + sin(a)*sin(b)``.
FUNCTION_GROUPS = {"sin, cos": ("sin", "cos"), "exp": ("exp",), "log": ("log",)}


def _group_columns(space: Space, group: str) -> tuple[int, ...]:
    table = space.table
    return tuple(c for name in FUNCTION_GROUPS[group] for c in table.functions.get(name, ()))


@dataclass(frozen=True)
class PerFunctionGroup:
    """Instances of a kind over functions of the inputs: one per group of
    :data:`FUNCTION_GROUPS` offered on the data (and per hidden width up to ``widest``, for a
    two-layer kind) among ``groups``, reading ``columns(space, group_columns)``."""

    columns: Callable[[Space, tuple[int, ...]], tuple[int, ...]]
    widest: int = 0
    groups: tuple[str, ...] = tuple(FUNCTION_GROUPS)

    def __call__(self, kind: StackKind, space: Space) -> list[Architecture]:
        result = []
        widths = [0] if self.widest == 0 else [h for h in space.widths if h <= self.widest]
        for group in self.groups:
            functions = _group_columns(space, group)
            if not functions:
                continue
            columns = self.columns(space, functions)
            for h in widths:
                name = kind.label.format(h=h, f=group)
                result.append(Architecture(name, kind, columns, h))
        return result


@dataclass(frozen=True)
class PerFunctionOfInput:
    """Instances of a kind over the inputs and the functions of one input at a time: one per
    input and group of :data:`FUNCTION_GROUPS` offered on it (``sin(C)``, ``cos(C)``), named
    after those functions, since one input's functions keep a basis of monomials small; and
    one per group over the functions of every input where several have them
    (``n*T*log(V2) - n*T*log(V1)``, ``cos(a)*cos(b) + sin(a)*sin(b)``), named after the group."""

    def __call__(self, kind: StackKind, space: Space) -> list[Architecture]:
        table = space.table
        result = []
        for group in FUNCTION_GROUPS:
            functions = _group_columns(space, group)
            owners = 0
            for i in table.inputs:
                symbol = table.expressions[i]
                own = tuple(c for c in functions if table.expressions[c].free_symbols == {symbol})
                if own:
                    owners += 1
                    label = ", ".join(str(table.expressions[c]) for c in own)
                    name = kind.label.format(f=label)
                    result.append(Architecture(name, kind, (*table.inputs, *own)))
            if owners > 1:
                name = kind.label.format(f=group)
                result.append(Architecture(name, kind, (*table.inputs, *functions)))
        return result


def _with_functions(
    space: Space, plain: tuple[int, ...], functions: tuple[int, ...]
) -> tuple[int, ...]:
    # The plain columns give way first on wide tables.
    room = max(space.max_product_columns - len(functions), len(space.table.inputs))
    return (*plain[:room], *functions)


def _products_and_functions(space: Space, functions: tuple[int, ...]) -> tuple[int, ...]:
    # The plain product columns (v**2*sin(theta)*cos(theta)), then each function twice
    # (a*sin(b)**2).
    twice = tuple(c for c in functions for _ in range(2))
    return _with_functions(space, space.product_columns, twice)


def _single_products_and_functions(space: Space, functions: tuple[int, ...]) -> tuple[int, ...]:
    # Every column once: a sum of products reads repeated columns badly (see "nmu-nau-single").
    return _with_functions(space, tuple(dict.fromkeys(space.product_columns)), functions)


def _sums_and_functions(space: Space, functions: tuple[int, ...]) -> tuple[int, ...]:
    return (*space.table.inputs, *functions, space.table.constant)


def _single_inputs_and_reciprocals(space: Space) -> tuple[int, ...]:
    # Arguments such as t/(R*C) and k*x, and their multipliers; tables narrow enough for
    # functions of the inputs only (the stack's products read every column).
    table = space.table
    if len(table.inputs) > MAX_FUNCTION_INPUTS:
        return ()
    return (*table.inputs, *table.reciprocals)


def _arguments_inputs(space: Space) -> tuple[int, ...]:
    # Every input (an argument's groups are listed over all of them), on tables narrow
    # enough for functions of the inputs.
    table = space.table
    return tuple(table.inputs) if len(table.inputs) <= MAX_FUNCTION_INPUTS else ()


@dataclass(frozen=True)
class PerFunction:
    """Instances of a composing kind: one per function of the unit library, each with its own
    layers (a kind made for the function), on ``columns(space)``."""

    columns: Callable[[Space], Sequence[int]]
    functions: tuple[str, ...] = tuple(UNIT_FUNCTIONS)
    #: The layers for one function: ``make(function)(n_in, hidden)``.
    make: Callable[[str], Layers] = field(default=lambda function: _FunctionOfProduct(function))
    hidden: int = 0

    def __call__(self, kind: StackKind, space: Space) -> list[Architecture]:
        chosen = self.columns(space)
        if not chosen:
            return []
        positive = bool(np.all(space.table.values[np.ix_(space.rows, chosen)] > 0))
        result = []
        for function in self.functions:
            if function == "log" and not positive:
                # A logarithm of a product: only where every product of the columns is
                # positive on the fitted rows.
                continue
            made = dataclasses.replace(
                kind, label=kind.label.format(f=function), layers=self.make(function)
            )
            result.append(made.at(chosen, self.hidden))
        return result


def _positive_inputs(space: Space) -> tuple[int, ...]:
    # The NALU's log-space path sees |x|: offer it only inputs where |x| = x.
    values = space.table.values
    return tuple(c for c in space.table.inputs if np.all(values[:, c] > 0))


def whitened_instances(kind: StackKind, space: Space) -> list[Architecture]:
    """A product of sums over stiff inputs (:func:`~nalu_sr.search.space.stiffness` at least
    ``STIFFNESS`` on the training rows), one per width.

    There, a product of sums over many inputs, such as ``(x1 + ... + x25) * (x13 + ... + x37)``
    with every input in [1, 2], stalls with two near-equal sums: the way out is a slow direction
    that plain Adam does not follow within the usual training. Trained in whitened coordinates
    it does, in about 1e4 steps. The variant reads the inputs without the constant column:
    next to inputs with a common mean, the constant makes a direction so soft that whitened
    steps along it throw the weights against their bounds (measured: no copy fitted).
    """
    columns = _inputs(space)
    if stiffness(space.table.values[np.ix_(space.rows, columns)]) < STIFFNESS:
        return []
    return [kind.at(columns, h) for h in space.widths]


def scale_group_instances(kind: StackKind, space: Space) -> list[Architecture]:
    """A product of sums whose columns fall into several scale groups
    (:func:`~nalu_sr.search.space.scale_group_scales` on the training rows), one per width.

    A product of sums shares one scale among all its columns, so that a sum of columns with
    weights +-1 means the same in training and in the formula. When the columns' sizes differ
    widely, as in ``k*(T1 - T2)`` with temperatures near 300 and ``k`` near 1, that scale
    leaves some columns near 0 and the small differences of the others hidden under their
    common offset: no copy finds the product. This kind scales each group of similar columns
    by its own scale, which keeps sums within a group exact (a sum across groups cannot be
    written with unit weights and scores badly), and trains at the target scales a product of
    ``hidden`` sums can have: each product of ``hidden`` group scales that the target's RMS
    allows, the scaled product (a product of ``hidden`` sums of columns near 1) being between
    ``10**-(2 * hidden)`` (small differences) and ``10**hidden`` of it. A width is offered only
    when those are at most ``MAX_SCALE_CENTRES``.
    """
    columns = space.sum_columns
    scales = scale_group_scales(space.table.values[np.ix_(space.rows, columns)])
    groups = np.unique(scales)
    if len(groups) < 2:
        return []
    size = typical_size(space.target)
    result = []
    for h in space.widths:
        centres = sorted(
            {
                centre
                for combination in itertools.combinations_with_replacement(groups, h)
                if 10.0 ** -(2 * h) <= size / (centre := float(np.prod(combination))) <= 10.0**h
            }
        )
        if 0 < len(centres) <= MAX_SCALE_CENTRES:
            column_scales = tuple(float(c) for c in scales)
            result.append(kind.at(columns, h, column_scales=column_scales, centres=tuple(centres)))
    return result


def ratio_scale_group_instances(kind: StackKind, space: Space) -> list[Architecture]:
    """A ratio of sums whose columns fall into several scale groups, one per width: as
    :func:`scale_group_instances`, each group of similar columns at its own scale, so that
    ``V*R2/(R1 + R2)`` (``V`` near 5, resistances near 500) keeps ``V`` out of the sums. A
    ratio's scale is that of its numerator over its denominator's, unknown before the
    structure is: the grid is centred on the target's size, and the affine copies see
    through the rest."""
    columns = space.sum_columns
    scales = scale_group_scales(space.table.values[np.ix_(space.rows, columns)])
    if len(np.unique(scales)) < 2:
        return []
    centre = (float(typical_size(space.target)),)
    column_scales = tuple(float(c) for c in scales)
    return [kind.at(columns, h, column_scales=column_scales, centres=centre) for h in space.widths]


def _nau(n_in: int, hidden: int) -> list[nn.Module]:
    return [NAU(n_in, 1)]


def _nmu(n_in: int, hidden: int) -> list[nn.Module]:
    return [NMU(n_in, 1)]


def _npu(n_in: int, hidden: int) -> list[nn.Module]:
    return [NPU(n_in, 1, log_space=True)]


def _nau_nmu(n_in: int, hidden: int) -> list[nn.Module]:
    return [NAU(n_in, hidden), NMU(hidden, 1)]


def _nmu_nau(n_in: int, hidden: int) -> list[nn.Module]:
    return [NMU(n_in, hidden), NAU(hidden, 1)]


def _nau_ndu(n_in: int, hidden: int) -> list[nn.Module]:
    return [NAU(n_in, hidden), NDU(hidden, 1, fraction=True)]


class Branches(nn.Module):
    """Stacks of units side by side on the same input, their outputs joined: a layer that is
    not a chain, such as a numerator and a denominator read from the same columns. Like the
    units, it runs stacked copies at once."""

    broadcasts = True

    def __init__(self, *branches: Sequence[nn.Module]) -> None:
        super().__init__()
        # Sequential children, not a ModuleList: the training ensemble runs stacked copies
        # without vmap only through modules it knows to broadcast.
        for i, units in enumerate(branches):
            self.add_module(str(i), nn.Sequential(*units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=-1)


class Product(nn.Module):
    """The product of its input features: joins side-by-side branches by multiplying them.
    It has no parameters, so it runs stacked copies as they come."""

    broadcasts = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.prod(dim=-1, keepdim=True)


def _no_structures(units: Sequence[ArithmeticUnit], inputs: SnapInputs) -> list[Structure]:
    # A composing stack snaps to compositions, whose structures the search makes once it has
    # fitted their rates (see StackKind.compositions).
    return []


@dataclass(frozen=True)
class _FunctionOfProduct:
    """Layers ``outer * (c + f(a * argument))``: an NMU (the outer product) beside an NMU
    feeding a function unit, multiplied. An object, so that the layers pickle."""

    function: str

    def __call__(self, n_in: int, hidden: int) -> list[nn.Module]:
        return [Branches([NMU(n_in, 1)], [NMU(n_in, 1), NFU(1, self.function)]), Product()]


@dataclass(frozen=True)
class _FunctionOfProductOfSums:
    """Layers ``outer * (c + f(a * s_1 * ... * s_h))``: an NMU (the outer product) beside a
    NAU -> NMU (a product of ``hidden`` sums) feeding a function unit, multiplied."""

    function: str

    def __call__(self, n_in: int, hidden: int) -> list[nn.Module]:
        argument = [NAU(n_in, hidden), NMU(hidden, 1), NFU(1, self.function)]
        return [Branches([NMU(n_in, 1)], argument), Product()]


def _no_layers(n_in: int, hidden: int) -> list[nn.Module]:
    return []


def _polynomial_ratio(n_in: int, hidden: int) -> list[nn.Module]:
    # The numerator P = NMU -> NAU and the denominator Q = NAU side by side, as a fraction
    # output (P, Q): a division unit whose gates are fixed to P over Q.
    return [Branches([NMU(n_in, hidden), NAU(hidden, 1)], [NAU(n_in, 1)])]


def _nalu(n_in: int, hidden: int) -> list[nn.Module]:
    return [NALU(n_in, 1)]


def _nalu_nalu(n_in: int, hidden: int) -> list[nn.Module]:
    return [NALU(n_in, hidden), NALU(hidden, 1)]


#: Every kind the search trains, in the order of preference within a stage.
STACK_KINDS: dict[str, StackKind] = {
    # On the transforms beyond 1/y: sqrt(a + b), exp(a - b), (a + b)**2.
    "nau": StackKind(
        "NAU",
        _nau,
        Single(_inputs),
        SnapEach(sum_terms),
        # (Not on exp(y): log(a + b) is a listed function, log(P/Q) a closed-form ratio.)
        transforms=("y", "1/y", "y**2", "log(y)", "sqrt(y)"),
        separate_sums=True,
    ),
    # Products of inputs and reciprocals are also reciprocals of such products: not on 1/y.
    "nmu": StackKind(
        "NMU",
        _nmu,
        Single(_product_columns),
        SnapEach(product_terms),
        # exp(-E/(k*T)) as log(y) = -E/(k*T).
        transforms=("y", "log(y)"),
        common_scale=False,
    ),
    # Monomials with integer powers up to 4 in size, x**3*y/z**2, learnt in log space: one
    # small least-squares problem however many inputs (no repeated columns). After the
    # single units' other stages, which find the common monomials as fast.
    "npu": StackKind(
        "NPU",
        _npu,
        Single(_log_columns),
        SnapEach(power_terms),
        # On y**2, half-integer powers: sqrt(2*g*h), x**(3/2).
        transforms=("y", "y**2"),
        place=Place.AFTER,
        common_scale=False,
        log_space=True,
    ),
    # Sums of reciprocals: with the 1/y target they give 1/y = 1/R1 + 1/R2 and kin.
    "nau-reciprocals": StackKind(
        "NAU[1/x]",
        _nau,
        Single(_reciprocals),
        SnapEach(sum_terms),
        reciprocal=True,
        separate_sums=True,
    ),
    "nau-nmu": StackKind(
        "NAU->NMU[{h}]",
        _nau_nmu,
        PerWidth(_sum_columns),
        SnapEach(product_of_sums_terms),
        multiplies_sums=True,
    ),
    # Sums that read reciprocals too: m*(1/r - 1/s), and on 1/y a/(b + c) as (b + c)*(1/a).
    "nau-nmu-reciprocals": StackKind(
        "NAU[x, 1/x]->NMU[{h}]",
        _nau_nmu,
        PerWidth(_sum_and_reciprocal_columns, widest=3),
        SnapEach(product_of_sums_terms),
        reciprocal=True,
        multiplies_sums=True,
    ),
    # A product of sums is not the reciprocal of one: its variants are tried on y only.
    "nau-nmu-whitened": StackKind(
        "NAU->NMU[{h}] whitened",
        _nau_nmu,
        whitened_instances,
        SnapEach(product_of_sums_terms),
        transforms=("y",),
        place=Place.BEFORE,
        multiplies_sums=True,
        whitened=True,
    ),
    "nau-nmu-scale-groups": StackKind(
        "NAU->NMU[{h}] by scale",
        _nau_nmu,
        scale_group_instances,
        SnapEach(product_of_sums_terms),
        transforms=("y",),
        place=Place.AFTER,
        multiplies_sums=True,
    ),
    # A sum of products over each column once. Reading repeated columns (for powers), the
    # NMUs share a power between copies of a column and the sum settles on the wrong
    # products: measured, a - b/c and P + P*r*t were found over single columns and not
    # over repeated ones, and (1 - b/c)/a**2 only over repeated ones.
    "nmu-nau-single": StackKind(
        "NMU->NAU[{h}] single powers",
        _nmu_nau,
        PerWidth(_single_product_columns, widest=4),
        SnapEach(sum_of_products_terms),
        transforms=("y", "1/y", "y**2", "1/y**2"),
    ),
    "nmu-nau": StackKind(
        "NMU->NAU[{h}]",
        _nmu_nau,
        PerWidth(_product_columns, widest=4),
        SnapEach(sum_of_products_terms),
        # Roots of sums of monomials: sqrt(a**2 + b**2), and a/sqrt(1 - b/c) from
        # 1/y**2 = 1/a**2 - b/(a**2*c).
        transforms=("y", "1/y", "y**2", "1/y**2"),
    ),
    # Ratios of sums, (a - b)/(a + b) and kin; the reciprocal of one is another, so y only.
    "nau-ndu": StackKind(
        "NAU->NDU[{h}]",
        _nau_ndu,
        PerWidth(_sum_columns),
        SnapEach(ratio_of_sums_terms, scale_free=(0,)),
        transforms=("y",),
        place=Place.AFTER,
        fraction=True,
        degree=0,
    ),
    "nau-ndu-scale-groups": StackKind(
        "NAU->NDU[{h}] by scale",
        _nau_ndu,
        ratio_scale_group_instances,
        SnapEach(ratio_of_sums_terms, scale_free=(0,)),
        transforms=("y",),
        place=Place.AFTER,
        fraction=True,
    ),
    # A sum of monomials over a sum, P/Q: (a*b + c)/(a + b), a*b/(a + b + c); on 1/y also a
    # sum over a sum of monomials.
    "polynomial-ratio": StackKind(
        "(NMU->NAU)/NAU[{h}]",
        _polynomial_ratio,
        PerWidth(_sum_columns, widest=3),
        SnapEach(polynomial_ratio_terms, scale_free=(1, 2)),
        place=Place.AFTER,
        fraction=True,
    ),
    # Ratios of polynomials solved in closed form: P/Q over monomials of the inputs up to
    # degree 4, kept where Q factors into signed sums (f*(c + vo)/(c - vs), M*m*(1/r1 - 1/r2),
    # R1 + R2*R3/(R2 + R3)); with the plain units, as it costs a fraction of a run. On the
    # other transforms too: m0/sqrt(1 - v**2/c**2) as y**2 = m0**2*c**2/((c - v)*(c + v)),
    # k*exp(E*(1/T0 - 1/T)) as log(y), and with logarithms of the inputs on log(y), powers
    # times an exponential: v**2*exp(-v**2/2), exp(-(x - m)**2/(2*s**2))/s.
    "rational": StackKind(
        "P/Q",
        _no_layers,
        Single(_inputs),
        _no_structures,
        transforms=("y", "1/y", "y**2", "1/y**2", "sqrt(y)", "log(y)", "exp(y)"),
        solve=ratio_structures,
    ),
    # The same over the inputs and the functions of one input as variables:
    # sqrt(a**2 + b**2 - 2*a*b*cos(C)) on y**2, x**3/(exp(x) - 1) on 1/y, v**2*sin(t)*cos(t)/g,
    # exp(-exp(x)) on log(y).
    # Solved in closed form, these wait only for the single units' stages, not for the
    # trained stacks beyond arithmetic.
    "rational-functions": StackKind(
        "P/Q[x, {f}]",
        _no_layers,
        PerFunctionOfInput(),
        _no_structures,
        transforms=("y", "1/y", "y**2", "log(y)"),
        place=Place.LAST,
        solve=ratio_structures,
    ),
    # Functions of a dimensionless group of inputs at a simple rate, listed and fitted in
    # closed form (a second or less): V0*(1 - exp(-t/(R*C))), Ta + (T0 - Ta)*exp(-k*t),
    # V0*sin(2*pi*f*t), B*log(1 + S/N); on 1/y, K/(1 + exp(-r*t)), 1/(exp(E/T) - 1). Their
    # rates are fitted as the trained stacks' are.
    "function-of-argument": StackKind(
        "f(u) listed",
        _no_layers,
        Single(_arguments_inputs),
        _no_structures,
        place=Place.AFTER,
        composes=True,
        solve=function_compositions,
    ),
    # Products of a monomial, a listed function and an exponential, screened on log|y| in
    # closed form: A*exp(-b*t)*cos(w*t), n*R*T*log(V2/V1), v**2*sin(theta)**2/(2*g).
    "function-products": StackKind(
        "m*f(u)*exp(v) listed",
        _no_layers,
        Single(_arguments_inputs),
        _no_structures,
        transforms=("y",),
        place=Place.AFTER,
        solve=function_products,
        multiplies=True,
    ),
    # Sums of two listed functions, each times a linear combination of the inputs, screened
    # in closed form: A*cos(w*t) + B*sin(w*t), N1*exp(-t/t1) + N2*exp(-t/t2); on 1/y,
    # x**2*exp(x)/(exp(x) - 1)**2 as (exp(x) + exp(-x) - 2)/x**2.
    "function-pairs": StackKind(
        "f(u) + g(v) listed",
        _no_layers,
        Single(_arguments_inputs),
        _no_structures,
        place=Place.AFTER,
        solve=function_pairs,
        adds=True,
    ),
    # Functions of single inputs inside the arithmetic stacks: sin(x), log(a) - log(b),
    # a*sin(b)**2, cos(a)*cos(b) + sin(a)*sin(b), a*exp(-b/c) as log(y) = log(a) - b/c,
    # a*b*(1 - cos(c)).
    "nau-functions": StackKind(
        "NAU[x, f(x)]",
        _nau,
        Single(_function_sum_columns),
        SnapEach(sum_terms),
        transforms=("y",),
        family=Family.FUNCTIONS,
        separate_sums=True,
    ),
    "nmu-functions": StackKind(
        "NMU[x, {f}]",
        _nmu,
        PerFunctionGroup(_products_and_functions),
        SnapEach(product_terms),
        transforms=("y",),
        family=Family.FUNCTIONS,
        common_scale=False,
    ),
    "nmu-nau-functions": StackKind(
        "NMU[x, {f}]->NAU[{h}]",
        _nmu_nau,
        # Exponentials of inputs inside sums of products are rare; every group is costly here.
        PerFunctionGroup(_single_products_and_functions, widest=3, groups=("sin, cos", "log")),
        SnapEach(sum_of_products_terms),
        transforms=("y", "log(y)"),
        family=Family.FUNCTIONS,
    ),
    "nau-nmu-functions": StackKind(
        "NAU[x, {f}]->NMU[{h}]",
        _nau_nmu,
        PerFunctionGroup(_sums_and_functions, widest=3, groups=("sin, cos", "log")),
        SnapEach(product_of_sums_terms),
        transforms=("y",),
        family=Family.FUNCTIONS,
        multiplies_sums=True,
    ),
    # A function of a product, times a product: sin(a*b), A*cos(k*x), V*(1 - exp(-t/(R*C))),
    # exp(-E/(k*T)) beside a sum; on 1/y, K/(1 + exp(-r*t)) and 1/(exp(E/(k*T)) - 1). Its
    # arguments' rates are fitted by the search.
    "function-of-product": StackKind(
        "NMU*{f}(NMU)",
        _FunctionOfProduct("exp"),
        PerFunction(_single_inputs_and_reciprocals),
        _no_structures,
        transforms=("y", "1/y"),
        family=Family.FUNCTIONS,
        place=Place.AFTER,
        common_scale=False,
        composes=True,
    ),
    # A function of a product of two sums (of inputs and reciprocals), times a product:
    # exp(-(E2 - E1)/T), A*exp(Ea*(1/T0 - 1/T)), cos(w*(t - t0)). On y only: each job trains
    # a three-unit argument beside a product (about 5 s a job on 2-4 inputs).
    "function-of-product-of-sums": StackKind(
        "NMU*{f}(NAU->NMU[2])",
        _FunctionOfProductOfSums("exp"),
        PerFunction(
            _single_inputs_and_reciprocals,
            functions=("sin", "cos", "exp"),
            make=_FunctionOfProductOfSums,
            hidden=2,
        ),
        _no_structures,
        transforms=("y",),
        family=Family.FUNCTIONS,
        place=Place.AFTER,
        common_scale=False,
        composes=True,
    ),
    "nalu": StackKind("NALU", _nalu, Single(_positive_inputs), nalu_structures, family=Family.NALU),
    "nalu-nalu": StackKind(
        "NALU->NALU[{h}]",
        _nalu_nalu,
        PerWidth(_positive_inputs, width=2),
        nalu_structures,
        family=Family.NALU,
    ),
}


def architectures(space: Space) -> list[Architecture]:
    """Every stack offered on ``space``, kind by kind in :data:`STACK_KINDS` order."""
    return [arch for kind in STACK_KINDS.values() for arch in kind.instances(kind, space)]
