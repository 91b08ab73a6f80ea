"""Sample weights as in scikit-learn: weight 0 removes a row, weight k counts it k times, equal
weights are no weights, and bad weights get one clear error."""

import doctest

import numpy as np
import pandas as pd
import pytest
import sympy
from sklearn.metrics import r2_score
from sklearn.utils import estimator_checks

import nalu_sr.weights as weights_module
from nalu_sr import NaluRegressor
from nalu_sr.data import TRAIN
from nalu_sr.datasets import load_suite_entry
from nalu_sr.errors import InputError, WeightError
from nalu_sr.search import TrainingSettings, find_formula
from nalu_sr.search.engine import Job, run_job
from nalu_sr.search.space import build_feature_table
from nalu_sr.search.stacks import Space, architectures
from nalu_sr.symbolic import feature_symbols
from nalu_sr.weights import merge_weighted_rows

# Small searches. Fits compared with each other get a budget they never reach (they stop at
# the first stage with a formula that holds), so that no stage is cut short in one of them.
PRODUCT = dict(max_time=60, restarts=1, steps=300, scale_steps=2, architectures=("NAU", "NMU"))
SEARCH = dict(
    settings=TrainingSettings(restarts=1, steps=300, scale_steps=2),
    architectures=["NAU", "NMU"],
    max_time=60,
)
LINEAR = dict(max_time=5, restarts=1, steps=100, scale_steps=1, architectures=("NAU",))
LINE = dict(LINEAR, max_time=60)

#: scikit-learn's checks that run once ``fit`` takes ``sample_weight`` (1.9.1).
SAMPLE_WEIGHT_CHECKS = [
    "check_sample_weights_pandas_series",
    "check_sample_weights_not_an_array",
    "check_sample_weights_list",
    "check_all_zero_sample_weights_error",
    "check_sample_weights_shape",
    "check_sample_weights_not_overwritten",
    "check_sample_weight_equivalence_on_dense_data",
]


