import dataclasses
import math
import pickle
import re
from unittest import SkipTest

import numpy as np
import pandas as pd
import pytest
import sympy
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import nalu_sr.estimator as estimator_module
from nalu_sr import NaluRegressor, find_formula
from nalu_sr.data import TRAIN
from nalu_sr.datasets import load_suite_entry
from nalu_sr.symbolic import feature_symbols

# Small searches: the checks fit dozens of times on random data.
FAST = dict(max_time=5, restarts=1, steps=100, scale_steps=0, architectures=("NAU", "NMU"))
LINEAR = dict(max_time=5, restarts=1, steps=100, scale_steps=1, architectures=("NAU",))
PRODUCT = dict(max_time=10, restarts=1, steps=300, scale_steps=2, architectures=("NAU", "NMU"))


@pytest.fixture(scope="module")
def ohms():
    frame = load_suite_entry("ohms_law")
    return frame[["I", "R"]], frame["V"]


@pytest.fixture(scope="module")
def ohms_model(ohms):
    X, y = ohms
    return NaluRegressor(**PRODUCT).fit(X, y)


@pytest.fixture(scope="module")
def celsius():
    train, wide = (load_suite_entry("celsius_to_fahrenheit", wide=w) for w in (False, True))
    return train[["C"]], train["F"], wide[["C"]], wide["F"]


# scikit-learn's checks, run once, one test each. NAU alone snaps to nothing on pure noise: the
# checks also run the constant fallback.
SKLEARN_CHECKS = parametrize_with_checks([NaluRegressor(**LINEAR)])


def test_the_sklearn_checks_are_the_full_suite():
    assert len(SKLEARN_CHECKS.args[1]) > 40


def test_the_sklearn_checks_include_those_of_sample_weight():
    names = {_check_name(check) for _, check in SKLEARN_CHECKS.args[1]}
    assert {
        "check_sample_weights_pandas_series",
        "check_sample_weights_shape",
        "check_sample_weights_not_overwritten",
        "check_sample_weight_equivalence_on_dense_data",
        "check_all_zero_sample_weights_error",
    } <= names


@SKLEARN_CHECKS
def test_passes_sklearn_check_without_skipping_it(estimator, check, monkeypatch):
    # With this variable set, the array-API check runs on NumPy inputs instead of skipping.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    try:
        check(estimator)
    except SkipTest as skipped:
        pytest.fail(f"{check} was skipped: {skipped}")


# With every parameter at its default the search plan ends on its own (no time cap), so the
# checks that fit more than once and compare the fits, and the one that asks for a good fit,
# see the same formula however loaded the machine is. They run again at the defaults; the
# rest (the estimator's API, its errors) does not depend on the search's settings and runs
# above only (at the defaults the whole list took a quarter of the test suite's time).
COMPARING_CHECKS = {
    "check_fit_idempotent",
    "check_supervised_y_2d",
    "check_regressors_int",
    "check_regressor_data_not_an_array",
    "check_pipeline_consistency",
    "check_sample_weight_equivalence_on_dense_data",
    "check_regressors_train",
}


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


DEFAULT_CHECKS = pytest.mark.parametrize(
    "estimator, check",
    [
        (estimator, check)
        for estimator, check in parametrize_with_checks([NaluRegressor()]).args[1]
        if _check_name(check) in COMPARING_CHECKS
    ],
    ids=SKLEARN_CHECKS.kwargs["ids"],
)


def test_the_checks_run_at_the_defaults_are_all_in_the_full_suite():
    names = {_check_name(check) for _, check in SKLEARN_CHECKS.args[1]}
    assert names >= COMPARING_CHECKS
    assert len(DEFAULT_CHECKS.args[1]) >= len(COMPARING_CHECKS)


@pytest.mark.slow
@DEFAULT_CHECKS
def test_passes_sklearn_check_with_default_settings(estimator, check, monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    try:
        check(estimator)
    except SkipTest as skipped:
        pytest.fail(f"{check} was skipped: {skipped}")


def test_init_stores_arguments_unchanged_and_validates_in_fit():
    model = NaluRegressor(restarts=0, architectures="NAU", tolerance=-1)
    assert model.get_params()["restarts"] == 0
    assert model.get_params()["architectures"] == "NAU"
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match="restarts must be an integer >= 1"):
        model.fit(X, X[:, 0])
    with pytest.raises(ValueError, match="list of names"):
        NaluRegressor(architectures="NAU").fit(X, X[:, 0])


