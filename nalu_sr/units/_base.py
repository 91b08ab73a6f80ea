"""Behaviour shared by every arithmetic unit: bounds, sparsity penalties, snapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import sympy
import torch
from torch import Tensor, nn

RegularizerShape = Literal["linear", "squared"]


def sparsity_penalty(weight: Tensor, signed: bool, shape: RegularizerShape = "linear") -> Tensor:
    """Mean distance of ``weight`` from its discrete targets.

    ``signed=True`` targets {-1, 0, 1} (NAU, NAC), ``signed=False`` targets {0, 1} (NMU).
    ``"linear"`` is ``min(|W|, 1 - |W|)`` as in the NAU paper's code; ``"squared"`` is the draft's
    ``W^2 (1 - |W|)^2``, which is flatter near the targets. The mean is over the last two
    dimensions, so stacked weights ``(R, out, in)`` give one penalty per copy.
    """
    w = weight.abs() if signed else weight
    if shape == "linear":
        return torch.minimum(w.abs(), (1 - w).abs()).mean(dim=(-2, -1))
    if shape == "squared":
        return (w**2 * (1 - w) ** 2).mean(dim=(-2, -1))
    raise ValueError(f"shape={shape!r} is not a regularizer shape; use 'linear' or 'squared'.")


def out_of_bounds_penalty(weight: Tensor, low: float, high: float) -> Tensor:
    """Mean squared distance of ``weight`` outside ``[low, high]`` (zero inside)."""
    centre, half = (high + low) / 2, (high - low) / 2
    return torch.clamp((weight - centre).abs() - half, min=0).pow(2).mean(dim=(-2, -1))


def snap_to(values: Tensor, targets: Sequence[float]) -> Tensor:
    """Each entry of ``values`` replaced by the nearest of ``targets``."""
    grid = torch.as_tensor(targets, dtype=values.dtype, device=values.device)
    nearest = (values.unsqueeze(-1) - grid).abs().argmin(dim=-1)
    return grid[nearest]


def network_bounds(network: nn.Module) -> dict[str, tuple[float, float]]:
    """Bounds ``{parameter name: (low, high)}`` of every clamped unit inside ``network``, named
    as in ``network.named_parameters()``."""
    bounds = {}
    for prefix, module in network.named_modules():
        if isinstance(module, ArithmeticUnit) and module.clamp:
            for name, bound in module.parameter_bounds().items():
                bounds[f"{prefix}.{name}" if prefix else name] = bound
    return bounds


def linear(x: Tensor, weight: Tensor) -> Tensor:
    """``x @ weight.T``, also for stacked weights ``(R, out, in)`` and shared ``x`` ``(B, in)``.

    The shared case is one matrix product against all copies' rows at once: broadcasting ``x``
    into a batched matmul makes its backward pass several times slower on the CPU, and an
    einsum was measured 1.1-2.3x slower than this.
    """
    if weight.dim() == 3 and x.dim() == 2:
        copies, out, n_in = weight.shape
        stacked = x @ weight.reshape(copies * out, n_in).T
        return stacked.reshape(x.shape[0], copies, out).permute(1, 0, 2)
    return x @ weight.mT


def as_sympy_integer(value: float) -> sympy.Integer:
    return sympy.Integer(int(round(float(value))))


class ArithmeticUnit(nn.Module):
    """Base class of the arithmetic units.

    Every unit maps ``(*, in_features)`` to ``(*, out_features)`` and adds three things to a
    plain layer: :meth:`regularizer` (its sparsity penalty, to be annealed in by the training
    loop), :meth:`snap` (its discrete form) and :meth:`to_sympy` (the expression of that form).

    As in :class:`torch.nn.Linear`, the constructor creates every parameter, each an
    ``(out_features, in_features)`` matrix named in :attr:`parameter_names`, then calls
    :meth:`reset_parameters` once; a subclass states its initialisation there.

    Parameters are kept inside their bounds by :meth:`clamp_`, called after each optimiser step
    when ``clamp=True``; with ``clamp=False`` the regularizer adds an out-of-bounds penalty instead.

    ``forward`` and ``regularizer`` broadcast over leading dimensions of the parameters, so the
    training engine can run R stacked copies ``(R, out, in)`` in one call without ``vmap``.
    """

    #: Names of the ``(out_features, in_features)`` parameters, in the order they are registered.
    parameter_names: tuple[str, ...] = ("weight",)
    #: Values the snapped weights take.
    snap_targets: tuple[float, ...] = (-1.0, 0.0, 1.0)
    #: ``forward`` and ``regularizer`` accept stacked ``(R, out, in)`` parameters.
    broadcasts: bool = True

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        clamp: bool = True,
        regularizer_shape: RegularizerShape = "linear",
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features and out_features must be positive, got {in_features} and "
                f"{out_features}."
            )
        self.in_features = in_features
        self.out_features = out_features
        self.clamp = clamp
        self.regularizer_shape = regularizer_shape
        for name in self.parameter_names:
            self.register_parameter(name, nn.Parameter(torch.empty(out_features, in_features)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter afresh from torch's global RNG."""
        raise NotImplementedError

    def parameter_bounds(self) -> dict[str, tuple[float, float]]:
        """Bounds ``{parameter name: (low, high)}`` that :meth:`clamp_` enforces."""
        return {}

    @torch.no_grad()
    def clamp_(self) -> ArithmeticUnit:
        """Clip every bounded parameter into its bounds, in place."""
        if self.clamp:
            for name, (low, high) in self.parameter_bounds().items():
                getattr(self, name).clamp_(low, high)
        return self

    def effective_weight(self) -> Tensor:
        """The weight matrix ``W`` of shape ``(out_features, in_features)`` used by ``forward``."""
        raise NotImplementedError

    def regularizer(self) -> Tensor:
        """Sparsity penalty pulling :meth:`effective_weight` towards :attr:`snap_targets`."""
        signed = min(self.snap_targets) < 0
        penalty = sparsity_penalty(self.effective_weight(), signed, self.regularizer_shape)
        if not self.clamp:
            for name, (low, high) in self.parameter_bounds().items():
                penalty = penalty + out_of_bounds_penalty(getattr(self, name), low, high)
        return penalty

    @torch.no_grad()
    def snap(self, x: Tensor | None = None) -> dict[str, Tensor]:
        """The discrete form: ``{"weight": W}`` with ``W`` rounded to :attr:`snap_targets`."""
        return {"weight": snap_to(self.effective_weight(), self.snap_targets)}

    @torch.no_grad()
    def sparsity_error(self) -> float:
        """Largest distance of any weight from its snapped value (the paper's sparsity error)."""
        weight = self.effective_weight()
        return float((weight - snap_to(weight, self.snap_targets)).abs().max())

    def to_sympy(
        self, inputs: Sequence[sympy.Expr], snapped: dict[str, Tensor] | None = None
    ) -> list[sympy.Expr]:
        """SymPy expressions of the snapped unit's outputs, one per output feature.

        ``snapped`` defaults to :meth:`snap`; pass another discrete form (an alternative snap) to
        render that instead. The expressions are assembled from the weights, not simplified: that
        is the symbolic stage's work.
        """
        self._check_inputs(inputs)
        weight = (snapped or self.snap())["weight"]
        return [self._output_expression(row, inputs) for row in weight]

    def _check_inputs(self, inputs: Sequence[sympy.Expr]) -> None:
        if len(inputs) != self.in_features:
            raise ValueError(
                f"{type(self).__name__} takes {self.in_features} inputs, got {len(inputs)} "
                "expressions."
            )

    def _output_expression(self, row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
        """The expression of one output whose snapped weights are ``row``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, out_features={self.out_features}"
        if not self.clamp:
            text += ", clamp=False"
        if self.regularizer_shape != "linear":
            text += f", regularizer_shape={self.regularizer_shape!r}"
        return text


def linear_expression(row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
    """``sum_i w_i x_i`` with integer weights."""
    return sympy.Add(*(as_sympy_integer(w) * x for w, x in zip(row.tolist(), inputs) if w != 0))


def power_product_expression(
    row: Tensor, inputs: Sequence[sympy.Expr], denominator: int = 1
) -> sympy.Expr:
    """``prod_i x_i ** w_i`` with exponents that are multiples of ``1/denominator`` (integers
    by default)."""
    return sympy.Mul(
        *(
            x ** (as_sympy_integer(w * denominator) / denominator)
            for w, x in zip(row.tolist(), inputs)
            if w != 0
        )
    )
