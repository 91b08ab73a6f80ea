"""The static arithmetic task of the NAU paper (Madsen & Johansen, ICLR 2020).

A 100-element input vector holds two overlapping subsets; the target is one arithmetic
operation between their sums. A network has to find both subsets among the inputs (first layer)
and the operation (second layer), and is judged on a range of inputs it never saw in training.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import torch
from sklearn.utils import check_random_state
from torch import Tensor

#: ``t = f(a, b)`` for every supported operation, ``a`` and ``b`` being the two subset sums.
OPERATIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "squared": lambda a, b: a * a,
    "root": lambda a, b: torch.sqrt(a),
}

Interval = tuple[float, float]
RangeName = Literal["interpolation", "extrapolation"]


def as_intervals(value: Sequence[float] | Sequence[Sequence[float]]) -> tuple[Interval, ...]:
    """A range as a tuple of ``(low, high)`` intervals.

    ``(1, 2)`` is the single interval U[1, 2]; ``((-6, -2), (2, 6))`` is the union
    U[-6, -2] ∪ U[2, 6].
    """
    items = list(value)
    if items and not isinstance(items[0], Sequence):
        items = [items]
    intervals = []
    for item in items:
        if len(item) != 2 or not float(item[0]) < float(item[1]):
            raise ValueError(
                f"{item!r} is not an interval; give (low, high) with low < high, or a sequence "
                "of such pairs for a union."
            )
        intervals.append((float(item[0]), float(item[1])))
    if not intervals:
        raise ValueError("A range needs at least one (low, high) interval.")
    return tuple(intervals)


def sample_uniform(
    intervals: Sequence[Interval],
    size: Sequence[int],
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Draw i.i.d. values uniformly from a union of intervals.

    Each value picks an interval with probability proportional to its length, then a uniform
    value inside it, so the density is flat over the whole union.

    Parameters
    ----------
    intervals : sequence of (low, high)
        Disjoint intervals; see :func:`as_intervals`.
    size : sequence of int
        Shape of the returned tensor.
    generator : torch.Generator, optional
        Source of randomness; torch's global generator when omitted.
    dtype : torch.dtype, default=torch.float32
        Dtype of the returned tensor.

    Returns
    -------
    values : Tensor of shape ``size``
    """
    low = torch.tensor([lo for lo, _ in intervals], dtype=torch.float64)
    width = torch.tensor([hi - lo for lo, hi in intervals], dtype=torch.float64)
    # Float32 draws (a 2**-24 grid, ample here) cost a third of float64 ones; the affine map to
    # the interval is then done in float64.
    unit = torch.rand(tuple(size), generator=generator).to(torch.float64)
    if len(intervals) == 1:
        return unit.mul_(width[0]).add_(low[0]).to(dtype)
    # One uniform draw does both jobs: its position along the concatenated intervals.
    edges = torch.cumsum(width, 0) / width.sum()
    which = torch.bucketize(unit, edges, right=True).clamp_(max=len(intervals) - 1)
    start = torch.cat([torch.zeros(1, dtype=torch.float64), edges[:-1]])
    inside = (unit - start[which]) / (edges[which] - start[which])
    return (low[which] + width[which] * inside).to(dtype)


