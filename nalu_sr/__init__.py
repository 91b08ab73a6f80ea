"""nalu-sr: exact formulas from tables of numbers, found with neural arithmetic units."""

from ._version import __version__

__all__ = ["__version__"]
