"""Neural Multiplication Unit (Madsen & Johansen, 2020)."""

from __future__ import annotations

import sympy
import torch
from torch import Tensor, nn

from ._base import ArithmeticUnit, RegularizerShape


class NMU(ArithmeticUnit):
    r"""Neural Multiplication Unit: a product of inputs, each gated in or out by a weight.

    .. math::
        z_j = \prod_i \left(W_{ji} x_i + 1 - W_{ji}\right), \qquad W \in [0, 1]

    A weight of 1 multiplies the input in, a weight of 0 contributes the identity 1. Unlike the
    log-space NAC, it is defined for zero and negative inputs and its gradient does not explode
    near zero.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        clamp: clip ``W`` into ``[0, 1]`` after each optimiser step (the paper's default);
            otherwise an out-of-bounds penalty is added to :meth:`regularizer`.
        regularizer_shape: ``"linear"`` or ``"squared"`` sparsity penalty.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``

    Examples:
        >>> unit = NMU(2, 1)
        >>> unit(torch.tensor([[2.0, 3.0]])).shape
        torch.Size([1, 1])
    """

    snap_targets = (0.0, 1.0)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        clamp: bool = True,
        regularizer_shape: RegularizerShape = "linear",
    ) -> None:
        super().__init__(
            in_features, out_features, clamp=clamp, regularizer_shape=regularizer_shape
        )
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # E[W] = 1/2 keeps every input half-in; the paper's variance 1/4 is not reachable by a
        # distribution on [0, 1] centred at 1/2 with room to move, so, like its code, draw
        # U[0.25, 0.75] (Var[W] = 1/48).
        nn.init.uniform_(self.weight, 0.25, 0.75)

    def parameter_bounds(self) -> dict[str, tuple[float, float]]:
        return {"weight": (0.0, 1.0)}

    def effective_weight(self) -> Tensor:
        return self.weight.clamp(0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        w = self.effective_weight().unsqueeze(-3)
        return (x.unsqueeze(-2) * w + 1 - w).prod(dim=-1)

    def _output_expression(self, row, inputs):
        return sympy.Mul(*(x for w, x in zip(row.tolist(), inputs) if w != 0))
