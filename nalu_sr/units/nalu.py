"""Neural Arithmetic Logic Unit (Trask et al., 2018)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy
import torch
from torch import Tensor, nn

from ._base import linear, linear_expression
from .nac import LOG_EPS, _TanhSigmoidUnit, log_space_expression


class NALU(_TanhSigmoidUnit):
    r"""Neural Arithmetic Logic Unit: a learned gate between an additive and a log-space NAC.

    .. math::
        a = W x, \quad m = \exp\left(W \log(|x| + \epsilon)\right), \quad g = \sigma(G x), \\
        z = g \odot a + (1 - g) \odot m, \qquad W = \tanh(\hat W) \odot \sigma(\hat M)

    Both paths share ``W``; the gate has no bias. The sparsity regulariser acts on ``W`` alone.
    Snapping rounds ``W`` to {-1, 0, 1} and the gate, averaged over a sample of inputs, to
    {0, 1}; the SymPy form of an output is then its NAC sum (gate 1) or its log-space product
    of magnitudes (gate 0).

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        regularizer_shape: ``"linear"`` or ``"squared"`` sparsity penalty on ``W``.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``
    """

    parameter_names = ("W_hat", "M_hat", "G")
    G: nn.Parameter

    def reset_parameters(self) -> None:
        super().reset_parameters()
        # Glorot uniform for the gate, Var[G] = 2 / (in + out), as in the NALU paper's setup.
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

    def to_sympy(
        self, inputs: Sequence[sympy.Expr], snapped: dict[str, Tensor] | None = None
    ) -> list[sympy.Expr]:
        """SymPy expressions of the snapped outputs; ``snapped`` (from :meth:`snap`) is needed."""
        if snapped is None:
            raise ValueError(
                "NALU.to_sympy needs the snapped form (from snap(x)), since the gate depends on x."
            )
        self._check_inputs(inputs)
        return [
            linear_expression(row, inputs) if gate >= 0.5 else log_space_expression(row, inputs)
            for row, gate in zip(snapped["weight"], snapped["gate"].tolist())
        ]
