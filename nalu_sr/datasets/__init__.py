"""Data generators: the NAU paper's static arithmetic task and the public formula suite."""

from .arithmetic import make_static_arithmetic_task, success_threshold
from .formulas import make_formula_dataset
from .suite import SUITE, SuiteEntry, list_suite, load_suite_entry, write_suite_entry

__all__ = [
    "SUITE",
    "SuiteEntry",
    "list_suite",
    "load_suite_entry",
    "make_formula_dataset",
    "make_static_arithmetic_task",
    "success_threshold",
    "write_suite_entry",
]