def test_dataframe_columns_become_the_formula_symbols(ohms_model, ohms):
    X, y = ohms
    current, resistance = feature_symbols(["I", "R"])
    assert ohms_model.formula_ == current * resistance
    assert ohms_model.exact_ is True and ohms_model.holds_ is True
    assert list(ohms_model.feature_names_in_) == ["I", "R"]
    assert ohms_model.n_features_in_ == 2
    assert ohms_model.target_name_ == "V"
    assert ohms_model.score(X, y) == pytest.approx(1.0)
    assert ohms_model.extrapolation_["exact"] is True
    assert ohms_model.extrapolation_["rows"] == 100
    assert set(ohms_model.extrapolation_["fitted_ranges"]) == {"I", "R"}
    assert ohms_model.candidates_.loc[ohms_model.chosen_, "sympy_format"] == ohms_model.formula_
    assert {"formula", "complexity", "loss_validation", "exact"} <= set(ohms_model.candidates_)


def test_arrays_get_x0_x1_names_and_no_feature_names_in():
    frame = load_suite_entry("rectangle_perimeter")
    X, y = frame[["w", "h"]].to_numpy(), frame["P"].to_numpy()
    model = NaluRegressor(**LINEAR).fit(X, y)
    assert model.formula_.free_symbols == set(feature_symbols(["x0", "x1"]))
    assert model.exact_
    np.testing.assert_allclose(model.predict(X), y, rtol=1e-9)
    assert not hasattr(model, "feature_names_in_")
    assert model.target_name_ is None


def test_explicit_extrapolation_set_is_the_one_checked(celsius):
    X, y, X_wide, y_wide = celsius
    model = NaluRegressor(**LINEAR).fit(X, y, X_wide, y_wide)
    (c,) = feature_symbols(["C"])
    assert model.formula_ == sympy.Rational(9, 5) * c + 32
    assert model.extrapolation_["explicit"] is True
    assert model.extrapolation_["rows"] == len(X_wide)
    np.testing.assert_allclose(model.predict(X_wide), y_wide, rtol=1e-12)


def test_only_one_half_of_the_extrapolation_pair_is_an_error(celsius):
    X, y, X_wide, _ = celsius
    with pytest.raises(ValueError, match="both X_extrapolation and y_extrapolation"):
        NaluRegressor(**LINEAR).fit(X, y, X_wide)


def test_predict_index_evaluates_that_candidate(ohms_model, ohms):
    X, _ = ohms
    rows = X.iloc[:25]
    symbols = feature_symbols(["I", "R"])
    for index in ohms_model.candidates_.index[:5]:
        expr = ohms_model.candidates_.loc[index, "sympy_format"]
        expected = [
            float(expr.subs(dict(zip(symbols, values, strict=True))))
            for values in rows.itertuples(index=False)
        ]
        np.testing.assert_allclose(ohms_model.predict(rows, index=index), expected, rtol=1e-12)
        assert ohms_model.sympy(index) == expr


def test_unknown_candidate_index_names_the_valid_rows(ohms_model, ohms):
    last = len(ohms_model.candidates_) - 1
    with pytest.raises(IndexError, match=f"rows are 0 to {last}"):
        ohms_model.predict(ohms[0], index=last + 1)
    with pytest.raises(TypeError, match="integer row label"):
        ohms_model.sympy(index="0")


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        NaluRegressor().predict(np.ones((3, 2)))


def test_fewer_than_ten_samples_is_a_clear_error():
    X = np.arange(18.0).reshape(9, 2)
    with pytest.raises(ValueError, match="X has 9 samples; the search needs at least 10"):
        NaluRegressor(**FAST).fit(X, X[:, 0])


