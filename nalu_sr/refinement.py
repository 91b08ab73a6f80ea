"""A second-order finish for one trained network: Levenberg-Marquardt on its parameters.

Adam brings a stack of units near a formula in a few thousand steps, and then crawls: on
inputs that share a large mean (the paper's U[1, 2]) a power unit's exponent trades against its
first layer's scale and a constant offset along a valley whose floor falls by parts in 1e10,
so ``(z1/z2)**e`` sits at ``e = 0.5`` and ``z**e`` at ``e = 0.76`` for 1e4 steps and more. Near
a fit with no residual, training is a nonlinear least-squares problem, and the
Levenberg-Marquardt method (:func:`scipy.optimize.least_squares`, Jacobians from
:func:`torch.func.jacfwd`) walks such a valley to its end in tens of Jacobians.

:func:`snap_and_refine` is the finish: refine every parameter within its bounds, snap the named
units to their discrete form (the exponents to their grid), then refine what is left with those
held fixed.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares
from torch import Tensor, nn
from torch.func import functional_call, jacfwd

from .units import ArithmeticUnit, network_bounds


@dataclass(frozen=True)
class Refinement:
    """What a refinement did: the training MSE after it and the Jacobians it evaluated."""

    mse: float
    jacobians: int


def refine(
    network: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    frozen: Collection[str] = (),
    bounded: bool = True,
    max_jacobians: int = 500,
) -> Refinement:
    """Least-squares fit of ``network``'s parameters to ``(X, y)``, in place.

    Parameters
    ----------
    network : nn.Module
        One network (not an ensemble); its parameters are updated in place.
    X, y : Tensor
        Inputs ``(N, in)`` and targets ``(N,)`` or ``(N, out)``.
    frozen : collection of str
        Names (as in ``network.named_parameters()``) held at their current values.
    bounded : bool
        Keep every parameter inside its unit's bounds (the trust-region reflective method).
        Otherwise the unconstrained Levenberg-Marquardt method runs, which converges faster
        on solutions that lie on a bound (a first-layer weight of exactly 1), and the result
        is clipped into the bounds.
    max_jacobians : int
        Most Jacobian evaluations.

    Returns
    -------
    Refinement
    """
    params = {name: p.detach() for name, p in network.named_parameters() if name not in frozen}
    fixed = {name: p.detach() for name, p in network.named_parameters() if name in frozen}
    if not params:
        raise ValueError("Every parameter is frozen: there is nothing to refine.")
    names = list(params)
    shapes = [params[name].shape for name in names]
    sizes = [params[name].numel() for name in names]
    dtype = next(iter(params.values())).dtype
    X = X.detach().to(dtype)
    target = y.detach().to(dtype).reshape(-1)

    def unflatten(flat: Tensor) -> dict[str, Tensor]:
        parts = torch.split(flat.to(dtype), sizes)
        return {name: part.reshape(shape) for name, part, shape in zip(names, parts, shapes)}

    def outputs(flat: Tensor) -> Tensor:
        return functional_call(network, unflatten(flat) | fixed, (X,)).reshape(-1)

    def residuals(flat: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return (outputs(torch.from_numpy(flat)) - target).double().numpy()

    def jacobian(flat: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # torch.func scripts helpers of its own on first use, which torch now deprecates.
            warnings.filterwarnings("ignore", "`torch.jit.script`", DeprecationWarning)
            return jacfwd(outputs)(torch.from_numpy(flat).to(dtype)).double().numpy()

    bounds = network_bounds(network)
    low = np.concatenate(
        [np.full(n, bounds.get(name, (-np.inf, np.inf))[0]) for name, n in zip(names, sizes)]
    )
    high = np.concatenate(
        [np.full(n, bounds.get(name, (-np.inf, np.inf))[1]) for name, n in zip(names, sizes)]
    )
    start = torch.cat([params[name].reshape(-1) for name in names]).double().numpy()
    start = np.clip(start, low, high)
    options = {"xtol": 1e-15, "ftol": 1e-15, "gtol": 1e-15, "x_scale": "jac"}
    if bounded:
        options |= {"bounds": (low, high), "method": "trf"}
    else:
        # MINPACK's method needs at least as many residuals as parameters.
        options["method"] = "lm" if target.numel() >= start.size else "trf"
    fit = least_squares(residuals, start, jac=jacobian, max_nfev=max_jacobians, **options)
    solution = unflatten(torch.from_numpy(np.clip(fit.x, low, high)))
    with torch.no_grad():
        for name, value in network.named_parameters():
            if name in solution:
                value.copy_(solution[name])
        mse = float((network(X).reshape(-1) - target).pow(2).mean())
    return Refinement(mse=mse, jacobians=int(fit.njev or fit.nfev))


def snap_and_refine(
    network: nn.Module,
    X: Tensor,
    y: Tensor,
    units: Sequence[str],
    *,
    max_jacobians: int = 500,
) -> Refinement:
    """Refine everything, snap ``units`` (module names) to their discrete form, refine the rest.

    The snapped units' parameters stay frozen in the second refinement, so the network ends
    with those units exactly discrete (a power unit's exponents on its grid) and everything
    else fitted around them. Returns the second refinement, with the Jacobians of both.
    """
    first = refine(network, X, y, max_jacobians=max_jacobians)
    frozen = []
    with torch.no_grad():
        for name in units:
            unit = network.get_submodule(name)
            if not isinstance(unit, ArithmeticUnit):
                raise TypeError(f"{name!r} is a {type(unit).__name__}, not an arithmetic unit.")
            for parameter, value in unit.snap().items():
                getattr(unit, parameter).copy_(value)
                frozen.append(f"{name}.{parameter}" if name else parameter)
    second = refine(network, X, y, frozen=frozen, bounded=False, max_jacobians=max_jacobians)
    return Refinement(mse=second.mse, jacobians=first.jacobians + second.jacobians)
