"""nalu-sr: exact formulas from tables of numbers, found with neural arithmetic units."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .estimator import NaluRegressor
    from .search import find_formula

__all__ = ["NaluRegressor", "__version__", "find_formula"]

# Imported on first use: torch takes seconds to load, which `nalu-sr --version` should not pay.
_LAZY = {"NaluRegressor": "nalu_sr.estimator", "find_formula": "nalu_sr.search"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nalu_sr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
