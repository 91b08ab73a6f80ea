"""Training one architecture on a feature table and collecting its snapped structures."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..regularization import AnnealedRegularization
from ..snapping import Composition, SnapInputs
from ..structure import Structure
from ..training import (
    Ensemble,
    TrainingResult,
    affine_mse,
    centred_mse,
    fraction_affine_mse,
    fraction_mse,
    per_copy_mse,
    row_mean,
    second_moment,
    train,
)
from ..units import NMU
from .function_pairs import FunctionPair
from .function_products import FunctionProduct
from .space import FeatureTable, typical_size
from .stacks import Architecture


@dataclass(frozen=True)
class TrainingSettings:
    """How each architecture is trained.

    A snapped stack of units has no free scale: NMU factors are the inputs themselves and NAU
    weights are +-1, so the target must be matched at its own scale. The formula's constant
    factor is unknown before the structure is, so each architecture is trained at once against
    the target divided by every scale of a geometric grid (``scale_steps`` steps of a factor
    ``scale_ratio`` either side of the centre), ``restarts`` copies per scale; the copy whose
    scale is close to the true constant finds the structure, and least squares refits the
    constant after snapping. The centre, where a formula with unit coefficients is matched
    (the most common case: ``a*b + b*c``, ``I*R``), gets ``centre_weight`` times as many.
    """

    restarts: int = 2
    centre_weight: int = 3
    scale_steps: int = 6
    scale_ratio: float = 2**0.5
    steps: int = 1500
    lr: float = 0.03
    penalty: float = 1.0
    ramp: tuple[float, float] = (0.2, 0.6)
    batch_size: int | None = None
    alternatives: int = 16
    #: Copies added to each job's grid that fit the target up to a free scale and offset (see
    #: :func:`~nalu_sr.training.affine_mse`), so that a shape such as ``1 - c/h`` or
    #: ``5 - a*b`` trains towards its product; the grid's copies fit the target as it is (on
    #: the suite, products of sums such as ``a*b + b*c + c*a`` need them). Whitened variants
    #: have none.
    affine_copies: int = 8
    #: Copies of a stack trained in log space (``StackKind.log_space``), which has no scale
    #: grid: the constant factor is an offset there.
    log_copies: int = 8
    #: Copies of a stack that composes a function with a product (``StackKind.composes``),
    #: all fitting the target up to scale and offset: their rates start spread out instead.
    function_copies: int = 24
    #: Whitened variants (``Architecture.whitened``): copies, all at the grid's centre, steps,
    #: learning rate, penalty ramp (fractions of the steps) and training rows. They stop early
    #: once a copy fits the target to ``whitened_fit`` (relative MSE) after the ramp.
    whitened_copies: int = 4
    whitened_steps: int = 14_000
    whitened_lr: float = 0.01
    whitened_ramp: tuple[float, float] = (1 / 7, 3 / 7)
    whitened_rows: int = 1024
    whitened_fit: float = 1e-8

    def schedule(self, whitened: bool = False) -> AnnealedRegularization:
        steps = self.whitened_steps if whitened else self.steps
        ramp = self.whitened_ramp if whitened else self.ramp
        start, end = (int(f * steps) for f in ramp)
        return AnnealedRegularization(strength=self.penalty, start=start, end=end)

    def grid(self, architecture: Architecture) -> np.ndarray:
        """Target scale of each trained copy of ``architecture``, relative to the centre: the
        whole grid, the whitened variant's few copies all at the centre, or the whole grid
        around each of a scale-group variant's centres; then the affine copies (see
        :meth:`affine`)."""
        if architecture.whitened:
            return np.ones(self.whitened_copies)
        if architecture.kind.log_space:
            return np.ones(self.log_copies)
        if architecture.kind.composes:
            return np.ones(self.function_copies)
        if architecture.scale_groups:
            grid = np.concatenate([centre * self.scales() for centre in architecture.centres])
        else:
            grid = self.scales()
        return np.concatenate([grid, np.ones(self.affine_copies)])

    def affine(self, architecture: Architecture) -> np.ndarray:
        """Whether each copy of :meth:`grid` fits the target up to scale and offset (the last
        ``affine_copies``, whose scale does not matter)."""
        copies = self.copies(architecture)
        if architecture.kind.composes:
            return np.ones(copies, dtype=bool)
        extra = 0 if architecture.whitened or architecture.kind.log_space else self.affine_copies
        return np.arange(copies) >= copies - extra

    def copies(self, architecture: Architecture) -> int:
        return len(self.grid(architecture))

    def scales(self) -> np.ndarray:
        exponents = np.arange(-self.scale_steps, self.scale_steps + 1)
        copies = np.full(len(exponents), self.restarts)
        copies[self.scale_steps] *= self.centre_weight
        return np.repeat(self.scale_ratio**exponents, copies)


@dataclass
class JobResult:
    """Structures found by one architecture on one target transform (one job, or one chunk of
    its copies, see :func:`copy_chunks`)."""

    architecture: str
    transform: str
    structures: list[Structure] = field(default_factory=list)
    compositions: list[Composition] = field(default_factory=list)
    products: list[FunctionProduct] = field(default_factory=list)
    pairs: list[FunctionPair] = field(default_factory=list)
    reseeded: int = 0
    seconds: float = 0.0
    timed_out: bool = False


#: NMU weights (copies x weights per copy) trained in one job chunk. An NMU's product costs
#: far more per weight than a sum, so an architecture with many NMU weights is trained in
#: several chunks of copies, which run side by side when there are several workers. Smaller
#: chunks balance two workers better (an odd number of long chunks leaves one waiting at the
#: end) but each chunk repeats the per-step overhead: 500 kept one worker as fast as 1000 did.
NMU_WEIGHTS_PER_CHUNK = 500


#: Training steps between checks of a job's deadline.
DEADLINE_CHECK_STEPS = 50


def copy_chunks(architecture: Architecture, settings: TrainingSettings) -> list[slice]:
    """The copies of one job, in chunks trained separately (the same ones for any ``n_jobs``)."""
    copies = settings.copies(architecture)
    network = architecture.network_factory()()
    weights = sum(m.weight.numel() for m in network.modules() if isinstance(m, NMU))
    n_chunks = max(1, min(copies, math.ceil(copies * weights / NMU_WEIGHTS_PER_CHUNK)))
    bounds = np.linspace(0, copies, n_chunks + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _power_of_ten(value: float) -> float:
    if not np.isfinite(value) or value <= 0:
        return 1.0
    return float(10.0 ** np.round(np.log10(value)))


def training_scales(
    architecture: Architecture,
    inputs: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Column scales for the inputs and the centre of the target's scale grid.

    Products of single columns (``common_scale=False``) are indifferent to each column's
    scale, so every column is brought to RMS 1 and the target too. Sums need one scale for all
    columns; it is a power of ten, so moderate data is trained as it is and a formula with
    unit coefficients is matched at the grid's centre. RMS values are weighted by the rows'
    ``weights``, so that a row of weight 2 counts as that row twice here too.
    """
    if architecture.scale_groups:
        return np.asarray(architecture.column_scales), 1.0  # the centres are in the grid
    rms = typical_size(inputs, axis=0, weights=weights)
    target_rms = typical_size(target, weights=weights)
    if not architecture.common_scale:
        return rms, target_rms
    column_scale = _power_of_ten(float(np.median(rms)))
    degree = max(1, architecture.hidden) if architecture.kind.multiplies_sums else 1
    if architecture.kind.degree is not None:
        degree = architecture.kind.degree
    return np.full_like(rms, column_scale), column_scale**degree


