import math

import pytest
import torch
from torch import nn

from nalu_sr.regularization import AnnealedRegularization
from nalu_sr.training import (
    Ensemble,
    affine_mse,
    centred_mse,
    fraction_affine_mse,
    fraction_mse,
    per_copy_mse,
    row_mean,
    second_moment,
    train,
)
from nalu_sr.units import NAU, NMU

SEEDS = [3, 11, 42]


@pytest.fixture(autouse=True)
def single_thread():
    # The tensors are tiny: one thread is faster than two on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _units_network() -> nn.Module:
    return nn.Sequential(NAU(4, 2), NMU(2, 1))


def _linear_network() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 1, bias=False))


def _table(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(n, 4, generator=generator, dtype=torch.float64) + 1
    return X, (X[:, 0] + X[:, 1]) * X[:, 2:].sum(1)


def _train(ensemble: Ensemble, data) -> None:
    schedule = AnnealedRegularization(strength=0.1, start=20, end=60)
    train(ensemble, data, steps=80, lr=1e-2, schedule=schedule, batch_size=32, eval_every=40)


@pytest.mark.parametrize(
    "make_network", [_units_network, _linear_network], ids=["stacked-units", "vmap-linear"]
)
def test_batched_copies_train_exactly_like_each_copy_alone(make_network):
    data = _table()
    together = Ensemble(make_network, SEEDS)
    _train(together, data)
    for index, seed in enumerate(SEEDS):
        alone = Ensemble(make_network, [seed])
        _train(alone, data)
        for name, value in alone.params.items():
            torch.testing.assert_close(
                together.params[name][index], value[0], rtol=1e-9, atol=1e-12
            )


def test_the_units_network_takes_the_stacked_path_and_linear_layers_take_vmap():
    # The equivalence above must cover both execution paths.
    assert Ensemble(_units_network, SEEDS)._stacked is not None
    assert Ensemble(_linear_network, SEEDS)._stacked is None


def test_per_copy_batches_train_each_copy_on_its_own_data():
    X, y = _table()
    shifts = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)

    def per_copy(step):
        rows = torch.arange(32) + (step * 32) % 224
        x = X[rows].expand(len(SEEDS), -1, -1) + shifts.view(-1, 1, 1)
        target = (x[..., 0] + x[..., 1]) * x[..., 2:].sum(-1)
        return x, target.unsqueeze(-1)

    together = Ensemble(_units_network, SEEDS)
    train(together, per_copy, steps=60, lr=1e-2)
    for index, seed in enumerate(SEEDS):

        def mine(step, index=index):
            x, t = per_copy(step)
            return x[index], t[index]

        alone = Ensemble(_units_network, [seed])
        train(alone, mine, steps=60, lr=1e-2)
        for name, value in alone.params.items():
            torch.testing.assert_close(
                together.params[name][index], value[0], rtol=1e-9, atol=1e-12
            )


def test_a_copy_whose_loss_turns_infinite_is_reseeded_and_training_goes_on():
    X, y = _table()

    def sampler(step, poison=True):
        rows = torch.arange(32) + (step * 32) % 224
        x = X[rows].expand(len(SEEDS), -1, -1).clone()
        if poison and step == 5:
            x[1, 0, 0] = math.inf  # one sample of copy 1, once
        return x, y[rows].expand(len(SEEDS), -1).unsqueeze(-1)

    poisoned = Ensemble(_units_network, SEEDS)
    result = train(poisoned, sampler, steps=40, lr=1e-2)
    clean = Ensemble(_units_network, SEEDS)
    train(clean, lambda step: sampler(step, poison=False), steps=40, lr=1e-2)

    assert result.reseeded == 1
    assert result.steps == 40
    assert bool(poisoned.finite_copies().all())
    assert bool(torch.isfinite(result.mse).all())
    assert poisoned.seeds[1] != SEEDS[1] and poisoned.seeds[::2] == SEEDS[::2]
    # The other copies never noticed.
    for name, value in clean.params.items():
        torch.testing.assert_close(poisoned.params[name][0::2], value[0::2])
        assert not torch.equal(poisoned.params[name][1], value[1])


