import math

import pytest
import sympy
import torch
from torch import nn

from nalu_sr.regularization import AnnealedRegularization
from nalu_sr.training import Ensemble, train
from nalu_sr.units import NAC, NALU, NAU, NMU, NACMul
from nalu_sr.units.nac import tanh_sigmoid_init_range, tanh_sigmoid_variance


@pytest.fixture(autouse=True)
def float64_single_thread():
    # Hand-derived gradients are compared at double precision; the tensors are tiny, so one
    # thread is faster than two on a busy machine.
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)


def _set(unit: nn.Module, **values) -> nn.Module:
    with torch.no_grad():
        for name, value in values.items():
            getattr(unit, name).copy_(torch.as_tensor(value, dtype=torch.float64))
    return unit


def _train_alone(unit: nn.Module, sample, steps: int, lr: float) -> nn.Module:
    optimizer = torch.optim.Adam(unit.parameters(), lr=lr)
    for _ in range(steps):
        x, y = sample()
        loss = (unit(x) - y).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        unit.clamp_()
    return unit


# Gradients derived by hand ----------------------------------------------------------------------


def test_nac_weight_gradients_match_the_hand_derived_ones():
    torch.manual_seed(0)
    unit = NAC(5, 1)
    _set(unit, W_hat=torch.randn(1, 5), M_hat=torch.randn(1, 5))
    x, y = torch.randn(5), torch.tensor(0.7)
    y_hat = unit(x.unsqueeze(0)).squeeze()
    (0.5 * (y_hat - y) ** 2).backward()

    w_hat, m_hat, error = unit.W_hat.detach()[0], unit.M_hat.detach()[0], float(y_hat.detach() - y)
    expected_w_hat = error * x * (1 - torch.tanh(w_hat) ** 2) * torch.sigmoid(m_hat)
    expected_m_hat = (
        error * x * torch.tanh(w_hat) * torch.sigmoid(m_hat) * (1 - torch.sigmoid(m_hat))
    )
    torch.testing.assert_close(unit.W_hat.grad[0], expected_w_hat)
    torch.testing.assert_close(unit.M_hat.grad[0], expected_m_hat)


