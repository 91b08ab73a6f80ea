"""Power unit: a product of inputs raised to exponents on a grid (integers, or halves for
roots), learnt in log space (the Neural Power Unit idea of Heim et al., 2020, with exponents
snapped to the grid)."""

from __future__ import annotations

from collections.abc import Sequence

import sympy
import torch
from torch import Tensor, nn

from ._base import ArithmeticUnit, linear, out_of_bounds_penalty
from .nac import LOG_EPS, log_space_expression


class NPU(ArithmeticUnit):
    r"""Power unit: each output a product of the inputs' magnitudes to powers on a grid.

    .. math::
        z_j = \prod_i |x_i|^{W_{ji}}, \qquad W \in [-p, p],

    with the sparsity penalty ``mean(|W - snap(W)|)`` pulling every exponent to a multiple of
    ``1/q`` (``q = denominator``), so the snapped unit is a monomial such as ``x**3 * y / z**2``
    (``q = 1``) or ``sqrt(a) / b`` (``q = 2``). In log space the unit is
    linear, ``log z = W log|x|``: with ``log_space=True`` it takes ``log|x|`` and returns
    ``log z``, the form it is trained in (a least-squares problem, where the product of raw
    inputs with large exponents would give gradients spanning many orders of magnitude).

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        max_exponent: ``p``, the largest exponent in size.
        denominator: ``q``: exponents snap to multiples of ``1/q`` (1: integers, 2: halves).
        log_space: take and return logarithms (see above).
        clamp: clip ``W`` into ``[-p, p]`` after each optimiser step; otherwise an
            out-of-bounds penalty is added to :meth:`regularizer`. (There is no
            ``regularizer_shape``: the penalty is the distance to the nearest integer.)

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``

    Examples:
        >>> unit = NPU(2, 1)
        >>> with torch.no_grad():
        ...     _ = unit.weight.copy_(torch.tensor([[3.0, -2.0]]))
        >>> round(unit(torch.tensor([[2.0, 4.0]])).item(), 6)
        0.5
        >>> unit.to_sympy(sympy.symbols("x y", positive=True))
        [x**3/y**2]
        >>> roots = NPU(1, 1, denominator=2)
        >>> with torch.no_grad():
        ...     _ = roots.weight.fill_(0.5)
        >>> roots.to_sympy([sympy.Symbol("a", positive=True)])
        [sqrt(a)]
    """

    weight: nn.Parameter

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        max_exponent: int = 4,
        denominator: int = 1,
        log_space: bool = False,
        clamp: bool = True,
    ) -> None:
        if max_exponent < 1:
            raise ValueError(f"max_exponent must be at least 1, got {max_exponent}.")
        if denominator < 1:
            raise ValueError(f"denominator must be at least 1, got {denominator}.")
        self.max_exponent = int(max_exponent)
        self.denominator = int(denominator)
        self.log_space = log_space
        reach = self.max_exponent * self.denominator
        self.snap_targets = tuple(k / self.denominator for k in range(-reach, reach + 1))
        super().__init__(in_features, out_features, clamp=clamp)

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.weight, -0.5, 0.5)

    def parameter_bounds(self) -> dict[str, tuple[float, float]]:
        return {"weight": (-float(self.max_exponent), float(self.max_exponent))}

    def effective_weight(self) -> Tensor:
        return self.weight.clamp(-self.max_exponent, self.max_exponent)

    def regularizer(self) -> Tensor:
        weight = self.effective_weight()
        q = self.denominator
        penalty = (weight - torch.round(weight * q) / q).abs().mean(dim=(-2, -1))
        if not self.clamp:
            low, high = self.parameter_bounds()["weight"]
            penalty = penalty + out_of_bounds_penalty(self.weight, low, high)
        return penalty

    def forward(self, x: Tensor) -> Tensor:
        if self.log_space:
            return linear(x, self.effective_weight())
        return torch.exp(linear(torch.log(x.abs() + LOG_EPS), self.effective_weight()))

    def _output_expression(self, row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
        return log_space_expression(row, inputs, self.denominator)

    def extra_repr(self) -> str:
        text = super().extra_repr() + f", max_exponent={self.max_exponent}"
        if self.denominator != 1:
            text += f", denominator={self.denominator}"
        return text + ", log_space=True" if self.log_space else text