def test_a_max_time_too_short_for_anything_still_trains_the_first_group(celsius):
    X, y, _, _ = celsius
    model = NaluRegressor(**{**LINEAR, "max_time": 1e-12}).fit(X, y)
    assert model.result_.jobs == ["NAU on y"]
    (c,) = feature_symbols(["C"])
    assert model.formula_ == sympy.Rational(9, 5) * c + 32


def _without_candidates(monkeypatch):
    """Make the search return no candidate, as when every trained stack snaps to nothing."""
    results = []

    def search(*args, **kwargs):
        result = find_formula(*args, **kwargs)
        results.append(result)
        return dataclasses.replace(
            result, formula=None, exact=False, candidates=pd.DataFrame(), chosen=None
        )

    monkeypatch.setattr(estimator_module, "find_formula", search)
    return results


def test_no_candidate_falls_back_to_the_train_mean_flagged_not_exact(monkeypatch):
    results = _without_candidates(monkeypatch)
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    model = NaluRegressor(**LINEAR).fit(X, y)
    y_train = y[results[0].split.labels[:40] == TRAIN]
    # The search's exact constants may replace the mean by a simpler number within its noise.
    standard_error = y_train.std(ddof=1) / math.sqrt(len(y_train))
    assert model.formula_.is_number
    assert abs(float(model.formula_) - y_train.mean()) <= 3 * standard_error
    assert model.exact_ is False
    assert "constant" in model.message_
    assert list(model.candidates_["architecture"]) == ["constant"]
    np.testing.assert_allclose(model.predict(X), float(model.formula_))


def test_no_candidate_on_a_constant_target_falls_back_to_that_exact_constant(monkeypatch):
    _without_candidates(monkeypatch)
    X = np.random.default_rng(4).normal(size=(30, 2))
    model = NaluRegressor(**LINEAR).fit(X, np.full(30, 3.0))
    assert model.formula_ == 3
    assert model.exact_ is True


def test_no_validation_rows_fall_back_to_the_constant_without_any_patch():
    # Without validation rows no candidate has a validation error to be chosen by.
    X = np.random.default_rng(5).normal(size=(30, 2))
    model = NaluRegressor(**LINEAR, validation_fraction=0.0).fit(X, X[:, 0] + 1)
    assert model.result_.split.counts()["validation"] == 0
    assert "fell back to the constant" in model.message_
    assert list(model.candidates_["architecture"]) == ["constant"]
    assert model.formula_.is_number and model.exact_ is False


def test_interrupted_search_keeps_its_best_formula_and_warns(monkeypatch, celsius):
    def interrupted(*args, **kwargs):
        return dataclasses.replace(find_formula(*args, **kwargs), interrupted=True)

    monkeypatch.setattr(estimator_module, "find_formula", interrupted)
    X, y, _, _ = celsius
    with pytest.warns(UserWarning, match="interrupted"):
        model = NaluRegressor(**LINEAR).fit(X, y)
    assert model.result_.interrupted
    (c,) = feature_symbols(["C"])
    assert model.formula_ == sympy.Rational(9, 5) * c + 32


def test_interrupted_search_without_any_formula_reraises_the_interrupt(monkeypatch, celsius):
    def nothing(*args, **kwargs):
        result = find_formula(*args, **kwargs)
        return dataclasses.replace(
            result, formula=None, candidates=pd.DataFrame(), chosen=None, interrupted=True
        )

    monkeypatch.setattr(estimator_module, "find_formula", nothing)
    X, y, _, _ = celsius
    with pytest.raises(KeyboardInterrupt):
        NaluRegressor(**LINEAR).fit(X, y)


def test_progress_callback_sees_every_trained_architecture(celsius):
    X, y, _, _ = celsius
    calls = []
    model = NaluRegressor(**LINEAR).fit(X, y, progress=lambda *args: calls.append(args))
    assert calls and calls[-1][0] == len(model.result_.jobs)
    assert all(total >= done for done, total, _ in calls)


