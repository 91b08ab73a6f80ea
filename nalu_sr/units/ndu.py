"""Neural Division Unit: a gated product of its inputs over another (the NMRU idea of
Mistry et al., 2021, an NMU whose inputs may also divide, written as a ratio of two NMUs)."""

from __future__ import annotations

from collections.abc import Sequence

import sympy
import torch
from torch import Tensor, nn

from ._base import ArithmeticUnit
from .nmu import _GatedProduct


class NDU(ArithmeticUnit):
    r"""Neural Division Unit: inputs gated into a numerator and into a denominator.

    .. math::
        z_j = \frac{\prod_i \left(W_{ji} x_i + 1 - W_{ji}\right)}
                   {\prod_i \left(V_{ji} x_i + 1 - V_{ji}\right)},
        \qquad W, V \in [0, 1]

    Each gate is an NMU weight: 1 takes the input in, 0 leaves the identity 1. Snapped, an
    input multiplies (``W = 1``), divides (``V = 1``), or cancels out (both), so the unit is a
    monomial of its inputs with exponents in {-1, 0, 1}; after a NAU those inputs are sums,
    which gives ratios such as ``(a - b)/(a + b)``.

    A division is unstable to train where a denominator passes near zero, so with
    ``fraction=True`` the unit returns numerator and denominator side by side instead of their
    ratio, for a loss that compares ``numerator`` with ``target * denominator`` (see
    :func:`~nalu_sr.training.fraction_mse`) and never divides.

    :meth:`effective_weight` is ``[W, V]`` side by side, shape ``(out, 2 * in)``: the sparsity
    penalty, snapping and :meth:`to_sympy` read both gates through it.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        fraction: return ``(*, 2 * out_features)``: the numerators, then the denominators.
        clamp: clip ``W`` and ``V`` into ``[0, 1]`` after each optimiser step; otherwise an
            out-of-bounds penalty is added to :meth:`regularizer`.
        regularizer_shape: ``"linear"`` or ``"squared"`` sparsity penalty.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``, or ``(*, 2 * out_features)`` with ``fraction=True``

    Examples:
        >>> unit = NDU(2, 1)
        >>> with torch.no_grad():
        ...     _ = unit.weight.copy_(torch.tensor([[1.0, 0.0]]))
        ...     _ = unit.denominator.copy_(torch.tensor([[0.0, 1.0]]))
        >>> unit(torch.tensor([[6.0, 4.0]])).item()
        1.5
    """

    parameter_names = ("weight", "denominator")
    snap_targets = (0.0, 1.0)
    weight: nn.Parameter
    denominator: nn.Parameter

    def __init__(
        self, in_features: int, out_features: int, *, fraction: bool = False, **options
    ) -> None:
        self.fraction = fraction
        super().__init__(in_features, out_features, **options)

    def reset_parameters(self) -> None:
        # As the NMU: every input half-in, in the numerator and the denominator alike.
        nn.init.uniform_(self.weight, 0.25, 0.75)
        nn.init.uniform_(self.denominator, 0.25, 0.75)

    def parameter_bounds(self) -> dict[str, tuple[float, float]]:
        return {"weight": (0.0, 1.0), "denominator": (0.0, 1.0)}

    def effective_weight(self) -> Tensor:
        gates = torch.cat([self.weight, self.denominator], dim=-1)
        return gates.clamp(0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 1:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        shifted = x - 1
        above, below = self.effective_weight().split(self.in_features, dim=-1)
        numerator, _, _ = _GatedProduct.apply(shifted, above)
        denominator, _, _ = _GatedProduct.apply(shifted, below)
        if self.fraction:
            return torch.cat([numerator.mT, denominator.mT], dim=-1)
        return (numerator / denominator).mT

    def _output_expression(self, row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
        gates = row.tolist()
        n = len(inputs)
        exponents = [int(gates[i]) - int(gates[n + i]) for i in range(n)]
        return sympy.Mul(*(x**e for e, x in zip(exponents, inputs) if e != 0))

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + ", fraction=True" if self.fraction else text
