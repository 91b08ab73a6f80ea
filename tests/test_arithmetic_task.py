import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from nalu_sr.datasets import make_static_arithmetic_task, success_threshold
from nalu_sr.datasets.arithmetic import sample_uniform


def _benchmark_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_arithmetic.py"
    spec = importlib.util.spec_from_file_location("paper_arithmetic", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_subsets_have_the_papers_size_overlap_and_offset_range():
    offsets = set()
    for seed in range(200):
        task = make_static_arithmetic_task("add", random_state=seed)
        a, b = task.a_slice, task.b_slice
        assert a.stop - a.start == b.stop - b.start == 25
        assert a.stop - b.start == 12  # shared elements
        assert b.start == task.offset + 13 and b.stop == task.offset + 38
        assert a.start == task.offset and b.stop <= 100
        offsets.add(task.offset)
    assert min(offsets) == 0 and max(offsets) == 62


def test_the_offset_is_reproducible_from_random_state():
    first = make_static_arithmetic_task("mul", random_state=7)
    again = make_static_arithmetic_task("mul", random_state=7)
    assert first == again
    others = {make_static_arithmetic_task("mul", random_state=s).offset for s in range(20)}
    assert len(others) > 5


@pytest.mark.parametrize(
    "op, formula",
    [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("squared", lambda a, b: a**2),
        ("root", lambda a, b: a**0.5),
    ],
)
def test_targets_are_the_operation_on_the_two_subset_sums(op, formula):
    task = make_static_arithmetic_task(op, random_state=3)
    X, t = task.sample(50, "extrapolation", generator=0, dtype=torch.float64)
    assert X.shape == (50, 100) and t.shape == (50, 1)
    assert float(X.min()) >= 2 and float(X.max()) <= 6
    a = X[:, task.a_slice].sum(1, keepdim=True)
    b = X[:, task.b_slice].sum(1, keepdim=True)
    torch.testing.assert_close(t, formula(a, b))
    ideal = task.subset_weights(torch.float64)
    torch.testing.assert_close(X @ ideal.T, torch.cat([a, b], dim=1))


def test_samples_are_float32_by_default_and_reproducible_from_the_generator():
    task = make_static_arithmetic_task("add", random_state=0)
    X, t = task.sample(10, generator=5)
    assert X.dtype == t.dtype == torch.float32
    assert float(X.min()) >= 1 and float(X.max()) <= 2
    X2, _ = task.sample(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(X, X2)


def test_a_union_of_intervals_is_sampled_evenly_and_never_between_them():
    values = sample_uniform(((-6, -2), (2, 6)), (20_000,), torch.Generator().manual_seed(0))
    assert float(values.abs().min()) >= 2 and float(values.abs().max()) <= 6
    assert abs(float((values < 0).double().mean()) - 0.5) < 0.02
    uneven = sample_uniform(((0, 1), (2, 5)), (20_000,), torch.Generator().manual_seed(0))
    assert abs(float((uneven < 1).double().mean()) - 0.25) < 0.02
    assert not bool(((uneven > 1) & (uneven < 2)).any())


# The NAU paper's thresholds (section 2 of the reference notes): 25-element subsets give
# add 1.60e-5, mul 0.161, div 5.8e-12; 26-element subsets (its code) the rest.
@pytest.mark.parametrize(
    "op, subset_ratio, published",
    [
        ("add", 0.25, 1.60e-5),
        ("mul", 0.25, 0.161),
        ("div", 0.25, 5.8e-12),
        ("add", 0.26, 1.48e-5),
        ("sub", 0.26, 1.38e-8),
        ("mul", 0.26, 0.160),
        ("squared", 0.26, 0.159),
        ("root", 0.26, 9.0e-9),
    ],
)
def test_success_thresholds_match_the_published_ones(op, subset_ratio, published):
    task = make_static_arithmetic_task(op, subset_ratio=subset_ratio, random_state=0)
    assert success_threshold(task, n_samples=20_000) == pytest.approx(published, rel=0.03)


def test_the_threshold_is_stable_and_independent_of_the_offset():
    tasks = [make_static_arithmetic_task("mul", random_state=s) for s in (0, 1)]
    assert tasks[0].offset != tasks[1].offset
    first = success_threshold(tasks[0], n_samples=20_000)
    assert first == success_threshold(tasks[1], n_samples=20_000)
    other_seed = success_threshold(tasks[0], n_samples=20_000, random_state=1)
    assert other_seed == pytest.approx(first, rel=0.02)
    assert tasks[0].success_threshold(n_samples=20_000) == first


def test_the_threshold_follows_the_range_actually_run():
    narrow = make_static_arithmetic_task(
        "mul", interpolation_range=(1.1, 1.2), extrapolation_range=(1.2, 6), random_state=0
    )
    default = make_static_arithmetic_task("mul", random_state=0)
    assert success_threshold(narrow, n_samples=20_000) < success_threshold(
        default, n_samples=20_000
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"op": "pow"}, "not supported"),
        ({"op": "add", "subset_ratio": 0.7}, "need 105 inputs"),
        ({"op": "add", "interpolation_range": (2, 1)}, "low < high"),
        ({"op": "root", "interpolation_range": (-2, 2)}, "non-negative"),
    ],
)
def test_invalid_tasks_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_static_arithmetic_task(**kwargs)


@pytest.mark.parametrize(
    "successes, n, low, high",
    [
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (98, 100, 0.9300, 0.9945),
    ],
)
def test_wilson_interval_matches_tabulated_values(successes, n, low, high):
    interval = _benchmark_module().wilson_interval(successes, n)
    assert interval == pytest.approx((low, high), abs=1e-4)


def test_the_power_models_finish_leaves_every_copy_on_its_root_with_snapped_exponents():
    bench = _benchmark_module()
    from nalu_sr.training import Ensemble

    ensemble = Ensemble(lambda: bench._power_stack(4, 2), seeds=[0, 1])
    generator = torch.Generator().manual_seed(0)
    X = 1 + torch.rand(2, 128, 4, generator=generator, dtype=torch.float64)
    y = torch.sqrt(X[..., :2].sum(-1, keepdim=True))
    jacobians = bench.finish(ensemble, (X, y), bench.MODELS["NPU"].finish)
    assert jacobians.shape == (2,) and bool((jacobians > 0).all())
    exponents = ensemble.params["net.1.weight"].detach()
    assert torch.equal(exponents * 2, torch.round(exponents * 2))
    prediction, _ = ensemble(X, with_penalty=False)
    assert torch.allclose(prediction, y, rtol=1e-6)
