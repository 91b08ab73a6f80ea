"""Neural Arithmetic Logic Unit (Trask et al., 2018)."""

from __future__ import annotations

import math

import sympy
import torch
from torch import Tensor, nn

from ._base import RegularizerShape, linear
from .nac import LOG_EPS, NAC, NACMul, _TanhSigmoidUnit


class NALU(_TanhSigmoidUnit):
    r"""Neural Arithmetic Logic Unit: a learned gate between an additive and a log-space NAC.

    .. math::
        a = W x, \quad m = \exp\left(W \log(|x| + \epsilon)\right), \quad g = \sigma(G x), \\
        z = g \odot a + (1 - g) \odot m, \qquad W = \tanh(\hat W) \odot \sigma(\hat M)

    Both paths share ``W``; the gate has no bias. Snapping rounds ``W`` to {-1, 0, 1} and the
    gate, averaged over a sample of inputs, to {0, 1}.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        regularizer_shape: ``"linear"`` or ``"squared"`` sparsity penalty on ``W``.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        regularizer_shape: RegularizerShape = "linear",
    ) -> None:
        super().__init__(in_features, out_features, regularizer_shape=regularizer_shape)
        self.G = nn.Parameter(torch.empty(out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if hasattr(self, "G"):  # the base initialiser runs before G exists
            # Glorot uniform for the gate, as in the NALU paper's reference setup.
            bound = math.sqrt(6.0 / (self.in_features + self.out_features))
            nn.init.uniform_(self.G, -bound, bound)

    def gate(self, x: Tensor) -> Tensor:
        return torch.sigmoid(linear(x, self.G))

    def forward(self, x: Tensor) -> Tensor:
        w = self.effective_weight()
        additive = linear(x, w)
        multiplicative = torch.exp(linear(torch.log(x.abs() + LOG_EPS), w))
        g = self.gate(x)
        return g * additive + (1 - g) * multiplicative

    @torch.no_grad()
    def snap(self, x: Tensor | None = None) -> dict[str, Tensor]:
        """Discrete weight and gate; the gate is input-dependent, so ``x`` (a sample) is needed."""
        if x is None:
            raise ValueError(
                "NALU.snap needs a sample of inputs x to decide its gate; call snap(x)."
            )
        snapped = super().snap()
        mean_gate = self.gate(x).reshape(-1, self.out_features).mean(dim=0)
        snapped["gate"] = (mean_gate >= 0.5).to(mean_gate.dtype)
        return snapped

    def to_sympy(self, inputs, snapped=None):
        if snapped is None:
            raise ValueError(
                "NALU.to_sympy needs the snapped form (from snap(x)), since the gate depends on x."
            )
        if len(inputs) != self.in_features:
            raise ValueError(f"NALU takes {self.in_features} inputs, got {len(inputs)}.")
        outputs = []
        for row, g in zip(snapped["weight"], snapped["gate"].tolist()):
            path = NAC._output_expression if g >= 0.5 else NACMul._output_expression
            outputs.append(sympy.simplify(path(self, row, inputs)))
        return outputs