def test_progress_callback_with_a_best_parameter_gets_the_best_formula_so_far(celsius):
    X, y, _, _ = celsius
    calls = []

    def progress(done, total, description, best=None):
        calls.append((done, best))

    model = NaluRegressor(**LINEAR).fit(X, y, progress=progress)
    assert [done for done, _ in calls] == list(range(1, len(model.result_.jobs) + 1))
    assert all(isinstance(best, sympy.Expr) for _, best in calls)
    assert calls[-1][1] == model.formula_


def test_verbose_fit_outside_a_terminal_prints_plain_lines_and_the_same_formula(
    celsius, capsys, monkeypatch
):
    # Either variable would make Rich treat captured output as a terminal.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    X, y, _, _ = celsius
    quiet = NaluRegressor(**LINEAR).fit(X, y)
    assert capsys.readouterr().out == ""
    model = NaluRegressor(**LINEAR, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    lines = out.splitlines()
    total = len(model.result_.jobs)
    assert "\x1b" not in out and "\r" not in out
    assert lines[0].startswith("[1/") and lines[-1].startswith(f"[{total}/")
    assert all("trained" in line for line in lines)
    assert lines[-1].endswith(f"; best so far: {model.formula_}")
    assert model.formula_ == quiet.formula_


def test_verbose_fit_in_a_terminal_draws_a_progress_bar(celsius, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    X, y, _, _ = celsius
    model = NaluRegressor(**LINEAR, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    total = len(model.result_.jobs)
    assert "\x1b[" in out and f"trained {model.result_.jobs[-1]}" in out
    assert re.search(rf"{total}/\d+", out)
    assert f"best so far: {model.formula_}" in out
    assert model.formula_ == NaluRegressor(**LINEAR).fit(X, y).formula_


def test_pickle_round_trip_predicts_the_same(ohms_model, ohms):
    restored = pickle.loads(pickle.dumps(ohms_model))
    assert restored.formula_ == ohms_model.formula_
    np.testing.assert_array_equal(restored.predict(ohms[0]), ohms_model.predict(ohms[0]))


@pytest.mark.parametrize("index", [None, 1, 2])
def test_exported_numpy_function_reproduces_predict(ohms_model, ohms, index):
    namespace = {}
    exec(ohms_model.to_python(index, function_name="voltage"), namespace)
    X = ohms[0]
    got = namespace["voltage"](X["I"].to_numpy(), X["R"].to_numpy())
    np.testing.assert_allclose(got, ohms_model.predict(X, index=index), rtol=1e-12, atol=0)


def test_exported_math_function_reproduces_predict_row_by_row(ohms_model, ohms):
    namespace = {}
    exec(ohms_model.to_python(2, backend="math"), namespace)
    X = ohms[0].iloc[:50]
    got = [namespace["formula"](i, r) for i, r in X.itertuples(index=False)]
    np.testing.assert_allclose(got, ohms_model.predict(X, index=2), rtol=1e-12, atol=0)


def test_latex_is_sympys_latex_of_the_formula(ohms_model):
    assert ohms_model.latex() == sympy.latex(ohms_model.formula_) == "I R"
    for index in ohms_model.candidates_.index[:4]:
        assert ohms_model.latex(index) == sympy.latex(ohms_model.sympy(index))


def test_works_inside_a_pipeline(celsius):
    X, y, X_wide, y_wide = celsius
    pipeline = make_pipeline(FunctionTransformer(feature_names_out="one-to-one"), NaluRegressor())
    pipeline.set_params(naluregressor__architectures=["NAU"], naluregressor__steps=100)
    pipeline.set_params(naluregressor__restarts=1, naluregressor__scale_steps=1)
    pipeline.fit(X, y)
    np.testing.assert_allclose(pipeline.predict(X_wide), y_wide, rtol=1e-12)


def test_clone_copies_parameters_not_the_fit(ohms_model):
    copy = clone(ohms_model)
    assert copy.get_params() == ohms_model.get_params()
    assert not hasattr(copy, "formula_")


def test_grid_search_compares_settings_by_score(celsius):
    X, y, _, _ = celsius
    search = GridSearchCV(NaluRegressor(**LINEAR), {"max_power": [1, 2]}, cv=2)
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 2 and np.isfinite(scores).all()
    assert math.isclose(search.best_score_, 1.0, rel_tol=1e-9)
