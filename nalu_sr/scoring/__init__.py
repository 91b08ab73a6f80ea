"""Scoring many candidate formulas at once: least-squares coefficients and per-split errors.

A candidate is a :class:`~nalu_sr.structure.Structure`; :func:`pack` flattens many of them into
integer arrays and :func:`score` fits ``c0 + sum_t c_t * term_t`` on the train rows and measures
the error on the train, validation and extrapolation rows. Three backends compute the same
numbers: ``"numba"`` (a compiled kernel, parallel over candidates), ``"numpy"`` (the reference)
and ``"torch"`` (the snapped networks as dense layers). Numba is imported on first use only.
"""

from .backends import available_backends
from .evaluate import score, score_rows
from .packing import PackedCandidates, pack, unpack
from .powers import raised
from .rows import EXTRAPOLATION, SPLITS, TRAIN, VALIDATION, SplitRows, group_rows
from .scores import Scores, split_errors

__all__ = [
    "EXTRAPOLATION",
    "SPLITS",
    "TRAIN",
    "VALIDATION",
    "PackedCandidates",
    "Scores",
    "SplitRows",
    "available_backends",
    "group_rows",
    "pack",
    "raised",
    "score",
    "score_rows",
    "split_errors",
    "unpack",
]
