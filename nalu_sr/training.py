"""Training R independent copies of a network as one batched computation.

The copies' parameters are stacked along a leading "restart" dimension
(:func:`torch.func.stack_module_state`) and the network is run once for all of them: directly when
it is built only from arithmetic units (which broadcast over stacked weights), otherwise through
:func:`torch.func.vmap`. Adam is element-wise, so one optimiser over the stacked tensors trains
every copy exactly as if it were alone; a copy whose loss turns NaN or Inf is re-seeded in place.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from .regularization import AnnealedRegularization
from .units import ArithmeticUnit, network_bounds

#: ``sample(step) -> (X, y)``: X is ``(B, in)`` shared by all copies or ``(R, B, in)`` per copy.
Sampler = Callable[[int], tuple[Tensor, Tensor]]
#: ``callback(step, ensemble, mse) -> stop?``, called every ``eval_every`` steps.
Callback = Callable[[int, "Ensemble", Tensor], bool | None]


def total_regularizer(network: nn.Module) -> Tensor:
    """Sum of the sparsity penalties of every arithmetic unit inside ``network``."""
    penalties = [m.regularizer() for m in network.modules() if isinstance(m, ArithmeticUnit)]
    if not penalties:
        return torch.zeros(())
    return torch.stack(torch.broadcast_tensors(*penalties)).sum(dim=0)


class _WithPenalty(nn.Module):
    """Returns the network's output and its penalty from one ``forward``, so both run under vmap."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(x), total_regularizer(self.net)


def reseed(seed: int, attempt: int) -> int:
    """A fresh, reproducible seed for the ``attempt``-th restart of the copy seeded ``seed``."""
    return int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])


