"""Annealed regularisation: the sparsity penalty's strength as a function of the training step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AnnealedRegularization:
    r"""Strength ``lambda * s(t)`` of the sparsity penalty at step ``t``.

    ``s(t)`` ramps from 0 at ``start`` to 1 at ``end``: the network first fits the data freely,
    then is pushed towards discrete weights. ``"linear"`` is the NAU paper's
    ``clip((t - start) / (end - start), 0, 1)``; ``"cosine"`` eases in and out of the ramp.

    Parameters
    ----------
    strength : float
        ``lambda``, the penalty weight once the ramp is complete.
    start, end : int
        Steps at which the ramp begins and ends.
    shape : {"linear", "cosine"}
        Shape of the ramp.

    Examples
    --------
    >>> schedule = AnnealedRegularization(strength=10, start=100, end=200)
    >>> schedule(50), schedule(150), schedule(500)
    (0.0, 5.0, 10.0)
    """

    strength: float = 1.0
    start: int = 0
    end: int = 1
    shape: Literal["linear", "cosine"] = "linear"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end={self.end} is before start={self.start}; swap them.")
        if self.shape not in ("linear", "cosine"):
            raise ValueError(f"shape={self.shape!r} is not supported; use 'linear' or 'cosine'.")

    def ramp(self, step: int) -> float:
        if step >= self.end:
            return 1.0
        if step <= self.start:
            return 0.0
        fraction = (step - self.start) / (self.end - self.start)
        if self.shape == "cosine":
            return 0.5 - 0.5 * math.cos(math.pi * fraction)
        return fraction

    def __call__(self, step: int) -> float:
        return self.strength * self.ramp(step)