def same_candidates(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Equal tables, every number to the last bit (SymPy objects compared by their text)."""
    return a.drop(columns="sympy_format").equals(b.drop(columns="sympy_format")) and list(
        map(str, a["sympy_format"])
    ) == list(map(str, b["sympy_format"]))


@pytest.fixture(scope="module")
def ohms():
    frame = load_suite_entry("ohms_law")
    return frame[["I", "R"]], frame["V"]


@pytest.fixture(scope="module")
def with_garbage(ohms):
    """Ohm's law with 40 garbage rows (huge random targets) scattered among its rows, and
    weights that are 0 on the garbage and 1 elsewhere."""
    X, y = ohms
    rng = np.random.default_rng(3)
    garbage = pd.DataFrame({"I": rng.uniform(0, 5, 40), "R": rng.uniform(0, 500, 40)})
    frame = pd.concat([X.assign(V=y, w=1.0), garbage.assign(V=rng.uniform(-1e6, 1e6, 40), w=0.0)])
    frame = frame.sample(frac=1.0, random_state=0)
    return frame[["I", "R"]], frame["V"], frame["w"]


@pytest.mark.slow
def test_garbage_rows_of_weight_zero_leave_the_formula_as_without_them(with_garbage):
    X_all, y_all, w = with_garbage
    clean = NaluRegressor(**PRODUCT).fit(X_all[w > 0], y_all[w > 0])
    weighted = NaluRegressor(**PRODUCT).fit(X_all, y_all, sample_weight=w)
    current, resistance = sympy.symbols("I R", real=True)
    assert weighted.formula_ == current * resistance and weighted.exact_
    assert same_candidates(weighted.candidates_, clean.candidates_)
    assert weighted.result_.split.counts() == clean.result_.split.counts()


@pytest.mark.slow
def test_find_formula_with_zero_weights_equals_the_search_without_those_rows(with_garbage):
    X_all, y_all, w = with_garbage
    clean = find_formula(X_all[w > 0], y_all[w > 0], **SEARCH)
    weighted = find_formula(X_all, y_all, sample_weight=w, **SEARCH)
    assert weighted.exact and str(weighted.formula) == "I*R"
    assert same_candidates(weighted.candidates, clean.candidates)


@pytest.mark.slow
def test_unit_weights_give_the_same_candidates_as_no_weights(ohms):
    X, y = ohms
    plain = NaluRegressor(**PRODUCT).fit(X, y)
    ones = NaluRegressor(**PRODUCT).fit(X, y, sample_weight=np.ones(len(y)))
    threes = NaluRegressor(**PRODUCT).fit(X, y, sample_weight=3)
    assert same_candidates(ones.candidates_, plain.candidates_)
    assert same_candidates(threes.candidates_, plain.candidates_)


@pytest.mark.slow
def test_integer_weights_give_the_same_search_as_repeated_rows_in_any_order():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, (60, 2))
    y = 2 * X[:, 0] + 3 * X[:, 1] + rng.normal(0, 0.05, 60)
    w = rng.integers(0, 4, 60)
    repeated = NaluRegressor(**PRODUCT).fit(X.repeat(w, axis=0), y.repeat(w))
    order = rng.permutation(60)
    weighted = NaluRegressor(**PRODUCT).fit(X[order], y[order], sample_weight=w[order])
    assert same_candidates(weighted.candidates_, repeated.candidates_)
    np.testing.assert_array_equal(weighted.predict(X), repeated.predict(X))


@pytest.mark.parametrize("name", ["NMU", "NAU->NMU[2]"])
def test_a_job_trained_with_integer_weights_finds_the_structures_of_the_rows_repeated(name):
    # a*b on the even rows and a*c on the odd ones: weighing the even rows 4 times decides.
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, size=(48, 3))
    even = np.arange(48) % 2 == 0
    y = np.where(even, X[:, 0] * X[:, 1], X[:, 0] * X[:, 2])
    counts = np.where(even, 4, 1)
    symbols = feature_symbols(["a", "b", "c"])
    table = build_feature_table(X, symbols, np.arange(48))
    repeat = np.repeat(np.arange(48), counts)
    repeated_table = build_feature_table(X[repeat], symbols, np.arange(len(repeat)))
    offered = architectures(Space(table, np.arange(48), y))
    architecture = next(a for a in offered if a.name == name)
    job = Job(stage=0, architecture=architecture, transform="y", seed=0)
    settings = TrainingSettings(restarts=1, scale_steps=1, steps=400)
    weighted = run_job(job, table, y, settings, weights=counts.astype(float))
    repeated = run_job(job, repeated_table, y[repeat], settings)
    plain = run_job(job, table, y, settings)
    assert weighted.structures == repeated.structures
    assert weighted.structures != plain.structures


@pytest.fixture(scope="module")
def two_slopes():
    """y = 2x on half the rows and 3x on the other: no formula fits both, so the fitted slope
    is a weighted least-squares compromise."""
    rng = np.random.default_rng(5)
    x = rng.uniform(1, 3, 120)
    steep = np.arange(120) % 2 == 1
    return x[:, None], np.where(steep, 3 * x, 2 * x), steep


@pytest.mark.slow
def test_heavier_weights_pull_a_misfit_constant_towards_their_rows(two_slopes):
    X, y, steep = two_slopes
    fits = {}
    for heavy in (False, True):
        w = np.where(steep == heavy, 9.0, 1.0)
        model = NaluRegressor(**LINE).fit(X, y, sample_weight=w)
        assert not model.holds_
        # The chosen line is the weighted least-squares line through the train rows.
        rows, target, row_weights = merge_weighted_rows(X, y, w)
        train = model.result_.split.labels == TRAIN
        line = np.polyfit(rows[train, 0], target[train], 1, w=np.sqrt(row_weights[train]))
        np.testing.assert_allclose(model.predict(X), np.polyval(line, X[:, 0]), rtol=1e-9)
        fits[heavy] = line[0] + line[1] / 2  # the slope seen at x = 2
        assert model.score(X, y, sample_weight=w) == pytest.approx(
            r2_score(y, model.predict(X), sample_weight=w), rel=1e-12
        )
    assert fits[False] < 2.3 and fits[True] > 2.7


def test_weight_zero_rows_do_not_count_towards_a_constant_column():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(1, 2, 40), "c": np.full(40, 2.0)})
    X.loc[:9, "c"] = rng.uniform(0, 9, 10)
    w = np.r_[np.zeros(10), np.ones(30)]
    model = NaluRegressor(**LINEAR).fit(X, 3 * X["a"], sample_weight=w)
    assert model.dropped_features_ == {"c": "constant 2"}


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.r_[np.ones(39), -1.0], "negative values in 1 row (row 39"),
        (np.r_[np.nan, np.ones(39)], "NaN or infinite values in 1 row (row 0"),
        (np.r_[np.ones(38), np.inf, np.inf], "NaN or infinite values in 2 rows (rows 38, 39"),
        (np.ones(39), "39 values for the 40 rows"),
        (np.ones((40, 2)), "1-D array"),
        (np.zeros(40), "zero for every row"),
        (["heavy"] * 40, "must be numbers"),
    ],
    ids=["negative", "nan", "infinite", "length", "2-d", "all-zero", "text"],
)
def test_bad_weights_are_one_clear_error(weights, message):
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, (40, 2))
    for fit in (
        lambda: NaluRegressor(**LINEAR).fit(X, X[:, 0], sample_weight=weights),
        lambda: find_formula(X, X[:, 0], sample_weight=weights, max_time=5),
    ):
        with pytest.raises(WeightError, match=message.replace("(", r"\(")) as raised:
            fit()
        assert isinstance(raised.value, InputError) and isinstance(raised.value, ValueError)
        assert "\n" not in str(raised.value)


def test_the_callers_weights_are_left_unchanged():
    X = np.arange(24.0).reshape(12, 2)
    w = np.r_[0.0, np.arange(1.0, 12.0)]
    before = w.copy()
    merge_weighted_rows(X, X[:, 0], w)
    np.testing.assert_array_equal(w, before)


def test_repeated_rows_merge_into_one_row_carrying_their_weights():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [5.0, 6.0], [1.0, 2.0]])
    y = np.array([1.0, 2.0, 1.0, 3.0, 1.0])
    rows, target, w = merge_weighted_rows(X, y, [1, 2, 0.5, 4, 0])
    np.testing.assert_array_equal(rows, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(target, [1, 2, 3])
    np.testing.assert_array_equal(w, [1.5, 2, 4])


def test_rows_that_weigh_differently_come_out_in_one_order_whatever_order_they_came_in():
    rng = np.random.default_rng(2)
    X, y, w = rng.uniform(size=(30, 3)), rng.uniform(size=30), rng.integers(1, 5, 30)
    order = rng.permutation(30)
    shuffled = merge_weighted_rows(X[order], y[order], w[order])
    for a, b in zip(merge_weighted_rows(X, y, w), shuffled, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rows_that_weigh_the_same_keep_their_order_and_are_no_weights():
    X = np.array([[3.0], [1.0], [3.0], [2.0], [1.0], [2.0]])
    rows, target, w = merge_weighted_rows(X, 2 * X[:, 0], [2, 2, 0, 2, 0, 0])
    assert w is None
    np.testing.assert_array_equal(rows[:, 0], [3, 1, 2])
    # Each row twice is each row once with weight 2: the same rows, in the same order.
    rows, target, w = merge_weighted_rows(np.repeat(X[[0, 1, 3]], 2, axis=0), np.repeat(target, 2))
    assert w is None
    np.testing.assert_array_equal(rows[:, 0], [3, 1, 2])


def test_weights_docstring_example_runs():
    result = doctest.testmod(weights_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("check", SAMPLE_WEIGHT_CHECKS)
def test_passes_sklearns_sample_weight_check(check):
    getattr(estimator_checks, check)("NaluRegressor", NaluRegressor(**LINEAR))


@pytest.mark.slow
def test_readme_weighted_example(ohms):
    X, y = ohms
    w = np.where(X["I"] < 1, 2.0, 1.0)
    model = NaluRegressor(**PRODUCT).fit(X, y, sample_weight=w)
    assert str(model.formula_) == "I*R" and model.exact_
    assert model.score(X, y, sample_weight=w) == pytest.approx(1.0)
    result = find_formula(X, y, sample_weight=w, **SEARCH)
    assert str(result.formula) == "I*R" and result.exact