def _offset_difference(n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = x0 - x1`` on inputs that share a mean ten times their spread."""
    X = torch.rand(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 10
    return X, X[:, 0] - X[:, 1]


def test_whitening_with_white_inputs_is_plain_adam():
    X, y = _table()
    plain, whitened = (Ensemble(_units_network, SEEDS) for _ in range(2))
    _train(plain, (X, y))
    schedule = AnnealedRegularization(strength=0.1, start=20, end=60)
    train(
        whitened,
        (X, y),
        steps=80,
        lr=1e-2,
        schedule=schedule,
        batch_size=32,
        eval_every=40,
        whiten={"net.0.weight": torch.eye(4, dtype=torch.float64)},
    )
    for name, value in plain.params.items():
        torch.testing.assert_close(whitened.params[name], value, rtol=0, atol=1e-12)


def test_whitened_adam_leaves_the_plateau_that_a_common_input_mean_makes():
    X, y = _offset_difference()
    mse = {}
    for whiten in (None, {"net.weight": second_moment(X)}):
        ensemble = Ensemble(lambda: NAU(3, 1), seeds=range(4))
        result = train(ensemble, (X, y), steps=300, lr=1e-2, whiten=whiten)
        mse[whiten is not None] = result.mse
        # Same function class and bounds: the clamp still holds every weight in [-1, 1].
        assert ensemble.params["net.weight"].abs().max() <= 1
    assert (mse[False] > 1e-2).all()  # plain Adam is still on the plateau
    assert (mse[True] < 1e-4).sum() >= 3
    weights = ensemble.params["net.weight"][mse[True] < 1e-4, 0]
    torch.testing.assert_close(
        weights.round(), torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64).expand_as(weights)
    )


def test_whitening_takes_one_matrix_per_copy():
    X, y = _offset_difference()
    moments = second_moment(X).expand(4, 3, 3)
    shared, per_copy = (Ensemble(lambda: NAU(3, 1), seeds=range(4)) for _ in range(2))
    train(shared, (X, y), steps=50, lr=1e-2, whiten={"net.weight": second_moment(X)})
    train(per_copy, (X, y), steps=50, lr=1e-2, whiten={"net.weight": moments})
    torch.testing.assert_close(per_copy.params["net.weight"], shared.params["net.weight"])


@pytest.mark.parametrize(
    ("whiten", "message"),
    [
        ({"net.bias": torch.eye(3)}, "whiten names no parameter"),
        ({"net.weight": torch.eye(2)}, "must be \\(3, 3\\)"),
    ],
)
def test_whitening_rejects_an_unknown_weight_or_a_wrong_matrix(whiten, message):
    X, y = _offset_difference()
    with pytest.raises(ValueError, match=message):
        train(Ensemble(lambda: NAU(3, 1), seeds=[0]), (X, y), steps=1, whiten=whiten)


def test_affine_mse_is_one_minus_r_squared_whatever_the_targets_scale_and_offset():
    torch.manual_seed(0)
    target = torch.rand(64, 1, dtype=torch.float64)
    prediction = torch.rand(3, 64, 1, dtype=torch.float64)
    prediction[0] = 5 - 2 * target  # an affine image: nothing left to fit
    loss = affine_mse(prediction, target)
    assert loss[0] == pytest.approx(0, abs=1e-12)
    r = torch.corrcoef(torch.stack([prediction[1, :, 0], target[:, 0]]))[0, 1]
    assert loss[1] == pytest.approx(1 - r**2, rel=1e-9)
    torch.testing.assert_close(affine_mse(prediction, 7 * target - 3), loss)


def test_affine_mse_gradient_is_that_of_the_best_scale_and_offset_held_fixed():
    torch.manual_seed(1)
    target = torch.rand(32, dtype=torch.float64)
    prediction = torch.rand(1, 32, 1, dtype=torch.float64, requires_grad=True)
    affine_mse(prediction, target).sum().backward()
    p, t = prediction.detach()[0, :, 0], target
    a = ((p - p.mean()) * (t - t.mean())).mean() / (p - p.mean()).pow(2).mean()
    b = t.mean() - a * p.mean()
    fixed = prediction.detach().clone().requires_grad_(True)
    fitted = (a * fixed + b).squeeze(0)
    (per_copy_mse(fitted[None], target) / (t - t.mean()).pow(2).mean()).sum().backward()
    torch.testing.assert_close(prediction.grad, fixed.grad)


@pytest.mark.parametrize(
    "loss, outputs",
    [
        (per_copy_mse, 1),
        (affine_mse, 1),
        (centred_mse, 1),
        (fraction_mse, 2),
        (fraction_affine_mse, 2),
    ],
)
def test_integer_row_weights_give_the_loss_of_the_rows_repeated(loss, outputs):
    generator = torch.Generator().manual_seed(4)
    prediction = torch.rand(3, 40, outputs, generator=generator, dtype=torch.float64) + 0.5
    target = torch.rand(40, generator=generator, dtype=torch.float64)
    counts = torch.randint(0, 4, (40,), generator=generator)
    counts[0] = 1  # some row must weigh something
    repeat = torch.repeat_interleave(torch.arange(40), counts)
    weighted = loss(prediction, target, weights=counts.to(torch.float64))
    torch.testing.assert_close(weighted, loss(prediction[:, repeat], target[repeat]))
    # Unit weights are no weights, to the last bit of the weighted sums.
    ones = loss(prediction, target, weights=torch.ones(40, dtype=torch.float64))
    torch.testing.assert_close(ones, loss(prediction, target), rtol=1e-14, atol=0)


def test_row_mean_weighs_rows_whatever_the_weights_scale():
    values = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64)
    weights = torch.tensor([1.0, 0.0, 3.0], dtype=torch.float64)
    assert row_mean(values, weights).item() == pytest.approx(3.25)
    assert row_mean(values, 10 * weights).item() == pytest.approx(3.25)
    assert row_mean(values).item() == pytest.approx(7 / 3)
    assert row_mean(values[..., None], weights, keepdim=True).shape == (1, 1, 1)


def test_weighted_second_moment_is_that_of_the_rows_repeated():
    generator = torch.Generator().manual_seed(5)
    x = torch.rand(30, 4, generator=generator, dtype=torch.float64)
    counts = torch.randint(1, 4, (30,), generator=generator)
    repeated = second_moment(x[torch.repeat_interleave(torch.arange(30), counts)])
    torch.testing.assert_close(second_moment(x, counts.to(torch.float64)), repeated)