@dataclass(frozen=True)
class Job:
    """One unit of search work: an architecture trained on one form of the target.

    Attributes
    ----------
    stage : int
        Position of the job's stage in the search (stage 0 always runs to its end).
    architecture : Architecture
    transform : str
        Form of the target trained on (``"y"`` or ``"1/y"``).
    seed : int
        Seed of the job's copies; the same for every chunk of it.
    chunk : slice
        The copies of the job's grid trained here (see :func:`copy_chunks`).
    """

    stage: int
    architecture: Architecture
    transform: str
    seed: int
    chunk: slice = field(default_factory=lambda: slice(None))


def run_job(
    job: Job,
    table: FeatureTable,
    target: np.ndarray,
    settings: TrainingSettings,
    deadline: float | None = None,
    weights: np.ndarray | None = None,
) -> JobResult:
    """Train ``job``'s architecture on the rows of ``table`` against ``target`` (the job's form
    of the target) at every scale of its chunk of the grid, and snap every copy.

    Training that reaches ``deadline`` (a :func:`time.time` value) stops and yields no
    structures, only ``timed_out=True``. Row ``weights`` (one per row of ``table``) weigh
    every copy's training loss.
    """
    started = time.perf_counter()
    architecture = job.architecture
    columns = list(architecture.columns)
    if architecture.kind.solve is not None:
        solved = architecture.kind.solve(table, columns, target, job.transform, weights)
        outcome = JobResult(architecture.name, job.transform)
        if architecture.kind.multiplies:
            outcome.products = solved
        elif architecture.kind.adds:
            outcome.pairs = solved
        elif architecture.kind.composes:
            outcome.compositions = solved
        else:
            outcome.structures = solved
        outcome.seconds = time.perf_counter() - started
        return outcome
    inputs = table.values[:, columns]
    grid = settings.grid(architecture)
    seeds = np.random.SeedSequence(job.seed).generate_state(len(grid)).tolist()[job.chunk]
    column_scale = None
    if architecture.kind.log_space:
        X_t, Y_t = _log_data(inputs, target, len(seeds), weights)
    else:
        column_scale, centre = training_scales(architecture, inputs, target, weights)
        scales = centre * grid[job.chunk]
        X_t = torch.as_tensor(inputs / column_scale, dtype=torch.float64)
        Y_t = torch.as_tensor(target[None, :, None] / scales[:, None, None], dtype=torch.float64)
    affine = torch.as_tensor(settings.affine(architecture)[job.chunk])
    W_t = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
    ensemble, result, late = _train_copies(
        architecture, seeds, (X_t, Y_t, W_t), affine, settings, deadline
    )
    outcome = JobResult(architecture.name, job.transform, reseeded=result.reseeded)
    if late and result.stopped_early:
        outcome.timed_out = True
        outcome.seconds = time.perf_counter() - started
        return outcome
    snap_inputs = SnapInputs(
        columns,
        table.reciprocal_of,
        X_t,
        settings.alternatives,
        constant=table.constant,
        column_scales=None if column_scale is None else np.asarray(column_scale),
    )
    kind = architecture.kind
    # A composing stack snaps to compositions, every other one to structures.
    snap = kind.compositions if kind.composes else kind.structures
    seen: dict[Structure | Composition, None] = {}
    for r in range(len(ensemble)):
        seen.update(dict.fromkeys(snap(ensemble.network(r), snap_inputs)))
    if kind.composes:
        outcome.compositions = list(seen)
    else:
        outcome.structures = list(seen)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _log_data(
    inputs: np.ndarray, target: np.ndarray, copies: int, weights: np.ndarray | None = None
) -> tuple[torch.Tensor, ...]:
    """Logarithms of the columns' and the target's magnitudes, each centred on its (weighted)
    mean (an offset is the formula's constant factor, which the loss leaves free), the target
    once per copy."""
    with np.errstate(divide="ignore"):
        logs = np.log(np.abs(inputs))
        log_target = np.log(np.abs(target))
    logs -= np.average(logs, axis=0, weights=weights)
    centred = log_target - np.average(log_target, weights=weights)
    log_target = np.broadcast_to(centred, (copies, len(target)))
    X_t = torch.as_tensor(logs, dtype=torch.float64)
    return X_t, torch.as_tensor(np.ascontiguousarray(log_target)[..., None], dtype=torch.float64)


