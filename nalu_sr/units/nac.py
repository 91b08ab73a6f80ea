"""Neural Accumulators (Trask et al., 2018): additive NAC and log-space NACMul."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import sympy
import torch
from scipy.optimize import brentq
from torch import Tensor, nn

from ._base import (
    ArithmeticUnit,
    RegularizerShape,
    linear,
    linear_expression,
    power_product_expression,
)

#: Keeps log(|x| + eps) finite at x = 0 (the NALU paper's value).
LOG_EPS = 1e-7

#: Widest initial range of W_hat and M_hat: beyond it tanh and sigmoid start saturated.
MAX_INIT_RANGE = 2.0


def tanh_sigmoid_variance(r: float) -> float:
    """Var[tanh(W) sigmoid(M)] for W, M ~ U[-r, r] (equation 8 of the NAU paper's draft)."""
    return (1 - math.tanh(r) / r) * (r - math.tanh(r / 2)) / (2 * r)


@lru_cache(maxsize=256)
def tanh_sigmoid_init_range(variance: float) -> float:
    """The ``r`` for which :func:`tanh_sigmoid_variance` equals ``variance``.

    The variance approaches 1/2 only as ``r`` grows without bound, where tanh and sigmoid
    saturate and the gradient vanishes; requests beyond the variance at ``r = 2`` (small
    layers, e.g. 2 -> 1) take ``r = 2`` instead.
    """
    if variance >= tanh_sigmoid_variance(MAX_INIT_RANGE):
        return MAX_INIT_RANGE
    return brentq(lambda r: tanh_sigmoid_variance(r) - variance, 1e-3, MAX_INIT_RANGE)


def log_space_expression(
    row: Tensor, inputs: Sequence[sympy.Expr], denominator: int = 1
) -> sympy.Expr:
    """``prod_i |x_i| ** w_i``: what a snapped log-space path computes (it sees magnitudes);
    exponents are multiples of ``1/denominator``."""
    return power_product_expression(row, [sympy.Abs(x) for x in inputs], denominator)


class _TanhSigmoidUnit(ArithmeticUnit):
    """A unit whose weight is built as ``W = tanh(W_hat) * sigmoid(M_hat)``, a value in (-1, 1).

    Saturated weights are -1, 0 or 1, the targets of its sparsity regulariser.
    """

    parameter_names = ("W_hat", "M_hat")
    W_hat: nn.Parameter
    M_hat: nn.Parameter

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        regularizer_shape: RegularizerShape = "linear",
    ) -> None:
        # tanh * sigmoid is bounded by construction: nothing to clamp.
        super().__init__(in_features, out_features, clamp=True, regularizer_shape=regularizer_shape)

    def reset_parameters(self) -> None:
        # Draw W_hat, M_hat ~ U[-r, r] with r chosen so that Var[W] = 2 / (in + out) (Glorot),
        # between the variances that keep the outputs and the gradients at the scale of the inputs.
        r = tanh_sigmoid_init_range(2.0 / (self.in_features + self.out_features))
        nn.init.uniform_(self.W_hat, -r, r)
        nn.init.uniform_(self.M_hat, -r, r)

    def effective_weight(self) -> Tensor:
        return torch.tanh(self.W_hat) * torch.sigmoid(self.M_hat)


class NAC(_TanhSigmoidUnit):
    r"""Additive Neural Accumulator (NAC+).

    .. math::
        z = W x, \qquad W = \tanh(\hat W) \odot \sigma(\hat M)

    ``tanh`` chooses the sign and ``sigmoid`` whether the input is used, so saturated weights
    are -1, 0 or 1. No bias. The sparsity regulariser pulls ``W`` towards those values; the
    snapped unit, and its SymPy form, is ``sum_i W_i x_i`` with integer ``W_i``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        regularizer_shape: ``"linear"`` or ``"squared"`` sparsity penalty on ``W``.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.effective_weight())

    def _output_expression(self, row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
        return linear_expression(row, inputs)


class NACMul(_TanhSigmoidUnit):
    r"""Multiplicative Neural Accumulator (NAC•): a NAC in log space.

    .. math::
        z = \exp\left(W \log(|x| + \epsilon)\right), \qquad
        W = \tanh(\hat W) \odot \sigma(\hat M), \quad \epsilon = 10^{-7}

    Snapped weights of 1 and -1 multiply and divide by an input's magnitude, so the SymPy form
    is ``prod_i |x_i| ** W_i``. The sign of the inputs is lost, and the gradient explodes for
    inputs near zero.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        regularizer_shape: ``"linear"`` or ``"squared"`` sparsity penalty on ``W``.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(linear(torch.log(x.abs() + LOG_EPS), self.effective_weight()))

    def _output_expression(self, row: Tensor, inputs: Sequence[sympy.Expr]) -> sympy.Expr:
        return log_space_expression(row, inputs)
