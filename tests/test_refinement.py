"""The Levenberg-Marquardt finish: it walks a power unit down the valley Adam crawls along,
snaps the exponents and refits the rest exactly."""

import pytest
import sympy
import torch
from torch import nn

from nalu_sr.refinement import refine, snap_and_refine
from nalu_sr.units import NAU, NPU, network_bounds


def _root_stack(first_row, exponent):
    network = nn.Sequential(NAU(4, 1), NPU(1, 1, max_exponent=2, denominator=2)).double()
    with torch.no_grad():
        network[0].weight.copy_(torch.tensor([first_row], dtype=torch.float64))
        network[1].weight.fill_(exponent)
    return network


def _inputs(n=256, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return 1 + torch.rand(n, 4, generator=generator, dtype=torch.float64)


def test_the_finish_snaps_the_exponent_to_a_root_and_refits_the_sum_exactly():
    X = _inputs()
    y = torch.sqrt(X[:, 0] + X[:, 1])
    # Where Adam leaves such a stack on inputs in [1, 2]: a plausible first-order fit with the
    # exponent part of the way from 1 to 1/2 and the rows' scale making up for it.
    network = _root_stack([0.6, 0.7, 0.05, -0.02], 0.8)
    result = snap_and_refine(network, X, y, ["1"])
    assert network[1].weight.item() == 0.5
    # Exact up to the unit's log(|z| + 1e-7), which the weights make up for in the 8th digit.
    assert torch.allclose(
        network[0].weight, torch.tensor([[1.0, 1.0, 0.0, 0.0]]).double(), atol=1e-6
    )
    assert result.mse < 1e-16
    assert result.jacobians > 0
    wide = 2 + 4 * _inputs(seed=1)
    assert torch.allclose(network(wide)[:, 0], torch.sqrt(wide[:, 0] + wide[:, 1]), rtol=1e-6)
    a, b, c, d = sympy.symbols("a b c d", positive=True)
    assert network[1].to_sympy([sympy.Symbol("z", positive=True)]) == [
        sympy.sqrt(sympy.Symbol("z", positive=True))
    ]
    assert network[0].to_sympy([a, b, c, d]) == [a + b]


def test_refine_leaves_frozen_parameters_alone_and_keeps_the_bounds():
    X = _inputs()
    y = (X[:, 0] + X[:, 1]) ** 0.5
    network = _root_stack([0.6, 0.7, 0.05, -0.02], 0.5)
    refine(network, X, y, frozen=["1.weight"])
    assert network[1].weight.item() == 0.5
    low, high = network_bounds(network)["0.weight"]
    assert low <= network[0].weight.min() and network[0].weight.max() <= high
    assert torch.allclose(
        network[0].weight, torch.tensor([[1.0, 1.0, 0.0, 0.0]]).double(), atol=1e-6
    )


def test_network_bounds_name_parameters_as_the_network_does():
    network = _root_stack([0.0] * 4, 1.0)
    assert network_bounds(network) == {"0.weight": (-1.0, 1.0), "1.weight": (-2.0, 2.0)}
    assert set(network_bounds(network)) <= dict(network.named_parameters()).keys()


def test_refine_needs_something_to_fit():
    network = _root_stack([0.0] * 4, 1.0)
    with pytest.raises(ValueError, match="nothing to refine"):
        refine(network, _inputs(), torch.ones(256), frozen=["0.weight", "1.weight"])


def test_snap_and_refine_only_snaps_units():
    network = nn.Sequential(nn.Linear(4, 1), NPU(1, 1)).double()
    with pytest.raises(TypeError, match="not an arithmetic unit"):
        snap_and_refine(network, _inputs(), torch.ones(256), ["0"])


def test_a_power_unit_on_halves_snaps_writes_and_penalises_halves():
    unit = NPU(2, 1, max_exponent=2, denominator=2)
    assert unit.snap_targets == (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
    with torch.no_grad():
        unit.weight.copy_(torch.tensor([[1.5, -0.5]]))
    assert float(unit.regularizer().detach()) == 0.0
    x, y = sympy.symbols("x y", positive=True)
    assert unit.to_sympy([x, y]) == [x ** sympy.Rational(3, 2) / sympy.sqrt(y)]
    with torch.no_grad():
        unit.weight.copy_(torch.tensor([[1.3, -0.6]]))
    assert float(unit.regularizer().detach()) == pytest.approx((0.2 + 0.1) / 2)
    assert "denominator=2" in repr(unit)
    with pytest.raises(ValueError, match="denominator must be at least 1"):
        NPU(2, 1, denominator=0)


def test_a_float32_network_is_refined_in_its_own_precision():
    X = _inputs().float()
    network = _root_stack([0.6, 0.7, 0.05, -0.02], 0.8).float()
    result = snap_and_refine(network, X, torch.sqrt(X[:, 0] + X[:, 1]), ["1"])
    assert network[0].weight.dtype == torch.float32 and network[1].weight.item() == 0.5
    assert torch.allclose(network[0].weight, torch.tensor([[1.0, 1.0, 0.0, 0.0]]), atol=1e-5)
    assert result.mse < 1e-10
