"""The formula search: train unit stacks, snap them, score the formulas, pick one."""

from .engine import TrainingSettings
from .runner import SearchResult, find_formula

__all__ = ["SearchResult", "TrainingSettings", "find_formula"]
