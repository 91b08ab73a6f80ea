"""The formula search: train unit stacks, snap them, score the formulas, pick one."""

from ..validation import MIN_SAMPLES
from .engine import TrainingSettings
from .runner import SearchResult, find_formula

__all__ = ["MIN_SAMPLES", "SearchResult", "TrainingSettings", "find_formula"]