def _train_copies(
    architecture: Architecture,
    seeds: list[int],
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
    affine: torch.Tensor,
    settings: TrainingSettings,
    deadline: float | None,
) -> tuple[Ensemble, TrainingResult, list[int]]:
    """One copy of ``architecture`` per seed, trained on ``data`` (inputs, a target per copy,
    and row weights or None), up to scale and offset where ``affine``; with the training
    result and the steps at which ``deadline`` was found passed (empty if never)."""
    X_t, Y_t, W_t = data
    whitened = architecture.whitened
    steps = settings.whitened_steps if whitened else settings.steps
    schedule = settings.schedule(whitened)
    if W_t is None:
        fitted = settings.whitened_fit * Y_t.pow(2).mean(dim=(1, 2))
    else:
        fitted = settings.whitened_fit * row_mean(Y_t.pow(2), W_t)[:, 0]
    late: list[int] = []

    def stop(step: int, ensemble: Ensemble, mse: torch.Tensor) -> bool:
        if deadline is not None and time.time() > deadline:
            late.append(step)
            return True
        # A whitened copy that fits once the penalty is in full has found its structure.
        return whitened and step >= schedule.end and bool((mse <= fitted).any())

    # The tensors are small: one thread avoids spin-waiting, and parallelism comes from
    # running independent architectures side by side.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ensemble = Ensemble(architecture.network_factory(), seeds, dtype=torch.float64)
        result = train(
            ensemble,
            lambda step: (X_t, Y_t),
            steps=steps,
            lr=settings.whitened_lr if whitened else settings.lr,
            schedule=schedule,
            eval_every=steps if deadline is None and not whitened else DEADLINE_CHECK_STEPS,
            callback=stop,
            whiten={"net.0.weight": second_moment(X_t, W_t)} if whitened else None,
            loss=_weighted(
                centred_mse
                if architecture.kind.log_space
                else _mixed_loss(affine, architecture.kind.fraction),
                W_t,
            ),
        )
    finally:
        torch.set_num_threads(threads)
    return ensemble, result, late


def _weighted(loss: Callable[..., torch.Tensor], weights: torch.Tensor | None) -> Callable:
    """``loss`` with its row ``weights`` bound (itself, without weights)."""
    return loss if weights is None else functools.partial(loss, weights=weights)


def _mixed_loss(affine: torch.Tensor, fraction: bool = False) -> Callable[..., torch.Tensor]:
    """The training loss of each copy: :func:`~nalu_sr.training.affine_mse` where ``affine``,
    the plain MSE elsewhere (their :func:`~nalu_sr.training.fraction_mse` forms for a stack
    that ends in a division). The affine copies come last (see
    :meth:`TrainingSettings.affine`), so each loss is computed on its own copies only."""
    plain_loss, affine_loss = (
        (fraction_mse, fraction_affine_mse) if fraction else (per_copy_mse, affine_mse)
    )
    plain = int((~affine).sum())
    if plain == len(affine):
        return plain_loss
    if plain == 0:
        return affine_loss

    def loss(
        prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.cat(
            [
                plain_loss(prediction[:plain], target[:plain], weights),
                affine_loss(prediction[plain:], target[plain:], weights),
            ]
        )

    return loss
