"""Neural Multiplication Unit (Madsen & Johansen, 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import sympy
import torch
from torch import Tensor, nn

from ._base import ArithmeticUnit


class NMU(ArithmeticUnit):
    r"""Neural Multiplication Unit: a product of inputs, each gated in or out by a weight.

    .. math::
        z_j = \prod_i \left(W_{ji} x_i + 1 - W_{ji}\right), \qquad W \in [0, 1]

    A weight of 1 multiplies the input in, a weight of 0 contributes the identity 1. Unlike the
    log-space NAC, it is defined for zero and negative inputs and its gradient does not explode
    near zero. The sparsity regulariser ``mean(min(W, 1 - W))`` drives every weight to 0 or 1,
    so the snapped unit is a product of a subset of its inputs, which is its SymPy form.

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
    weight: nn.Parameter

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
        if x.dim() == 1:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        product, _, _ = _GatedProduct.apply(x - 1, self.effective_weight())
        return product.mT

    def _output_expression(self, row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
        return sympy.Mul(*(x for w, x in zip(row.tolist(), inputs) if w != 0))


class _GatedProduct(torch.autograd.Function):
    r"""``z[..., o, b] = prod_i (1 + W[..., o, i] * s[..., b, i])`` with ``s = x - 1``, and its
    gradient in two passes over the factors.

    Autograd of the plain expression (multiply, add, ``prod``) makes about ten passes over the
    ``(copies, out, rows, in)`` factors on the backward, which is most of the cost of training
    an NMU. Here the derivative of the product by factor ``i`` is ``z / t_i``, so

    .. math::
        \frac{\partial L}{\partial W_{oi}} = \sum_b g_{ob} z_{ob} \frac{s_{bi}}{t_{obi}},
        \qquad
        \frac{\partial L}{\partial s_{bi}} = \sum_o g_{ob} z_{ob} \frac{W_{oi}}{t_{obi}}.

    A factor that is exactly 0 (an input of 0 gated fully in) is replaced by the smallest
    normal float before the product, so that ``z / t_i`` is the product of the other factors
    there; the product returned is set back to exactly 0. ``forward`` also returns the factors
    and the unzeroed product, which the backward needs; they are not differentiable.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(shifted: Tensor, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        one = torch.ones((), dtype=weight.dtype, device=weight.device)
        factors = torch.addcmul(one, weight.unsqueeze(-2), shifted.unsqueeze(-3))
        zero = factors == 0
        factors.masked_fill_(zero, torch.finfo(factors.dtype).tiny)
        product = factors.prod(dim=-1)
        return product.masked_fill(zero.any(dim=-1), 0.0), factors, product

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        shifted, weight = inputs
        _, factors, product = output
        ctx.mark_non_differentiable(factors, product)
        ctx.save_for_backward(shifted, weight, factors, product)

    @staticmethod
    def backward(ctx, grad: Tensor, _factors: Tensor, _product: Tensor):
        shifted, weight, factors, product = ctx.saved_tensors
        scaled = grad * product
        grad_shifted = grad_weight = None
        if ctx.needs_input_grad[1]:
            ratio = shifted.unsqueeze(-3) / factors
            grad_weight = (scaled.unsqueeze(-2) @ ratio).squeeze(-2).sum_to_size(weight.shape)
        if ctx.needs_input_grad[0]:
            ratio = weight.unsqueeze(-2) / factors
            grad_shifted = (scaled.unsqueeze(-1) * ratio).sum(dim=-3).sum_to_size(shifted.shape)
        return grad_shifted, grad_weight
