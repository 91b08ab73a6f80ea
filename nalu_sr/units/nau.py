"""Neural Addition Unit (Madsen & Johansen, 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy
from torch import Tensor, nn

from ._base import ArithmeticUnit, linear, linear_expression


class NAU(ArithmeticUnit):
    r"""Neural Addition Unit: a linear layer whose weights are clamped to ``[-1, 1]``.

    .. math::
        z = W x, \qquad W = \min(\max(\hat W, -1), 1)

    No bias. The sparsity regulariser ``mean(min(|W|, 1 - |W|))`` drives every weight to
    -1, 0 or 1, so the snapped unit adds and subtracts a subset of its inputs exactly: its
    SymPy form is ``sum_i W_i x_i`` with integer ``W_i``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        clamp: clip ``W`` into ``[-1, 1]`` after each optimiser step (the paper's default);
            otherwise an out-of-bounds penalty is added to :meth:`regularizer`.
        regularizer_shape: ``"linear"`` or ``"squared"`` sparsity penalty.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``

    Examples:
        >>> import torch
        >>> unit = NAU(3, 1)
        >>> unit(torch.ones(5, 3)).shape
        torch.Size([5, 1])
    """

    weight: nn.Parameter

    def reset_parameters(self) -> None:
        # Glorot: Var[W] = 2 / (in + out) keeps Var[z] = Var[x]; the range is capped at 0.5 so
        # no weight starts beyond the halfway point towards a discrete value.
        r = min(0.5, math.sqrt(3.0) * math.sqrt(2.0 / (self.in_features + self.out_features)))
        nn.init.uniform_(self.weight, -r, r)

    def parameter_bounds(self) -> dict[str, tuple[float, float]]:
        return {"weight": (-1.0, 1.0)}

    def effective_weight(self) -> Tensor:
        return self.weight.clamp(-1.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.effective_weight())

    def _output_expression(self, row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
        return linear_expression(row, inputs)
