"""Data generators: the NAU paper's static arithmetic task and the public formula suite."""

from .arithmetic import make_static_arithmetic_task, success_threshold
from .formulas import evaluate_formula, make_formula_dataset, parse_formula
from .suite import (
    SUITE,
    SuiteEntry,
    list_suite,
    load_suite_entry,
    truth,
    write_suite,
    write_suite_entry,
)

__all__ = [
    "SUITE",
    "SuiteEntry",
    "evaluate_formula",
    "list_suite",
    "load_suite_entry",
    "make_formula_dataset",
    "make_static_arithmetic_task",
    "parse_formula",
    "success_threshold",
    "truth",
    "write_suite",
    "write_suite_entry",
]