class Ensemble:
    """``R`` independent copies of a network, one per seed, evaluated in one batched call.

    Parameters
    ----------
    make_network : callable
        Builds one fresh copy of the network (its initialisation draws from torch's global RNG,
        which is seeded per copy).
    seeds : sequence of int
        One seed per copy; copy ``r`` is initialised exactly as ``make_network()`` after
        ``torch.manual_seed(seeds[r])``.
    dtype : torch.dtype
        Parameter dtype.

    Examples
    --------
    >>> from nalu_sr.units import NAU
    >>> ensemble = Ensemble(lambda: NAU(2, 1), seeds=[0, 1, 2])
    >>> ensemble(torch.ones(4, 2))[0].shape
    torch.Size([3, 4, 1])
    """

    def __init__(
        self,
        make_network: Callable[[], nn.Module],
        seeds: Sequence[int],
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if len(seeds) == 0:
            raise ValueError("An ensemble needs at least one seed.")
        self.make_network = make_network
        self.seeds = [int(s) for s in seeds]
        self.dtype = dtype
        copies = [self._build(seed) for seed in self.seeds]
        self._template = copies[0]
        params, buffers = stack_module_state(copies)
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers
        self._bounds = network_bounds(self._template)
        # Units broadcast over stacked weights, so a network made only of them is run as one
        # module holding the stacked tensors; anything else (nn.Linear, ...) goes through vmap.
        self._stacked = None
        if all(
            isinstance(m, nn.Sequential | _WithPenalty) or getattr(m, "broadcasts", False)
            for m in self._template.modules()
        ):
            self._stacked = copy.deepcopy(self._template)
            for name, value in self.params.items():
                owner, _, leaf = name.rpartition(".")
                setattr(self._stacked.get_submodule(owner), leaf, nn.Parameter(value))
            self.params = dict(self._stacked.named_parameters())

    def __len__(self) -> int:
        return len(self.seeds)

    def _build(self, seed: int) -> _WithPenalty:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _WithPenalty(self.make_network()).to(self.dtype)

    def _call_one(self, params: dict, buffers: dict, x: Tensor) -> tuple[Tensor, Tensor]:
        return functional_call(self._template, (params, buffers), (x,))

    def __call__(self, x: Tensor, with_penalty: bool = True) -> tuple[Tensor, Tensor | None]:
        """Outputs ``(R, B, out)`` and, if asked, penalties ``(R,)`` of every copy.

        ``x`` is ``(B, in)``, shared by all copies, or ``(R, B, in)``, one batch per copy.
        """
        x = x.to(self.dtype)
        if self._stacked is not None:
            output = self._stacked.net(x)
            return output, total_regularizer(self._stacked.net) if with_penalty else None
        x_dim = 0 if x.dim() == 3 else None
        return vmap(self._call_one, in_dims=(0, 0, x_dim))(self.params, self.buffers, x)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Clip bounded parameters of every copy into their bounds."""
        for name, (low, high) in self._bounds.items():
            self.params[name].clamp_(low, high)

    @torch.no_grad()
    def reseed_(self, index: int, seed: int) -> None:
        """Re-initialise copy ``index`` from ``seed``."""
        fresh = dict(self._build(seed).named_parameters())
        for name, value in self.params.items():
            value[index] = fresh[name]
        self.seeds[index] = seed

    @torch.no_grad()
    def finite_copies(self) -> Tensor:
        """Boolean ``(R,)``: copies whose parameters are all finite."""
        ok = torch.ones(len(self), dtype=torch.bool)
        for value in self.params.values():
            ok &= torch.isfinite(value.reshape(len(self), -1)).all(dim=1)
        return ok

    def network(self, index: int) -> nn.Module:
        """A standalone copy of the network holding copy ``index``'s parameters."""
        net = copy.deepcopy(self._template)
        with torch.no_grad():
            for name, value in net.named_parameters():
                value.copy_(self.params[name][index])
        return net.net

    @torch.no_grad()
    def set_network_(self, index: int, network: nn.Module) -> None:
        """Write a standalone network's parameters (one from :meth:`network`) into copy
        ``index``."""
        for name, value in network.named_parameters():
            self.params[f"net.{name}"][index] = value

    def state(self) -> dict[str, Tensor]:
        """A detached snapshot of the stacked parameters (for checkpoints)."""
        return {k: v.detach().clone() for k, v in self.params.items()}

    @torch.no_grad()
    def load_state_(self, state: dict[str, Tensor], mask: Tensor | None = None) -> None:
        """Restore a snapshot, for all copies or only where ``mask`` is true."""
        for name, value in self.params.items():
            if mask is None:
                value.copy_(state[name])
            else:
                value[mask] = state[name][mask]


@dataclass
class TrainingResult:
    """What :func:`train` did.

    Attributes
    ----------
    steps : int
        Optimiser steps taken.
    mse : Tensor
        ``(R,)`` training MSE of each copy at the last step.
    reseeded : int
        Copies dropped and re-seeded after a NaN/Inf.
    stopped_early : bool
        Whether the callback ended training before ``steps``.
    """

    steps: int
    mse: Tensor
    reseeded: int = 0
    stopped_early: bool = False
    history: list[tuple[int, Tensor]] = field(default_factory=list)


def second_moment(x: Tensor, weights: Tensor | None = None) -> Tensor:
    """``E[x x^T]`` over the rows of ``x``: ``(in, in)`` from ``(B, in)``, or one per copy from
    ``(R, B, in)``: what :func:`train` takes in ``whiten`` for a weight reading these inputs.
    With row ``weights`` ``(B,)``, the weighted mean.
    """
    if weights is None:
        return x.transpose(-1, -2) @ x / x.shape[-2]
    weights = (weights / weights.sum()).to(x.dtype)
    return x.transpose(-1, -2) @ (x * weights[:, None])


def _symmetric_roots(moment: Tensor) -> tuple[Tensor, Tensor]:
    """``C^(1/2)`` and ``C^(-1/2)`` of a second-moment matrix divided by its mean diagonal.

    The division keeps only the matrix's shape: inputs of any common scale get the same steps,
    and uncorrelated inputs of equal scale get plain Adam's. Eigenvalues are floored at 1e-8 of
    the largest, so repeated or constant columns do not make the inverse blow up.
    """
    diagonal = moment.diagonal(dim1=-2, dim2=-1).mean(dim=-1)
    moment = moment / diagonal.clamp_min(torch.finfo(moment.dtype).tiny)[..., None, None]
    values, vectors = torch.linalg.eigh(moment)
    values = values.clamp_min(values.amax(dim=-1, keepdim=True) * 1e-8)
    transposed = vectors.transpose(-1, -2)
    return (
        vectors @ torch.diag_embed(values.sqrt()) @ transposed,
        vectors @ torch.diag_embed(values.rsqrt()) @ transposed,
    )


class _Optimizer:
    """Adam over the ensemble's parameters, some of them in whitened coordinates.

    A weight ``W`` listed in ``whiten`` with the second moment ``C`` of its inputs is trained as
    ``V = W C^(1/2)``: Adam sees the gradient ``dL/dW C^(-1/2)`` and its step on ``V`` reaches
    ``W`` as ``V C^(-1/2)`` (``C`` scaled to a mean diagonal of 1). The network computes the same
    function; only the optimiser's geometry changes, to the one it would have if the inputs were
    uncorrelated. When inputs share a large mean (all positive, as on U[1, 2]) every first-layer
    row has one direction, moving all its weights together, that is orders of magnitude stiffer
    than the rest; Adam's per-weight scaling cannot see a direction spread over all weights, so
    without this its steps along the others are drowned by the jitter along that one.
    """

    def __init__(
        self, params: Mapping[str, Tensor], whiten: Mapping[str, Tensor], lr: float
    ) -> None:
        unknown = sorted(set(whiten) - set(params))
        if unknown:
            raise ValueError(f"whiten names no parameter {unknown}; known: {sorted(params)}.")
        self.params = params
        self.roots = {}
        self.shadows = {}
        for name, moment in whiten.items():
            weight = params[name]
            moment = torch.as_tensor(moment, dtype=torch.float64)
            if moment.shape[-1] != weight.shape[-1] or moment.shape[-2] != weight.shape[-1]:
                raise ValueError(
                    f"whiten[{name!r}] has shape {tuple(moment.shape)}; the weight reads "
                    f"{weight.shape[-1]} inputs, so it must be ({weight.shape[-1]}, "
                    f"{weight.shape[-1]}) or one such matrix per copy."
                )
            root, inverse = (r.to(weight.dtype) for r in _symmetric_roots(moment))
            self.roots[name] = (root, inverse)
            self.shadows[name] = (weight.detach() @ root).requires_grad_(True)
        plain = [p for n, p in params.items() if n not in whiten]
        self.adam = torch.optim.Adam([*plain, *self.shadows.values()], lr=lr)

    def zero_grad(self) -> None:
        for value in self.params.values():
            value.grad = None if value.grad is None else value.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for name, shadow in self.shadows.items():
            shadow.grad = self.params[name].grad @ self.roots[name][1]
        self.adam.step()
        for name, shadow in self.shadows.items():
            self.params[name].copy_(shadow @ self.roots[name][1])

    @torch.no_grad()
    def reset_state_(self, index: Tensor) -> None:
        """Forget Adam's moments for the copies in ``index`` (re-seeded copies start afresh)."""
        for state in self.adam.state.values():
            for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if key in state:
                    state[key][index] = 0

    @torch.no_grad()
    def sync(self) -> None:
        """Follow changes made to the weights outside :meth:`step` (clamping, re-seeding)."""
        for name, shadow in self.shadows.items():
            shadow.copy_(self.params[name] @ self.roots[name][0])


def _broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    if shape == target:
        return True  # the usual case, checked on every step: skip torch's general rule
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


def _match_target(prediction: Tensor, target: Tensor) -> Tensor:
    """``target`` shaped to broadcast onto ``prediction`` (R, B, out), or a clear error.

    Accepted: (B, out) or (R, B, out) targets, and (B,) or (R, B) for a single output.
    """
    if not _broadcasts_to(target.shape, prediction.shape):
        single = target.unsqueeze(-1)
        if prediction.shape[-1] != 1 or not _broadcasts_to(single.shape, prediction.shape):
            raise ValueError(
                f"targets of shape {tuple(target.shape)} do not fit outputs of shape "
                f"{tuple(prediction.shape)}; give (B, out) or (R, B, out) targets."
            )
        target = single
    return target.to(prediction.dtype)


def row_mean(values: Tensor, weights: Tensor | None = None, keepdim: bool = False) -> Tensor:
    """Mean of ``values`` ``(R, B, ...)`` over its rows (dim 1), weighted by ``weights``.

    Parameters
    ----------
    values : Tensor of shape (R, B, ...)
    weights : Tensor of shape (B,), optional
        Non-negative row weights (any scale: they are divided by their sum); a plain mean
        without them.
    keepdim : bool, default=False
        Keep the row dimension, with size 1.

    Returns
    -------
    Tensor of shape (R, ...), or (R, 1, ...) with ``keepdim``
    """
    if weights is None:
        return values.mean(dim=1, keepdim=keepdim)
    shape = (1, -1) + (1,) * (values.dim() - 2)
    weights = (weights / weights.sum()).to(values.dtype).view(shape)
    return (values * weights).sum(dim=1, keepdim=keepdim)


def _copy_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    """Each copy's mean over rows (weighted) and outputs: ``(R,)`` from ``(R, B, ...)``."""
    if weights is None:
        return values.flatten(1).mean(dim=1)
    return row_mean(values, weights).flatten(1).mean(dim=1)


def per_copy_mse(prediction: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean squared error of each copy: ``(R,)`` from outputs ``(R, B, out)``; with row
    ``weights`` ``(B,)``, the weighted mean (as are all the losses below)."""
    return _copy_mean((prediction - _match_target(prediction, target)).pow(2), weights)


def affine_mse(prediction: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Each copy's MSE after the best scale and offset, over the target's variance: ``(R,)``.

    A snapped stack's scale and offset are refitted by least squares after snapping, so a
    copy only has to match the target up to ``a * output + b``: ``1 - c/h`` trains an NMU
    towards ``c/h``, ``c - a*b`` towards ``a*b``. ``a`` and ``b`` are solved in closed form
    each step and held fixed in the gradient, which is then exactly that of the best affine
    fit (they minimise the error). Dividing by the target's variance makes the loss
    ``1 - R**2``, whatever the target's scale and offset.
    """
    target = _match_target(prediction, target).expand_as(prediction)
    p = prediction - row_mean(prediction, weights, keepdim=True)
    t = target - row_mean(target, weights, keepdim=True)
    with torch.no_grad():
        variance = row_mean(p.pow(2), weights, keepdim=True)
        scale = row_mean(p * t, weights, keepdim=True) / variance.clamp_min(1e-300)
        spread = _copy_mean(t.pow(2), weights).clamp_min(1e-300)
    return _copy_mean((t - scale * p).pow(2), weights) / spread


def centred_mse(prediction: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Each copy's MSE up to a free offset, over the target's variance: ``(R,)``.

    A product unit trained in log space matches ``log|y|`` up to ``log|c|``, the formula's
    constant factor, which least squares refits after snapping; its scale is the exponents
    themselves, so, unlike :func:`affine_mse`, only the offset is free.
    """
    target = _match_target(prediction, target).expand_as(prediction)
    p = prediction - row_mean(prediction, weights, keepdim=True)
    t = target - row_mean(target, weights, keepdim=True)
    spread = _copy_mean(t.pow(2), weights).clamp_min(1e-300)
    return _copy_mean((t - p).pow(2), weights) / spread


def _fraction_parts(prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Numerator, denominator and target of a fraction output ``(R, B, 2)``, each ``(R, B)``."""
    if prediction.shape[-1] != 2:
        raise ValueError(
            f"a fraction loss needs outputs (R, B, 2), numerator then denominator; got "
            f"{tuple(prediction.shape)}."
        )
    numerator, denominator = prediction[..., 0], prediction[..., 1]
    target = _match_target(prediction[..., :1], target).expand_as(prediction[..., :1])[..., 0]
    return numerator, denominator, target


def fraction_mse(prediction: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Each copy's error as a fraction ``numerator / denominator`` of the target, never
    dividing: ``mean((n - t*d)**2) / mean((t*d)**2)``, shape ``(R,)``.

    Multiplied through by the denominator (the equation error of rational fitting), the loss
    is the relative squared error of ``n/d`` weighted by ``d**2``: zero exactly where the
    fraction is the target, finite where ``d`` passes through zero, and unchanged when ``n``
    and ``d`` are scaled together.
    """
    n, d, t = _fraction_parts(prediction, target)
    scaled = t * d
    size = row_mean(scaled.pow(2), weights)
    # A denominator of zero on every row (a sum whose weights all went to 0) is no fraction:
    # its loss is that of predicting nothing, not the 0/0 of a perfect fit.
    error = row_mean((n - scaled).pow(2), weights)
    return torch.where(size > 0, error / size.clamp_min(1e-300), 1.0)


def fraction_affine_mse(
    prediction: Tensor, target: Tensor, weights: Tensor | None = None
) -> Tensor:
    """:func:`fraction_mse` up to a free scale and offset, as :func:`affine_mse` is for plain
    outputs: ``t ≈ a * n/d + b`` is ``t*d ≈ a*n + b*d``, whose ``a`` and ``b`` are solved in
    closed form each step (held fixed in the gradient); divided by the same error with ``a = 0``
    (the best constant), it is ``1 - R**2`` with weights ``d**2``."""
    n, d, t = _fraction_parts(prediction, target)
    scaled = t * d
    with torch.no_grad():
        n_n, n_d, d_d = (row_mean(a, weights) for a in (n * n, n * d, d * d))
        n_s, d_s = row_mean(n * scaled, weights), row_mean(d * scaled, weights)
        # n proportional to d (a constant fraction) leaves a and b undetermined: a floor on
        # the determinant keeps them finite there.
        determinant = torch.maximum(n_n * d_d - n_d * n_d, 1e-12 * n_n * d_d).clamp_min(1e-300)
        a = ((n_s * d_d - d_s * n_d) / determinant)[:, None]
        b = ((d_s * n_n - n_s * n_d) / determinant)[:, None]
        best = (d_s / d_d.clamp_min(1e-300))[:, None]
    spread = row_mean((scaled - best * d).pow(2), weights)
    error = row_mean((scaled - a * n - b * d).pow(2), weights) / spread.clamp_min(1e-300)
    return torch.where(spread > 0, error, 1.0)  # as in fraction_mse, d = 0 is no fraction


def train(
    ensemble: Ensemble,
    data: tuple[Tensor, Tensor] | Sampler,
    *,
    steps: int,
    lr: float = 1e-2,
    schedule: AnnealedRegularization | None = None,
    batch_size: int | None = None,
    eval_every: int = 1000,
    callback: Callback | None = None,
    random_state: int = 0,
    loss: Callable[[Tensor, Tensor], Tensor] = per_copy_mse,
    whiten: Mapping[str, Tensor] | None = None,
) -> TrainingResult:
    """Train every copy of ``ensemble`` with Adam on MSE plus the annealed sparsity penalty.

    Parameters
    ----------
    ensemble : Ensemble
        The copies to train, in place.
    data : (X, y) or callable
        A fixed table (X ``(N, in)``, y ``(N,)`` or ``(N, out)``), used whole or in minibatches
        of ``batch_size`` rows, or a sampler ``step -> (X, y)`` that draws fresh data, shared
        ``(B, in)`` or per copy ``(R, B, in)``.
    steps : int
        Maximum number of optimiser steps.
    lr : float
        Adam learning rate.
    schedule : AnnealedRegularization, optional
        Strength of the sparsity penalty per step; no penalty when omitted.
    batch_size : int, optional
        Minibatch size for a fixed table; the whole table when omitted.
    eval_every : int
        Steps between calls of ``callback`` (and entries of ``history``).
    callback : callable, optional
        ``callback(step, ensemble, mse)``; returning True stops training.
    random_state : int
        Seed of the minibatch order (shared by all copies, so a copy trains identically alone).
    loss : callable
        ``loss(outputs (R, B, out), targets) -> (R,)``; :func:`per_copy_mse` by default.
    whiten : dict, optional
        ``{parameter name: E[x x^T]}`` (see :func:`second_moment`) for weights whose inputs
        ``x`` share a large mean: Adam then steps in the coordinates where those inputs are
        white (the function and the weights' bounds are unchanged). Names as in
        ``ensemble.params``, e.g. ``"net.0.weight"``.

    Returns
    -------
    TrainingResult
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}.")
    sample = _as_sampler(data, batch_size, random_state, ensemble.dtype)
    optimizer = _Optimizer(ensemble.params, whiten or {}, lr)
    result = TrainingResult(steps=0, mse=torch.full((len(ensemble),), float("inf")))
    attempts = [0] * len(ensemble)
    for step in range(1, steps + 1):
        x, y = sample(step)
        strength = schedule(step) if schedule is not None else 0.0
        prediction, penalty = ensemble(x, with_penalty=strength > 0)
        mse = loss(prediction, y)
        objective = mse + strength * penalty if strength > 0 else mse
        finite = torch.isfinite(objective).detach()
        optimizer.zero_grad()
        torch.where(finite, objective, torch.zeros_like(objective)).sum().backward()
        optimizer.step()
        ensemble.clamp_()
        bad = ~(finite & ensemble.finite_copies())
        if bad.any():
            # A diverged copy would poison nothing else, but it is wasted: start it afresh.
            for index in torch.nonzero(bad).flatten().tolist():
                attempts[index] += 1
                ensemble.reseed_(index, reseed(ensemble.seeds[index], attempts[index]))
            optimizer.reset_state_(bad)
            result.reseeded += int(bad.sum())
        optimizer.sync()
        result.steps = step
        result.mse = mse.detach()
        if step % eval_every == 0 or step == steps:
            result.history.append((step, result.mse.clone()))
            if callback is not None and callback(step, ensemble, result.mse):
                result.stopped_early = step < steps
                break
    return result


def _as_sampler(
    data: tuple[Tensor, Tensor] | Sampler,
    batch_size: int | None,
    random_state: int,
    dtype: torch.dtype,
) -> Sampler:
    if callable(data):
        return data
    X, y = (torch.as_tensor(a, dtype=dtype) for a in data)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; they must match.")
    if batch_size is None or batch_size >= X.shape[0]:
        return lambda step: (X, y)
    generator = torch.Generator().manual_seed(random_state)

    def minibatch(step: int) -> tuple[Tensor, Tensor]:
        rows = torch.randint(X.shape[0], (batch_size,), generator=generator)
        return X[rows], y[rows]

    return minibatch
