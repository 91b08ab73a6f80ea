import builtins
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy

from nalu_sr import NaluRegressor, __version__
from nalu_sr.datasets import load_suite_entry
from nalu_sr.files import write_text_atomic
from nalu_sr.model_file import FORMAT, FORMAT_VERSION, dumps_record, loads_record
from nalu_sr.serialization import ModelFileError

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
FIT = dict(max_time=10, restarts=1, steps=300, scale_steps=2, architectures=["NAU", "NMU"])


@pytest.fixture(scope="module")
def data():
    frame = load_suite_entry("ohms_law")
    return frame[["I", "R"]], frame["V"]


@pytest.fixture(scope="module")
def model(data):
    return NaluRegressor(**FIT).fit(*data)


@pytest.fixture
def saved(model, tmp_path):
    path = tmp_path / "model.json"
    model.save(path)
    return path


def _assert_same_model(loaded, model, X):
    assert loaded.formula_ == model.formula_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for index in model.candidates_.index:
        assert loaded.sympy(index) == model.sympy(index)
        np.testing.assert_array_equal(loaded.predict(X, index=index), model.predict(X, index=index))
    pd.testing.assert_frame_equal(loaded.candidates_, model.candidates_)
    assert loaded.get_params() == model.get_params()
    assert loaded.extrapolation_ == model.extrapolation_
    assert loaded.exact_ == model.exact_ and loaded.chosen_ == model.chosen_
    assert loaded.message_ == model.message_ and loaded.target_name_ == model.target_name_
    assert loaded.n_features_in_ == model.n_features_in_
    assert list(loaded.feature_names_in_) == list(model.feature_names_in_)
    np.testing.assert_array_equal(loaded.result_.split.labels, model.result_.split.labels)
    assert loaded.result_.jobs == model.result_.jobs


def test_json_round_trip_is_exact(model, saved, data):
    _assert_same_model(NaluRegressor.load(saved), model, data[0])


def test_loaded_model_saves_to_the_same_text(model, saved, tmp_path):
    again = tmp_path / "again.json"
    NaluRegressor.load(saved).save(again)
    assert again.read_text(encoding="utf-8") == saved.read_text(encoding="utf-8")


def test_file_is_readable_json_with_format_fields(model, saved):
    content = json.loads(saved.read_text(encoding="utf-8"))
    assert content["format"] == FORMAT and content["format_version"] == FORMAT_VERSION
    assert content["nalu_sr_version"] == __version__
    assert content["features"] == {"names": ["I", "R"], "from_dataframe": True}
    assert content["target"] == "V"
    assert content["formula"]["text"] == "I*R"
    assert content["formula"]["tree"] == {"op": "Mul", "args": [{"symbol": "I"}, {"symbol": "R"}]}
    assert content["params"]["architectures"] == ["NAU", "NMU"]
    assert len(content["candidates"]["rows"]) == len(model.candidates_)
    assert len(content["split"]["labels"]) == len(model.result_.split.labels)


def test_pickle_of_a_loaded_model_predicts_the_same(saved, data):
    loaded = NaluRegressor.load(saved)
    again = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(again.predict(data[0]), loaded.predict(data[0]))


def test_model_fitted_on_an_array_round_trips_without_feature_names(data, tmp_path):
    X, y = data
    model = NaluRegressor(**FIT).fit(X.to_numpy(), y.to_numpy())
    path = tmp_path / "array.json"
    model.save(path)
    loaded = NaluRegressor.load(path)
    assert not hasattr(loaded, "feature_names_in_")
    assert loaded.target_name_ is None
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))


def test_non_finite_losses_and_undefined_formulas_round_trip(model, data):
    table = model.candidates_.copy()
    table.loc[1, "loss_train"] = np.inf
    table.loc[1, "loss_validation"] = -np.inf
    table.loc[1, "loss_extrapolation"] = np.nan
    table.loc[2, "sympy_format"] = sympy.zoo
    table.loc[2, "formula"] = str(sympy.zoo)
    model = pickle.loads(pickle.dumps(model))
    model.result_.candidates = model.candidates_ = table
    text = dumps_record(model.to_record())
    assert '"loss_train": "inf"' in text and '"loss_extrapolation": "nan"' in text
    loaded = NaluRegressor.from_record(loads_record(text, NaluRegressor().get_params()))
    pd.testing.assert_frame_equal(loaded.candidates_, table)


def test_loading_evaluates_no_text(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a model file was evaluated as code")

    monkeypatch.setattr(sympy, "sympify", forbidden)
    monkeypatch.setattr(sympy, "parse_expr", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    assert NaluRegressor.load(saved).formula_.free_symbols


def _edited(saved, edit):
    content = json.loads(saved.read_text(encoding="utf-8"))
    edit(content)
    saved.write_text(json.dumps(content), encoding="utf-8")
    return saved


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["formula"].update(tree={"op": "__import__", "args": []}), "unknown operation"),
        (lambda c: c.update(chosen="0"), r"\$\.chosen must be int"),
        (lambda c: c.update(chosen=10_000), "not a row of the candidates table"),
        (lambda c: c.pop("split"), "has no field 'split'"),
        (lambda c: c.update(format_version=FORMAT_VERSION + 1), "upgrade nalu-sr"),
        (lambda c: c["params"].update(alpha=1.0), "unknown parameters"),
        (lambda c: c["formula"].update(tree={"symbol": "Q"}), "not features of the model"),
        (lambda c: c["candidates"]["rows"][0].update(loss_train="x"), "rows\\[0\\]\\.loss_train"),
        (lambda c: c["split"].update(labels="01x"), "digits 0, 1, 2"),
        (
            lambda c: c["formula"].update(tree={"op": "Add", "args": [{"symbol": "I"}] * 2}),
            "differs",
        ),
    ],
)
def test_malformed_field_is_a_model_file_error_naming_it(saved, edit, message):
    with pytest.raises(ModelFileError, match=message):
        NaluRegressor.load(_edited(saved, edit))


def test_truncated_file_is_a_model_file_error(saved):
    text = saved.read_text(encoding="utf-8")
    saved.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        NaluRegressor.load(saved)


def test_foreign_json_is_rejected_with_a_hint():
    with pytest.raises(ModelFileError, match="not a nalu-sr model file.*nalu-sr fit --output"):
        NaluRegressor.load(DATASETS / "ohms_law.json")


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "model.json"
    path.write_bytes(pickle.dumps({"format": FORMAT}))
    with pytest.raises(ModelFileError, match="not UTF-8"):
        NaluRegressor.load(path)


def test_save_can_refuse_to_overwrite(model, saved):
    before = saved.read_text(encoding="utf-8")
    with pytest.raises(FileExistsError, match="already exists"):
        model.save(saved, overwrite=False)
    assert saved.read_text(encoding="utf-8") == before


def test_failed_write_leaves_the_old_file_and_no_temporary(model, saved, monkeypatch):
    before = saved.read_text(encoding="utf-8")

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        model.save(saved)
    assert saved.read_text(encoding="utf-8") == before
    assert os.listdir(saved.parent) == [saved.name]


def test_writing_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_text_atomic(tmp_path / "no" / "file.json", "{}")
