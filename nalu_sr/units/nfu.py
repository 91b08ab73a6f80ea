"""Function unit: one function of a fixed library applied to a scaled hidden value (EQL's
idea of unary units in a network of arithmetic ones, Martius & Lampert 2016, with one trained
copy per function instead of a gate over the library)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy
import torch
from torch import Tensor, nn

#: Exponentials are taken of arguments clipped to this size, so that a copy wandering to a
#: large rate stays finite (its loss then tells it to come back).
EXP_LIMIT = 30.0

#: Logarithms are taken of arguments at least this large in size: the argument is a product
#: of positive columns, and a copy passing near zero must not make the loss infinite.
LOG_FLOOR = 1e-12

#: The library: each function as torch and SymPy write it. Roots of a product are half powers
#: of its inputs (the power unit reaches them), so the library holds the functions of a
#: product that no arithmetic unit writes. A logarithm of a product is a sum of logarithms,
#: but times another product it is not (``n*T*log(V2/V1)``, ``v*log(m0/m1)``); its rate is
#: only a constant term (``log(a*x) = log(a) + log(x)``), which the offset takes.
FUNCTIONS = {
    "sin": (torch.sin, sympy.sin),
    "cos": (torch.cos, sympy.cos),
    "exp": (lambda z: torch.exp(z.clamp(-EXP_LIMIT, EXP_LIMIT)), sympy.exp),
    "log": (lambda z: torch.log(z.abs().clamp_min(LOG_FLOOR)), sympy.log),
}

#: Magnitudes of the initial rates, drawn log-uniformly: the inputs are trained at RMS 1, so
#: an argument with a rate near 1 spans about a radian or an e-fold.
RATE_RANGE = (0.3, 6.0)


class NFU(nn.Module):
    r"""Neural function unit: a fixed function of each input times a learnt rate, plus a
    learnt offset.

    .. math::
        z_j = c_j + f(a_j x_j), \qquad f \in \{\sin, \cos, \exp, \log\}

    The rate ``a`` carries the argument's constant (``exp(-t/(R*C))`` is ``f = exp`` with
    ``a = -1`` on the hidden product ``t/(R*C)``); the offset ``c`` lets a product that
    multiplies the unit's output write ``V*(1 - exp(-t/tau))``. Neither is snapped here: the
    unit has no discrete weights, and the search fits the rate of a snapped argument by least
    squares over the whole formula (see :mod:`nalu_sr.search.compositions`), where a trained
    rate is only a starting point (gradients of ``sin(a*x)`` in ``a`` have many local minima).
    Rates start log-uniform in :data:`RATE_RANGE`, of either sign for ``exp`` (growth and
    decay), positive for ``sin`` and ``cos`` (which are odd and even in their argument).

    Args:
        features: size of each input and output sample.
        function: a name in :data:`FUNCTIONS`.

    Shape:
        - Input: ``(*, features)``
        - Output: ``(*, features)``

    Examples:
        >>> unit = NFU(1, "exp")
        >>> with torch.no_grad():
        ...     _ = unit.rate.fill_(-1.0)
        >>> round(unit(torch.tensor([[1.0]])).item(), 6)
        0.367879
        >>> unit.to_sympy([sympy.Symbol("u")])
        [exp(-1.0*u)]
    """

    #: ``forward`` broadcasts over stacked ``(R, features, 1)`` parameters.
    broadcasts = True
    rate: nn.Parameter
    offset: nn.Parameter

    def __init__(self, features: int, function: str) -> None:
        super().__init__()
        if function not in FUNCTIONS:
            offered = ", ".join(FUNCTIONS)
            raise ValueError(f"function={function!r} is not offered; choose from {offered}.")
        self.features = features
        self.function = function
        self.rate = nn.Parameter(torch.empty(features, 1))
        self.offset = nn.Parameter(torch.empty(features, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        low, high = (math.log(v) for v in RATE_RANGE)
        with torch.no_grad():
            self.rate.copy_(torch.empty_like(self.rate).uniform_(low, high).exp())
            if self.function == "exp":
                signs = torch.randint(0, 2, self.rate.shape, dtype=self.rate.dtype) * 2 - 1
                self.rate.mul_(signs)
            self.offset.zero_()

    def forward(self, x: Tensor) -> Tensor:
        function = FUNCTIONS[self.function][0]
        return self.offset.mT + function(x * self.rate.mT)

    def to_sympy(self, inputs: Sequence[sympy.Expr]) -> list[sympy.Expr]:
        """SymPy expressions of the outputs, with the trained rates and offsets as floats."""
        function = FUNCTIONS[self.function][1]
        rates, offsets = self.rate.detach().flatten().tolist(), self.offset.detach().flatten()
        return [
            sympy.Float(c) + function(sympy.Float(a) * x)
            for a, c, x in zip(rates, offsets.tolist(), inputs, strict=True)
        ]

    def extra_repr(self) -> str:
        return f"features={self.features}, function={self.function!r}"