@dataclass(frozen=True)
class StaticArithmeticTask:
    """One instance of the static arithmetic task: where the subsets lie, and the operation.

    Made by :func:`make_static_arithmetic_task`, which documents the parameters.

    Attributes
    ----------
    op : str
        Operation between the subset sums, a key of :data:`OPERATIONS`.
    input_size : int
        Length of the input vector.
    subset_size : int
        Elements in each subset.
    overlap : int
        Elements the two subsets share.
    offset : int
        Index of the first element of subset ``a``.
    interpolation_range, extrapolation_range : tuple of (low, high)
        Input ranges for training/validation and for the extrapolation test.
    """

    op: str
    input_size: int
    subset_size: int
    overlap: int
    offset: int
    interpolation_range: tuple[Interval, ...]
    extrapolation_range: tuple[Interval, ...]

    @property
    def a_slice(self) -> slice:
        """Elements summed into ``a``: ``x[offset : offset + subset_size]``."""
        return slice(self.offset, self.offset + self.subset_size)

    @property
    def b_slice(self) -> slice:
        """Elements summed into ``b``; it starts ``overlap`` elements before ``a`` ends."""
        start = self.offset + self.subset_size - self.overlap
        return slice(start, start + self.subset_size)

    def subset_weights(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The ideal first layer: a ``(2, input_size)`` 0/1 matrix whose rows give ``a``, ``b``."""
        weights = torch.zeros(2, self.input_size, dtype=dtype)
        weights[0, self.a_slice] = 1
        weights[1, self.b_slice] = 1
        return weights

    def target(self, X: Tensor) -> Tensor:
        """The target ``t = f(a, b)`` of inputs ``X`` ``(n, input_size)``, as ``(n, 1)``."""
        a = X[..., self.a_slice].sum(dim=-1, keepdim=True)
        b = X[..., self.b_slice].sum(dim=-1, keepdim=True)
        return OPERATIONS[self.op](a, b)

    def input_range(self, range: RangeName) -> tuple[Interval, ...]:
        """The intervals of ``"interpolation"`` or ``"extrapolation"``."""
        if range == "interpolation":
            return self.interpolation_range
        if range == "extrapolation":
            return self.extrapolation_range
        raise ValueError(f"range={range!r} is unknown; use 'interpolation' or 'extrapolation'.")

    def sample(
        self,
        n: int,
        range: RangeName = "interpolation",
        generator: torch.Generator | int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` inputs from a range and their targets.

        Parameters
        ----------
        n : int
            Number of samples.
        range : {"interpolation", "extrapolation"}, default="interpolation"
            Which input range to draw from.
        generator : torch.Generator, int or None
            Source of randomness; an int seeds a fresh generator; torch's global generator
            when omitted.
        dtype : torch.dtype, default=torch.float32
            Dtype of ``X`` and ``t``.

        Returns
        -------
        X : Tensor of shape (n, input_size)
            Inputs, i.i.d. uniform on the range.
        t : Tensor of shape (n, 1)
            Targets ``f(a, b)``, computed in float64 before the cast to ``dtype``.
        """
        if isinstance(generator, int):
            generator = torch.Generator().manual_seed(generator)
        X = sample_uniform(self.input_range(range), (n, self.input_size), generator, torch.float64)
        return X.to(dtype), self.target(X).to(dtype)

    def success_threshold(
        self, epsilon: float = 1e-5, n_samples: int = 100_000, random_state: int = 0
    ) -> float:
        """The ε-perfect extrapolation MSE; see :func:`success_threshold`."""
        return success_threshold(self, epsilon, n_samples, random_state)


def make_static_arithmetic_task(
    op: str,
    input_size: int = 100,
    subset_ratio: float = 0.25,
    overlap_ratio: float = 0.5,
    interpolation_range: Sequence[float] | Sequence[Sequence[float]] = (1, 2),
    extrapolation_range: Sequence[float] | Sequence[Sequence[float]] = (2, 6),
    random_state: int | None = None,
) -> StaticArithmeticTask:
    """Generate the static arithmetic task of the NAU paper.

    Inputs ``x`` are ``input_size`` i.i.d. uniform values. Two subsets of
    ``subset_size = floor(input_size * subset_ratio)`` consecutive elements are summed::

        a = sum(x[o : o + subset_size])
        b = sum(x[o + subset_size - overlap : o + 2 * subset_size - overlap])

    with ``overlap = floor(subset_size * overlap_ratio)`` shared elements, and the target is
    ``t = f(a, b)`` for the chosen operation. The offset ``o`` is drawn uniformly from every
    position that keeps both subsets inside the input (``[0, 62]`` with the defaults), so each
    seed has its own subsets.

    Models train and are validated on ``interpolation_range`` and are tested on
    ``extrapolation_range``; success means an extrapolation MSE below :func:`success_threshold`.

    Parameters
    ----------
    op : {"add", "sub", "mul", "div", "squared", "root"}
        The operation: ``a + b``, ``a - b``, ``a * b``, ``a / b``, ``a ** 2`` or ``sqrt(a)``.
    input_size : int, default=100
        Length of the input vector.
    subset_ratio : float, default=0.25
        Size of each subset as a fraction of ``input_size``.
    overlap_ratio : float, default=0.5
        Elements shared by the two subsets, as a fraction of the subset size.
    interpolation_range : (low, high) or sequence of (low, high), default=(1, 2)
        Training and validation inputs; a sequence of intervals is their union, e.g.
        ``((-2, -1), (1, 2))``.
    extrapolation_range : (low, high) or sequence of (low, high), default=(2, 6)
        Test inputs, in the same format.
    random_state : int, RandomState instance or None, default=None
        Determines the subset offset. Pass an int for the same task across calls.

    Returns
    -------
    task : StaticArithmeticTask
        The subsets (``a_slice``, ``b_slice``), the target function (``target``) and
        ``sample(n, range, generator)``, which returns torch tensors ``X`` ``(n, input_size)``
        and ``t`` ``(n, 1)``.

    References
    ----------
    .. [1] A. Madsen and A. R. Johansen, "Neural Arithmetic Units", ICLR 2020.

    Examples
    --------
    >>> task = make_static_arithmetic_task("mul", random_state=0)
    >>> task.a_slice, task.b_slice
    (slice(44, 69, None), slice(57, 82, None))
    >>> X, t = task.sample(4, "extrapolation", generator=0)
    >>> X.shape, t.shape
    (torch.Size([4, 100]), torch.Size([4, 1]))
    """
    if op not in OPERATIONS:
        raise ValueError(f"op={op!r} is not supported; use one of {sorted(OPERATIONS)}.")
    if not 0 < subset_ratio <= 1:
        raise ValueError(f"subset_ratio must be in (0, 1], got {subset_ratio}.")
    if not 0 <= overlap_ratio <= 1:
        raise ValueError(f"overlap_ratio must be in [0, 1], got {overlap_ratio}.")
    # The small tolerance keeps 100 * 0.29 from flooring to 28.
    subset_size = math.floor(input_size * subset_ratio + 1e-9)
    overlap = math.floor(subset_size * overlap_ratio + 1e-9)
    span = 2 * subset_size - overlap
    if subset_size < 1 or span > input_size:
        raise ValueError(
            f"Two subsets of {subset_size} elements overlapping by {overlap} need {span} inputs, "
            f"but input_size={input_size}; raise input_size or lower subset_ratio."
        )
    interpolation = as_intervals(interpolation_range)
    extrapolation = as_intervals(extrapolation_range)
    if op == "root" and min(lo for lo, _ in interpolation + extrapolation) < 0:
        raise ValueError(
            "op='root' takes the square root of a subset sum, so its inputs must be "
            "non-negative; give ranges with low >= 0."
        )
    offset = int(check_random_state(random_state).randint(0, input_size - span + 1))
    return StaticArithmeticTask(
        op=op,
        input_size=input_size,
        subset_size=subset_size,
        overlap=overlap,
        offset=offset,
        interpolation_range=interpolation,
        extrapolation_range=extrapolation,
    )


def success_threshold(
    task: StaticArithmeticTask,
    epsilon: float = 1e-5,
    n_samples: int = 100_000,
    random_state: int = 0,
) -> float:
    """Extrapolation MSE of an ε-perfect model: below it, a model counts as a success.

    The ε-perfect model has a first layer whose weights are ``1 - epsilon`` on the subset
    entries and ``epsilon`` on every other entry, followed by an exact second layer. Its
    extrapolation MSE is estimated by Monte Carlo in float64 on ``n_samples`` inputs drawn from
    ``task.extrapolation_range`` with a fixed seed, so the threshold is reproducible: it depends
    on the operation, the subset size and overlap, ``input_size`` and the range, and is the same
    for every offset. The relative Monte Carlo error is below 1% at the default ``n_samples``.

    With the defaults (25-element subsets, U[2, 6]) it is about 1.60e-5 for ``add`` and 0.161
    for ``mul``, the NAU paper's values for that subset size.

    Parameters
    ----------
    task : StaticArithmeticTask
        The task actually run.
    epsilon : float, default=1e-5
        Distance of every first-layer weight from its ideal 0/1 value.
    n_samples : int, default=100_000
        Monte Carlo samples.
    random_state : int, default=0
        Seed of the Monte Carlo samples.

    Returns
    -------
    threshold : float
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}.")
    # The subsets' position does not change the error's distribution; fixing it makes the
    # estimate identical for every offset.
    exact = replace(task, offset=0).subset_weights(torch.float64)
    perturbed = exact * (1 - epsilon) + (1 - exact) * epsilon
    generator = torch.Generator().manual_seed(random_state)
    operation = OPERATIONS[task.op]
    total, chunk = 0.0, 20_000
    for start in range(0, n_samples, chunk):
        size = (min(chunk, n_samples - start), task.input_size)
        X = sample_uniform(task.extrapolation_range, size, generator, torch.float64)
        a, b = (X @ exact.T).unbind(-1)
        a_eps, b_eps = (X @ perturbed.T).unbind(-1)
        total += float((operation(a_eps, b_eps) - operation(a, b)).pow(2).sum())
    return total / n_samples
