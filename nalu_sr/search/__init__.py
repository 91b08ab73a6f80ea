"""The formula search: train unit stacks, snap them, score the formulas, pick one."""

from .engine import TrainingSettings
from .runner import MIN_SAMPLES, SearchResult, find_formula

__all__ = ["MIN_SAMPLES", "SearchResult", "TrainingSettings", "find_formula"]