def test_nmu_weight_gradient_is_equation_6_of_the_draft():
    # z_j / (W_ji x_i + 1 - W_ji) * (x_i - 1); inputs away from 1 and weights inside (0, 1) keep
    # every factor non-zero and the clamp out of the way.
    unit = _set(NMU(4, 3), weight=torch.rand(3, 4, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        unit.weight.mul_(0.8).add_(0.1)
    x = torch.tensor([2.5, -1.5, 3.0, 0.4])
    for j in range(3):
        unit.weight.grad = None
        z = unit(x.unsqueeze(0))[0]
        z[j].backward()
        w = unit.weight.detach()[j]
        expected = z[j].detach() / (w * x + 1 - w) * (x - 1)
        torch.testing.assert_close(unit.weight.grad[j], expected)
        others = [k for k in range(3) if k != j]
        assert torch.all(unit.weight.grad[others] == 0)


def _gated_product_by_autograd(x, weight):
    w = weight.clamp(0.0, 1.0).unsqueeze(-3)
    return (x.unsqueeze(-2) * w + 1 - w).prod(dim=-1)


@pytest.mark.parametrize(
    ("x_shape", "w_shape"),
    [
        ((7, 5), (3, 5)),  # one network
        ((7, 5), (4, 3, 5)),  # stacked copies, shared inputs
        ((4, 7, 5), (4, 3, 5)),  # stacked copies, inputs per copy (NAU -> NMU)
        ((2, 4, 7, 5), (3, 5)),  # extra batch dimensions
    ],
)
def test_nmu_gradients_match_autograd_of_the_plain_product(x_shape, w_shape):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, dtype=torch.float64, generator=generator)
    weight = torch.rand(w_shape, dtype=torch.float64, generator=generator)
    weight[..., 0, 1] = 1.0  # with x = 0 below: a factor that is exactly 0
    weight[..., 1, 2] = 0.0
    x[..., 2, 1] = 0.0
    unit = NMU(5, 3).double()
    unit.weight = nn.Parameter(weight.clone())
    x = x.requires_grad_()
    reference_weight = weight.clone().requires_grad_()
    z = unit(x)
    expected = _gated_product_by_autograd(x, reference_weight)
    assert torch.all(z[..., 2, 0] == 0)
    torch.testing.assert_close(z, expected, rtol=1e-12, atol=1e-12)
    upstream = torch.randn(z.shape, dtype=torch.float64, generator=generator)
    got = torch.autograd.grad(z, (x, unit.weight), upstream)
    want = torch.autograd.grad(expected, (x, reference_weight), upstream)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def test_nmu_runs_under_vmap_and_takes_a_single_sample():
    unit = NMU(5, 3).double()
    weights = {"weight": torch.rand(4, 3, 5, dtype=torch.float64, requires_grad=True)}
    x = torch.randn(4, 7, 5, dtype=torch.float64)
    z = torch.func.vmap(lambda p, xs: torch.func.functional_call(unit, p, (xs,)))(weights, x)
    torch.testing.assert_close(z, _gated_product_by_autograd(x, weights["weight"]))
    z.sum().backward()
    assert weights["weight"].grad.shape == (4, 3, 5)
    assert unit(torch.ones(5, dtype=torch.float64)).shape == (3,)


# Toy problems from the seed documents -----------------------------------------------------------


def test_nac_learns_x0_minus_x1_with_weights_near_plus_and_minus_one():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    def sample():
        x = torch.rand(64, 2, generator=generator)
        return x, (x[:, 0] - x[:, 1]).unsqueeze(1)

    # Start from W_hat = M_hat = 0 as the toy does: a 2 -> 1 NAC's Glorot variance (2/3) is out of
    # reach of tanh * sigmoid, so its default initialisation starts saturated.
    unit = _set(NAC(2, 1), W_hat=[[0.0, 0.0]], M_hat=[[0.0, 0.0]])
    unit = _train_alone(unit, sample, steps=400, lr=0.1)
    weight = unit.effective_weight().detach()[0]
    assert weight[0] > 0.95
    assert weight[1] < -0.95
    assert unit.snap()["weight"].tolist() == [[1.0, -1.0]]


# tanh * sigmoid only approaches 1, so a NAC's error is the distance of its weights from 1; the
# clamped NAU weights reach 1 exactly.
@pytest.mark.parametrize("unit_type, tolerance", [(NAC, 1e-2), (NAU, 1e-9)])
def test_sum_of_two_groups_extrapolates_tenfold_and_snaps_exactly(unit_type, tolerance):
    # Ten inputs on U[0, 10]; target a + b with a the first four and b the other six.
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    def sample(high=10.0, n=64):
        x = high * torch.rand(n, 10, generator=generator)
        return x, (x[:, :4].sum(1) + x[:, 4:].sum(1)).unsqueeze(1)

    unit = _train_alone(unit_type(10, 1), sample, steps=600, lr=0.3)
    x_test, y_test = sample(high=100.0, n=2000)
    with torch.no_grad():
        relative = ((unit(x_test) - y_test).abs() / y_test.abs()).max()
    assert relative < tolerance
    symbols = sympy.symbols("x0:10")
    assert sympy.expand(unit.to_sympy(symbols)[0] - sum(symbols)) == 0


def test_nau_then_nmu_recovers_the_product_of_two_sums():
    # The draft's 4-input task t = (x1 + x2)(x1 + x2 + x3 + x4) on U[0, 2], four batched copies;
    # the copy with the lowest validation error must snap to exactly that product.
    generator = torch.Generator().manual_seed(0)
    copies = 4

    def sample(step=0, n=128):
        x = 2 * torch.rand(copies, n, 4, generator=generator)
        return x, (x[..., :2].sum(-1) * x.sum(-1)).unsqueeze(-1)

    ensemble = Ensemble(lambda: nn.Sequential(NAU(4, 2), NMU(2, 1)), range(copies))
    schedule = AnnealedRegularization(strength=1.0, start=500, end=1500)
    train(ensemble, sample, steps=2000, lr=1e-2, schedule=schedule)
    x_val, t_val = sample(n=1000)
    with torch.no_grad():
        validation = (ensemble(x_val, with_penalty=False)[0] - t_val).pow(2).mean(dim=(1, 2))
    best = ensemble.network(int(validation.argmin()))

    x1, x2, x3, x4 = symbols = sympy.symbols("x1:5")
    found = best[1].to_sympy(best[0].to_sympy(symbols))[0]
    # Flipping the signs of both sums gives the same product, so compare expanded forms.
    assert sympy.expand(found - (x1 + x2) * (x1 + x2 + x3 + x4)) == 0
    assert validation.min() < 1e-4


# One unit at a time -----------------------------------------------------------------------------


def test_nau_forward_is_the_clamped_linear_map():
    unit = _set(NAU(3, 2), weight=[[1.0, -1.0, 0.0], [0.5, 2.0, -3.0]])
    x = torch.tensor([[2.0, 3.0, 5.0]])
    # Out-of-range entries act as their bound: 2 -> 1, -3 -> -1.
    torch.testing.assert_close(unit(x), torch.tensor([[-1.0, 1.0 + 3.0 - 5.0]]))


def test_nmu_forward_is_the_gated_product():
    unit = _set(NMU(3, 2), weight=[[1.0, 1.0, 0.0], [0.5, 0.0, 1.0]])
    x = torch.tensor([[2.0, 3.0, 5.0]])
    expected = torch.tensor([[2.0 * 3.0, (0.5 * 2.0 + 0.5) * 5.0]])
    torch.testing.assert_close(unit(x), expected)


def test_nac_and_nacmul_forward_use_tanh_times_sigmoid_weights():
    w_hat, m_hat = [[0.3, -1.2]], [[2.0, 0.5]]
    add = _set(NAC(2, 1), W_hat=w_hat, M_hat=m_hat)
    mul = _set(NACMul(2, 1), W_hat=w_hat, M_hat=m_hat)
    weight = torch.tanh(torch.tensor(w_hat)) * torch.sigmoid(torch.tensor(m_hat))
    x = torch.tensor([[2.0, -3.0]])
    torch.testing.assert_close(add(x), x @ weight.T)
    expected = torch.exp(torch.log(x.abs() + 1e-7) @ weight.T)
    torch.testing.assert_close(mul(x), expected)


def test_nalu_forward_gates_between_the_additive_and_multiplicative_paths():
    unit = _set(NALU(2, 1), W_hat=[[5.0, 5.0]], M_hat=[[20.0, 20.0]], G=[[0.4, -0.1]])
    x = torch.tensor([[2.0, 3.0]])
    weight = unit.effective_weight().detach()
    gate = torch.sigmoid(x @ torch.tensor([[0.4], [-0.1]]))
    expected = gate * (x @ weight.T) + (1 - gate) * torch.exp(torch.log(x + 1e-7) @ weight.T)
    torch.testing.assert_close(unit(x), expected)


@pytest.mark.parametrize(
    "unit, weights, snapped",
    [
        (NAU(3, 1), {"weight": [[0.9, -0.6, 0.2]]}, [[1.0, -1.0, 0.0]]),
        (NMU(3, 1), {"weight": [[0.9, 0.4, 0.6]]}, [[1.0, 0.0, 1.0]]),
        (NAC(2, 1), {"W_hat": [[4.0, -4.0]], "M_hat": [[4.0, -4.0]]}, [[1.0, 0.0]]),
        (NACMul(2, 1), {"W_hat": [[-4.0, 4.0]], "M_hat": [[4.0, 4.0]]}, [[-1.0, 1.0]]),
    ],
    ids=["NAU", "NMU", "NAC", "NACMul"],
)
def test_snap_rounds_weights_to_the_units_targets(unit, weights, snapped):
    _set(unit, **weights)
    assert unit.snap()["weight"].tolist() == snapped


def test_to_sympy_renders_the_snapped_operation():
    x, y, z = symbols = sympy.symbols("x y z")
    nau = _set(NAU(3, 2), weight=[[0.98, -1.0, 0.01], [0.0, 0.0, 0.97]])
    assert nau.to_sympy(symbols) == [x - y, z]
    nmu = _set(NMU(3, 1), weight=[[1.0, 0.02, 0.99]])
    assert nmu.to_sympy(symbols) == [x * z]
    nacmul = _set(NACMul(2, 1), W_hat=[[8.0, -8.0]], M_hat=[[8.0, 8.0]])
    assert nacmul.to_sympy([x, y]) == [sympy.Abs(x) / sympy.Abs(y)]
    with pytest.raises(ValueError, match="takes 3 inputs"):
        nau.to_sympy([x, y])


@pytest.mark.parametrize("unit_type, targets", [(NAU, [-1.0, 0.0, 1.0]), (NMU, [0.0, 1.0])])
def test_regularizer_vanishes_on_targets_and_is_positive_between_them(unit_type, targets):
    for shape in ("linear", "squared"):
        unit = unit_type(len(targets), 1, regularizer_shape=shape)
        _set(unit, weight=[targets])
        assert float(unit.regularizer().detach()) == 0.0
        for between in (0.3, 0.5, 0.8):
            _set(unit, weight=[[between] * len(targets)])
            assert float(unit.regularizer().detach()) > 0.0


def test_nac_regularizer_vanishes_only_when_saturated():
    unit = _set(NAC(2, 1), W_hat=[[30.0, -30.0]], M_hat=[[40.0, 40.0]])
    assert float(unit.regularizer().detach()) < 1e-12
    _set(unit, W_hat=[[0.5, -0.5]], M_hat=[[0.0, 0.0]])
    assert float(unit.regularizer().detach()) > 0.1


def test_clamp_puts_weights_back_into_their_bounds():
    nau = _set(NAU(3, 1), weight=[[1.7, -2.0, 0.3]]).clamp_()
    assert nau.weight.tolist() == [[1.0, -1.0, 0.3]]
    nmu = _set(NMU(3, 1), weight=[[1.2, -0.4, 0.3]]).clamp_()
    assert nmu.weight.tolist() == [[1.0, 0.0, 0.3]]
    # Without clamping, the bound is enforced by a penalty instead.
    free = _set(NAU(1, 1, clamp=False), weight=[[1.5]]).clamp_()
    assert free.weight.tolist() == [[1.5]]
    assert float(free.regularizer().detach()) > 0.0


def test_initialisations_follow_their_documented_ranges():
    torch.manual_seed(0)
    nau = NAU(100, 2)
    r = min(0.5, math.sqrt(3) * math.sqrt(2 / 102))
    assert nau.weight.abs().max() <= r
    assert nau.weight.abs().max() > 0.9 * r
    wide = NAU(2, 2)  # Glorot would give r > 0.5: capped
    assert wide.weight.abs().max() <= 0.5

    nmu = NMU(200, 50).requires_grad_(False)
    assert float(nmu.weight.min()) >= 0.25 and float(nmu.weight.max()) <= 0.75
    assert abs(float(nmu.weight.mean()) - 0.5) < 0.01

    nac = NAC(300, 300).requires_grad_(False)
    target = 2 / 600
    r = tanh_sigmoid_init_range(target)
    assert tanh_sigmoid_variance(r) == pytest.approx(target, rel=1e-6)
    assert float(nac.W_hat.abs().max()) <= r and float(nac.M_hat.abs().max()) <= r
    assert float(nac.effective_weight().var()) == pytest.approx(target, rel=0.05)


def test_nalu_snap_needs_inputs_and_reads_the_gate_from_them():
    unit = _set(NALU(2, 2), W_hat=[[6.0, 6.0], [6.0, -6.0]], M_hat=[[9.0, 9.0], [9.0, 9.0]])
    _set(unit, G=[[3.0, 3.0], [-3.0, -3.0]])
    with pytest.raises(ValueError, match="snap"):
        unit.snap()
    x = torch.rand(50, 2) + 1
    snapped = unit.snap(x)
    assert snapped["gate"].tolist() == [1.0, 0.0]
    a, b = sympy.symbols("a b", positive=True)
    assert unit.to_sympy([a, b], snapped) == [a + b, a / b]


@pytest.mark.parametrize(
    "make",
    [
        lambda: NAU(5, 3),
        lambda: NMU(5, 3),
        lambda: NAC(5, 3),
        lambda: NACMul(5, 3),
        lambda: NALU(5, 3),
    ],
    ids=["NAU", "NMU", "NAC", "NACMul", "NALU"],
)
def test_stacked_weights_broadcast_in_forward_and_regularizer(make):
    copies = [make() for _ in range(4)]
    for unit in copies:  # move some weights off their targets so penalties differ
        with torch.no_grad():
            for p in unit.parameters():
                p.add_(0.3 * torch.rand_like(p))
    stacked = make()
    with torch.no_grad():
        for name, _ in stacked.named_parameters():
            value = torch.stack([getattr(c, name).detach() for c in copies])
            setattr(stacked, name, nn.Parameter(value))
    shared = torch.rand(7, 5) + 0.5
    per_copy = torch.rand(4, 7, 5) + 0.5
    with torch.no_grad():
        torch.testing.assert_close(stacked(shared), torch.stack([c(shared) for c in copies]))
        torch.testing.assert_close(
            stacked(per_copy), torch.stack([c(x) for c, x in zip(copies, per_copy)])
        )
        torch.testing.assert_close(
            stacked.regularizer(), torch.stack([c.regularizer() for c in copies])
        )


@pytest.mark.parametrize("unit_type", [NAU, NMU, NAC, NACMul, NALU])
def test_reset_parameters_redraws_what_the_constructor_drew(unit_type):
    torch.manual_seed(5)
    unit = unit_type(4, 3)
    built = {name: value.clone() for name, value in unit.state_dict().items()}
    torch.manual_seed(5)
    unit.reset_parameters()
    for name, value in unit.state_dict().items():
        assert torch.equal(value, built[name]), name


def test_nalu_draws_its_nac_weights_once_then_its_gate():
    torch.manual_seed(0)
    nalu = NALU(3, 2)
    torch.manual_seed(0)
    nac = NAC(3, 2)
    assert torch.equal(nalu.W_hat, nac.W_hat) and torch.equal(nalu.M_hat, nac.M_hat)
    bound = math.sqrt(6 / 5)
    expected_gate = torch.empty(2, 3).uniform_(-bound, bound)
    assert torch.equal(nalu.G, expected_gate)


def test_nalu_to_sympy_is_built_unsimplified_from_the_snapped_paths():
    unit = _set(NALU(2, 2), W_hat=[[6.0, 6.0], [6.0, -6.0]], M_hat=[[9.0, 9.0], [9.0, 9.0]])
    _set(unit, G=[[3.0, 3.0], [-3.0, -3.0]])
    a, b = sympy.symbols("a b")
    sum_, quotient = unit.to_sympy([a, b], unit.snap(torch.rand(50, 2) + 1))
    assert sum_ == a + b
    assert quotient == sympy.Mul(sympy.Abs(a), sympy.Pow(sympy.Abs(b), -1))
