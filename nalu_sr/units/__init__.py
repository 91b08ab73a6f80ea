"""Neural arithmetic units as plug-and-play PyTorch layers.

Each unit is an :class:`torch.nn.Module` with three additions to a plain layer:
``regularizer()`` (sparsity penalty), ``snap()`` (discrete form) and ``to_sympy()``.
"""

from ._base import ArithmeticUnit, network_bounds, snap_to, sparsity_penalty
from .nac import NAC, NACMul
from .nalu import NALU
from .nau import NAU
from .ndu import NDU
from .nfu import NFU
from .nmu import NMU
from .npu import NPU

__all__ = [
    "NAC",
    "NALU",
    "NAU",
    "NDU",
    "NFU",
    "NMU",
    "NPU",
    "ArithmeticUnit",
    "NACMul",
    "network_bounds",
    "snap_to",
    "sparsity_penalty",
]
