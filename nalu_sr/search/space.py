"""The search space: the feature table and the stacks of units that are trained on it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import sympy
import torch
from torch import nn

from ..training import second_moment
from ..units import NALU, NAU, NMU

#: An input is offered as a reciprocal only if it keeps one sign and its smallest magnitude is at
#: least this share of its largest (the NMRU idea needs inputs bounded away from zero).
RECIPROCAL_MIN_RATIO = 1e-2

#: A product of sums whose inputs' second moment has a largest eigenvalue at least this many
#: times its mean one is also trained in whitened coordinates (see ``Architecture.whitened``).
STIFFNESS = 20.0

#: Columns whose typical sizes (RMS) differ by more than this factor fall into separate scale
#: groups (see :func:`with_scale_group_variants`).
SCALE_GAP = 10.0

#: Most target scales a scale-group variant trains at (one per product of its groups' scales
#: that the target's size allows, see :func:`with_scale_group_variants`).
MAX_SCALE_CENTRES = 6


@dataclass(frozen=True)
class FeatureTable:
    """Columns the units see: the inputs, their reciprocals where safe, and a constant 1.

    Attributes
    ----------
    values : ndarray (n_rows, n_columns)
    expressions : list of sympy.Expr, one per column (``x``, ``1/x``, ``1``)
    inputs : list of int
        Columns holding the raw inputs.
    reciprocal_of : dict of int to int
        For each input column offered as a reciprocal, the column holding ``1/x``.
    constant : int
        Column of ones.
    """

    values: np.ndarray
    expressions: list[sympy.Expr]
    inputs: list[int]
    reciprocal_of: dict[int, int]
    constant: int

    @property
    def reciprocals(self) -> list[int]:
        return list(self.reciprocal_of.values())

    @property
    def n_columns(self) -> int:
        return self.values.shape[1]


def build_feature_table(
    X: np.ndarray, symbols: Sequence[sympy.Symbol], fit_rows: np.ndarray
) -> FeatureTable:
    """The feature table for inputs ``X``; reciprocals are judged on ``fit_rows`` only."""
    columns = [X[:, j] for j in range(X.shape[1])]
    expressions: list[sympy.Expr] = list(symbols)
    reciprocal_of = {}
    for j, symbol in enumerate(symbols):
        fitted = X[fit_rows, j]
        magnitude = np.abs(fitted)
        same_sign = np.all(fitted > 0) or np.all(fitted < 0)
        if same_sign and magnitude.min() >= RECIPROCAL_MIN_RATIO * magnitude.max():
            with np.errstate(divide="ignore"):
                columns.append(1.0 / X[:, j])
            expressions.append(1 / symbol)
            reciprocal_of[j] = len(columns) - 1
    columns.append(np.ones(X.shape[0]))
    expressions.append(sympy.Integer(1))
    return FeatureTable(
        values=np.column_stack(columns).astype(np.float64),
        expressions=expressions,
        inputs=list(range(X.shape[1])),
        reciprocal_of=reciprocal_of,
        constant=len(columns) - 1,
    )


@dataclass(frozen=True)
class Architecture:
    """One stack of units and the feature columns it reads.

    Attributes
    ----------
    name : str
        Shown in the candidates table, e.g. ``"NAU->NMU[2]"``.
    kind : str
        ``"nau"``, ``"nmu"``, ``"nau-nmu"``, ``"nmu-nau"``, ``"nalu"`` or ``"nalu-nalu"``.
    columns : tuple of int
        Feature-table columns fed to the first unit, in order (repeats give integer powers).
    hidden : int
        Width of the hidden layer (0 for single-unit stacks).
    common_scale : bool
        Whether all columns must share one scale for training (sums need it; pure products
        can scale each column on its own).
    whitened : bool
        Whether the first layer is trained with Adam in the coordinates where its inputs are
        white, longer and on more rows (see :func:`with_whitened_variants`).
    column_scales : tuple of float
        Fixed training scale of each column, one per scale group, with
        ``centres`` the target scales trained at (see :func:`with_scale_group_variants`);
        empty for the usual scaling.
    centres : tuple of float
    """

    name: str
    kind: str
    columns: tuple[int, ...]
    hidden: int = 0
    common_scale: bool = True
    whitened: bool = False
    column_scales: tuple[float, ...] = ()
    centres: tuple[float, ...] = ()

    @property
    def scale_groups(self) -> bool:
        return bool(self.column_scales)

    def network_factory(self) -> Callable[[], nn.Module]:
        n_in, hidden, kind = len(self.columns), self.hidden, self.kind

        def make() -> nn.Module:
            if kind == "nau":
                layers = [NAU(n_in, 1)]
            elif kind == "nmu":
                layers = [NMU(n_in, 1)]
            elif kind == "nau-nmu":
                layers = [NAU(n_in, hidden), NMU(hidden, 1)]
            elif kind == "nmu-nau":
                layers = [NMU(n_in, hidden), NAU(hidden, 1)]
            elif kind == "nalu":
                layers = [NALU(n_in, 1)]
            elif kind == "nalu-nalu":
                layers = [NALU(n_in, hidden), NALU(hidden, 1)]
            else:
                raise ValueError(f"unknown architecture kind {kind!r}")
            return nn.Sequential(*layers)

        return make


def _product_columns(table: FeatureTable, max_power: int, limit: int) -> tuple[int, ...]:
    """Columns a product reads: inputs and reciprocals, each ``max_power`` times.

    Wide tables would make products of every column with every power too costly to train, so
    repeats are dropped first, then reciprocals, to stay within ``limit`` columns.
    """
    for power, reciprocals in ((max_power, True), (1, True), (1, False)):
        columns = (*table.inputs, *(table.reciprocals if reciprocals else ()))
        if len(columns) * power <= limit or (power == 1 and not reciprocals):
            return tuple(c for c in columns for _ in range(power))
    raise AssertionError("unreachable")


def default_architectures(
    table: FeatureTable,
    *,
    max_power: int = 2,
    max_hidden: int | None = None,
    max_product_columns: int = 48,
) -> list[Architecture]:
    """The stacks tried, simplest first.

    Sums read the inputs (and the constant, inside products of sums); products read the inputs
    and safe reciprocals, each repeated ``max_power`` times so that integer powers up to
    ``max_power`` are reachable with weights in {0, 1}.
    """
    d = len(table.inputs)
    if max_hidden is None:
        max_hidden = min(4, max(2, d))
    inputs = tuple(table.inputs)
    product_columns = _product_columns(table, max_power, max_product_columns)
    with_constant = (*inputs, table.constant)
    architectures = [
        Architecture("NAU", "nau", inputs),
        Architecture("NMU", "nmu", product_columns, common_scale=False),
    ]
    if table.reciprocals:
        # Sums of reciprocals: with the 1/y target they give 1/y = 1/R1 + 1/R2 and kin.
        architectures.append(Architecture("NAU[1/x]", "nau", tuple(table.reciprocals)))
    for width in range(2, max_hidden + 1):
        architectures.append(Architecture(f"NAU->NMU[{width}]", "nau-nmu", with_constant, width))
        if width <= 4:
            architectures.append(
                Architecture(f"NMU->NAU[{width}]", "nmu-nau", product_columns, width)
            )
    # The NALU's log-space path sees |x|: offer it only inputs where |x| = x.
    positive = tuple(c for c in table.inputs if np.all(table.values[:, c] > 0))
    if positive:
        architectures.append(Architecture("NALU", "nalu", positive))
        architectures.append(Architecture("NALU->NALU[2]", "nalu-nalu", positive, 2))
    return architectures


def stiffness(values: np.ndarray) -> float:
    """Largest eigenvalue of the second moment ``E[x x^T]`` of ``values``' rows over the mean one.

    Many inputs that share a mean (all in [1, 2], say) give one direction, every weight of a
    row moving together, this many times stiffer than an average one; Adam's per-weight step
    sizes cannot see a direction spread over all weights.
    """
    eigenvalues = np.linalg.eigvalsh(second_moment(torch.as_tensor(values)).numpy())
    mean = float(eigenvalues.mean())
    return float(eigenvalues[-1]) / mean if mean > 0 else 1.0


def with_whitened_variants(
    architectures: Sequence[Architecture], table: FeatureTable, rows: np.ndarray
) -> list[Architecture]:
    """``architectures`` with a whitened variant after each product of sums whose inputs are
    stiff (:func:`stiffness` at least ``STIFFNESS``) on the feature-table ``rows``.

    There, a product of sums over many inputs, such as ``(x1 + ... + x25) * (x13 + ... + x37)``
    with every input in [1, 2], stalls with two near-equal sums: the way out is a slow direction
    that plain Adam does not follow within the usual training. Trained in whitened coordinates
    it does, in about 1e4 steps. The variant reads the inputs without the constant column:
    next to inputs with a common mean, the constant makes a direction so soft that whitened
    steps along it throw the weights against their bounds (measured: no copy fitted).
    """
    result = []
    for architecture in architectures:
        result.append(architecture)
        if architecture.kind != "nau-nmu" or architecture.whitened:
            continue
        columns = tuple(c for c in architecture.columns if c != table.constant)
        if stiffness(table.values[np.ix_(rows, columns)]) >= STIFFNESS:
            name = f"{architecture.name} whitened"
            result.append(replace(architecture, name=name, columns=columns, whitened=True))
    return result


def typical_size(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """RMS of ``values`` (per column with ``axis=0``), 1 where it is 0 or not finite: the
    size a column or target is divided by to bring it near 1."""
    rms = np.sqrt(np.mean(np.asarray(values, dtype=np.float64) ** 2, axis=axis))
    rms = np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)
    return float(rms) if axis is None else rms


def scale_group_scales(values: np.ndarray) -> np.ndarray:
    """A training scale per column, shared within each group: columns whose RMS lie within
    ``SCALE_GAP`` of their neighbours' form a group, scaled by the geometric mean of its RMS,
    so that its columns are near 1 (a power of ten would leave a difference of columns near
    350 and 300 at 0.06, their scale being 1,000).

    Examples
    --------
    >>> values = np.array([[290.0, 305.0, 1.5], [310.0, 295.0, 1.2]])
    >>> np.round(scale_group_scales(values), 1).tolist()
    [300.1, 300.1, 1.4]
    """
    logs = np.log10(typical_size(values, axis=0))
    order = np.argsort(logs, kind="stable")
    group = np.cumsum(np.diff(logs[order], prepend=logs[order[0]]) > np.log10(SCALE_GAP))
    scales = np.empty(len(logs))
    for g in np.unique(group):
        members = order[group == g]
        scales[members] = 10.0 ** logs[members].mean()
    return scales


def with_scale_group_variants(
    architectures: Sequence[Architecture],
    table: FeatureTable,
    rows: np.ndarray,
    target: np.ndarray,
) -> list[Architecture]:
    """``architectures`` with a scale-group variant after each product of sums whose columns
    fall into several scale groups (:func:`scale_group_scales` on the feature-table ``rows``,
    where the target is ``target``).

    A product of sums shares one scale among all its columns, so that a sum of columns with
    weights +-1 means the same in training and in the formula. When the columns' sizes differ
    widely, as in ``k*(T1 - T2)`` with temperatures near 300 and ``k`` near 1, that scale
    leaves some columns near 0 and the small differences of the others hidden under their
    common offset: no copy finds the product. The variant scales each group of similar
    columns by its own scale, which keeps sums within a group exact (a sum across
    groups cannot be written with unit weights and scores badly), and trains at the target
    scales a product of ``hidden`` sums can have: each product of ``hidden`` group scales
    that the target's RMS allows, the scaled product (a product of ``hidden`` sums of columns
    near 1) being between ``10**-(2 * hidden)`` (small differences) and ``10**hidden`` of it.
    It is added only when those are at most ``MAX_SCALE_CENTRES``.
    """
    size = typical_size(target)
    result = []
    for architecture in architectures:
        result.append(architecture)
        if architecture.kind != "nau-nmu" or architecture.whitened or architecture.scale_groups:
            continue
        scales = scale_group_scales(table.values[np.ix_(rows, architecture.columns)])
        groups = np.unique(scales)
        if len(groups) < 2:
            continue
        h = architecture.hidden
        centres = sorted(
            {
                centre
                for combination in itertools.combinations_with_replacement(groups, h)
                if 10.0 ** -(2 * h) <= size / (centre := float(np.prod(combination))) <= 10.0**h
            }
        )
        if 0 < len(centres) <= MAX_SCALE_CENTRES:
            result.append(
                replace(
                    architecture,
                    name=f"{architecture.name} by scale",
                    column_scales=tuple(float(c) for c in scales),
                    centres=tuple(centres),
                )
            )
    return result
