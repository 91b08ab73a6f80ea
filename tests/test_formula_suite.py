"""The formula generator and the public formula suite built on it."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from nalu_sr.datasets import formulas, suite
from nalu_sr.datasets.formulas import (
    check_ranges,
    evaluate_formula,
    make_formula_dataset,
    parse_formula,
)
from nalu_sr.datasets.suite import (
    SUITE,
    SuiteEntry,
    list_suite,
    load_suite_entry,
    truth,
    write_suite,
    write_suite_entry,
)

SHIPPED = suite.DATA_DIR
NAMES = list_suite()


def _inside(values: np.ndarray, intervals) -> np.ndarray:
    return np.any([(values >= lo) & (values <= hi) for lo, hi in intervals], axis=0)


# --- make_formula_dataset -------------------------------------------------------------------


def test_same_int_seed_gives_the_same_table_and_other_seeds_differ():
    ranges = {"a": (0, 1), "b": [(-6, -2), (2, 6)]}
    first = make_formula_dataset("y = a*b", ranges, n_samples=50, random_state=3)
    again = make_formula_dataset("y = a*b", ranges, n_samples=50, random_state=3)
    other = make_formula_dataset("y = a*b", ranges, n_samples=50, random_state=4)
    pd.testing.assert_frame_equal(first, again)
    assert not np.array_equal(first.to_numpy(), other.to_numpy())


def test_a_generator_is_advanced_so_successive_tables_differ():
    rng = np.random.default_rng(0)
    first = make_formula_dataset("y = x", {"x": (0, 1)}, n_samples=20, random_state=rng)
    second = make_formula_dataset("y = x", {"x": (0, 1)}, n_samples=20, random_state=rng)
    assert not np.array_equal(first["x"], second["x"])


def test_target_is_the_formula_on_the_inputs_and_columns_follow_ranges():
    df = make_formula_dataset(
        "R = R1*R2/(R1 + R2)", {"R2": (1, 100), "R1": (1, 100)}, n_samples=200, random_state=0
    )
    assert list(df.columns) == ["R2", "R1", "R"]
    assert (df.dtypes == np.float64).all()
    expected = df["R1"] * df["R2"] / (df["R1"] + df["R2"])
    np.testing.assert_allclose(df["R"], expected, rtol=1e-14)
    assert df["R1"].between(1, 100).all() and df["R2"].between(1, 100).all()


def test_sympy_eq_input_is_accepted():
    x, y = sympy.symbols("x y")
    t = sympy.Symbol("t")
    df = make_formula_dataset(sympy.Eq(t, x - 2 * y), {"x": (0, 1), "y": (0, 1)}, 30, 0.0, 1)
    np.testing.assert_allclose(df["t"], df["x"] - 2 * df["y"], rtol=0, atol=1e-15)


def test_constant_and_keyword_names_are_plain_real_symbols():
    eq = parse_formula("E = lambda*pi + S*N - I")
    names = {s.name for s in eq.rhs.free_symbols}
    assert names == {"lambda", "pi", "S", "N", "I"}
    assert all(s.is_real for s in eq.rhs.free_symbols)
    assert eq.lhs.name == "E" and eq.lhs.is_real
    ranges = dict.fromkeys(["lambda", "pi", "S", "N", "I"], (1, 2))
    df = make_formula_dataset(eq, ranges, n_samples=40, random_state=0)
    expected = df["lambda"] * df["pi"] + df["S"] * df["N"] - df["I"]
    np.testing.assert_allclose(df["E"], expected, rtol=1e-14)


def test_functions_are_read_as_functions_only_when_called():
    assert parse_formula("y = sin(x)").rhs == sympy.sin(sympy.Symbol("x", real=True))
    assert parse_formula("y = 2*exp").rhs == 2 * sympy.Symbol("exp", real=True)
    assert parse_formula("y = x^2").rhs == sympy.Symbol("x", real=True) ** 2


def test_unused_ranges_become_irrelevant_columns():
    df = make_formula_dataset(
        "y = x0*x2", {f"x{i}": (-2, 2) for i in range(6)}, n_samples=100, random_state=0
    )
    assert list(df.columns) == ["x0", "x1", "x2", "x3", "x4", "x5", "y"]
    assert df[["x1", "x3", "x4", "x5"]].std().gt(0.5).all()
    np.testing.assert_array_equal(df["y"], df["x0"] * df["x2"])


def test_noise_is_gaussian_with_std_a_fraction_of_the_target_rms():
    ranges = {"a": (1, 3), "b": (1, 3)}
    clean = make_formula_dataset("y = a*b", ranges, n_samples=20_000, random_state=5)
    noisy = make_formula_dataset("y = a*b", ranges, n_samples=20_000, noise=0.1, random_state=5)
    pd.testing.assert_frame_equal(clean[["a", "b"]], noisy[["a", "b"]])
    residual = noisy["y"] - clean["y"]
    rms = np.sqrt(np.mean(clean["y"] ** 2))
    assert residual.std() / rms == pytest.approx(0.1, rel=0.03)
    assert abs(residual.mean()) < 4 * 0.1 * rms / np.sqrt(20_000)


def test_union_of_intervals_is_sampled_uniformly_over_its_length():
    ranges = {"x": [(0, 1), (10, 13)], "z": [(-6, -2), (2, 6)]}
    df = make_formula_dataset("y = x + z", ranges, n_samples=8000, random_state=0)
    assert _inside(df["x"].to_numpy(), [(0, 1), (10, 13)]).all()
    assert _inside(df["z"].to_numpy(), [(-6, -2), (2, 6)]).all()
    assert (df["x"] <= 1).mean() == pytest.approx(0.25, abs=0.03)
    assert (df["z"] < 0).mean() == pytest.approx(0.5, abs=0.03)
    assert df["z"].min() < -5.9 and df["z"].max() > 5.9


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(1e-3, 1e5, allow_nan=False)),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 2**32 - 1),
)
def test_samples_stay_inside_any_union_of_intervals(pieces, seed):
    intervals = [(low, low + width) for low, width in pieces]
    df = make_formula_dataset("y = x", {"x": intervals}, n_samples=200, random_state=seed)
    assert _inside(df["x"].to_numpy(), intervals).all()


def test_overlapping_intervals_are_merged():
    checked = check_ranges({"x": [(1, 3), (5, 6), (0, 2)], "z": (0, 1)})
    assert checked == {"x": [(0.0, 3.0), (5.0, 6.0)], "z": [(0.0, 1.0)]}


@pytest.mark.parametrize(
    ("formula", "ranges", "kwargs", "message"),
    [
        ("y = a*b", {"a": (0, 1)}, {}, "no range"),
        ("y = a", {"a": (1, 1)}, {}, "low < high"),
        ("y = a", {"a": (2, 1)}, {}, "low < high"),
        ("y = a", {"a": (0, np.inf)}, {}, "finite"),
        ("y = a", {"a": (0, 1, 2)}, {}, "list of"),
        ("y = a", {"a": "wide"}, {}, "list of"),
        ("y = a", {}, {}, "non-empty"),
        ("y = a", {"a": (0, 1), "y": (0, 1)}, {}, "target 'y'"),
        ("y = a", {"a": (0, 1)}, {"n_samples": 0}, "n_samples"),
        ("y = a", {"a": (0, 1)}, {"noise": -0.1}, "noise"),
        ("y = a", {"a": (0, 1)}, {"random_state": "seed"}, "random_state"),
        ("y = log(a)", {"a": (-2, -1)}, {}, "not finite"),
        ("a + b", {"a": (0, 1)}, {}, "exactly one '='"),
        ("y == a", {"a": (0, 1)}, {}, "exactly one '='"),
        ("2*y = a", {"a": (0, 1)}, {}, "single target"),
        ("y = y + a", {"a": (0, 1)}, {}, "right-hand side"),
        ("y = a +", {"a": (0, 1)}, {}, "cannot read"),
        ("y = foo(a)", {"a": (0, 1)}, {}, "unknown function 'foo'"),
    ],
)
def test_bad_formulas_and_ranges_raise_clear_errors(formula, ranges, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_formula_dataset(formula, ranges, **kwargs)


def test_evaluate_formula_reports_missing_columns():
    with pytest.raises(ValueError, match=r"\['b'\]"):
        evaluate_formula("y = a*b", {"a": np.ones(3)})


def test_docstring_examples_run():
    for module in (formulas, suite):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0


# --- the suite ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_suite(tmp_path_factory):
    """The whole suite written afresh with the shipped seed."""
    out = tmp_path_factory.mktemp("suite")
    write_suite(out)
    return out


def test_suite_has_the_required_entries():
    formulas_in_suite = {SUITE[name].formula for name in NAMES}
    for formula in ["y = x0 - x1", "V = I*R", "y = sin(x)", "t = x*y*z", "bmi = m/h**2"]:
        assert formula in formulas_in_suite
    assert len(NAMES) >= 22
    beyond = {name for name in NAMES if not SUITE[name].is_arithmetic}
    assert {"sine", "speed_from_components", "radioactive_decay", "malus_law"} <= beyond
    for name in beyond:
        rhs = parse_formula(SUITE[name].formula).rhs
        assert rhs.has(sympy.sin, sympy.cos, sympy.exp, sympy.log) or any(
            not p.exp.is_integer for p in rhs.atoms(sympy.Pow)
        ), name


def test_static_product_task_uses_overlapping_windows_of_25():
    a, b = truth("static_product_100").rhs.args
    first, second = set(a.free_symbols), set(b.free_symbols)
    assert len(first) == len(second) == 25 and len(first & second) == 12
    assert min(int(s.name[1:]) for s in first) == 20
    assert SUITE["static_product_100"].n_samples == 1000
    assert len(SUITE["static_product_100"].inputs) == 100


@pytest.mark.parametrize("name", NAMES)
def test_shipped_files_equal_a_fresh_generation(name, fresh_suite):
    for stem in (f"{name}.csv", f"{name}_wide.csv", f"{name}.json"):
        assert (SHIPPED / stem).read_bytes() == (fresh_suite / stem).read_bytes(), stem


def test_shipped_readme_equals_a_fresh_generation(fresh_suite):
    text = (SHIPPED / "README.md").read_text(encoding="utf-8")
    assert text == (fresh_suite / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in text for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_targets_equal_the_truth_on_the_stored_inputs(name):
    eq = truth(name)
    for wide in (False, True):
        df = load_suite_entry(name, wide=wide)
        assert list(df.columns) == [*SUITE[name].inputs, eq.lhs.name]
        scale = np.sqrt(np.mean(df[eq.lhs.name] ** 2))
        np.testing.assert_allclose(
            df[eq.lhs.name], evaluate_formula(eq, df), rtol=1e-12, atol=1e-12 * scale
        )
        # An evaluation that does not go through NumPy: SymPy in 30-digit arithmetic.
        for row in df.head(3).itertuples(index=False):
            values = dict(zip(df.columns, row))
            exact = eq.rhs.evalf(30, subs={s: values[s.name] for s in eq.rhs.free_symbols})
            assert values[eq.lhs.name] == pytest.approx(float(exact), rel=1e-12, abs=1e-12 * scale)


@pytest.mark.parametrize("name", NAMES)
def test_tables_stay_in_their_ranges_and_wide_tables_reach_beyond_training(name):
    entry = SUITE[name]
    train_ranges, wide_ranges = check_ranges(entry.ranges), check_ranges(entry.wide_ranges)
    train = load_suite_entry(name)
    wide = load_suite_entry(name, wide=True)
    assert len(train) == entry.n_samples and len(wide) == entry.n_wide_samples
    for var in entry.inputs:
        assert _inside(train[var].to_numpy(), train_ranges[var]).all()
        assert _inside(wide[var].to_numpy(), wide_ranges[var]).all()
        assert (~_inside(wide[var].to_numpy(), train_ranges[var])).any(), var


def test_manifest_records_the_ground_truth(fresh_suite):
    manifest = json.loads((SHIPPED / "ohms_law.json").read_text())
    assert parse_formula(manifest["formula"]) == truth("ohms_law")
    assert manifest["target"] == "V" and manifest["inputs"] == ["I", "R"]
    assert manifest["ranges"] == {"I": [[0.1, 2.0]], "R": [[1.0, 100.0]]}
    assert manifest["wide_ranges"]["R"] == [[0.5, 1000.0]]
    assert manifest["seed"] == suite.DEFAULT_SEED and manifest["noise"] == 0.0
    assert manifest["n_samples"] == 500


def test_load_generates_the_shipped_table_when_no_file_is_there(tmp_path, monkeypatch):
    shipped = load_suite_entry("parallel_resistors", wide=True)
    monkeypatch.setattr(suite, "DATA_DIR", tmp_path)
    generated = load_suite_entry("parallel_resistors", wide=True)
    pd.testing.assert_frame_equal(generated, shipped, check_exact=True)


def test_load_from_an_explicit_folder_without_the_file_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="write_suite_entry"):
        load_suite_entry("ohms_law", directory=tmp_path)


@pytest.mark.parametrize("call", [truth, load_suite_entry, lambda n: write_suite_entry(n, ".")])
def test_unknown_names_suggest_the_closest_entry(call):
    with pytest.raises(ValueError, match="Did you mean 'ohms_law'.*Valid names: nac_subtract"):
        call("ohm_law")


def test_write_refuses_to_overwrite_and_leaves_files_alone(tmp_path):
    paths = write_suite_entry("average_speed", tmp_path)
    names = ["average_speed.csv", "average_speed_wide.csv", "average_speed.json"]
    assert [p.name for p in paths] == names
    before = [p.read_bytes() for p in paths]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_suite_entry("average_speed", tmp_path, random_state=1)
    assert [p.read_bytes() for p in paths] == before
    write_suite_entry("average_speed", tmp_path, random_state=1, overwrite=True)
    assert paths[0].read_bytes() != before[0]
    assert not list(tmp_path.glob("*.tmp"))


def test_write_suite_writes_nothing_when_one_file_exists(tmp_path):
    (tmp_path / "sine.json").write_text("{}")
    with pytest.raises(FileExistsError, match="sine.json"):
        write_suite(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["sine.json"]


def test_noisy_write_perturbs_training_targets_only(tmp_path):
    write_suite_entry("ohms_law", tmp_path, noise=0.05, random_state=2)
    train = load_suite_entry("ohms_law", directory=tmp_path)
    wide = load_suite_entry("ohms_law", wide=True, directory=tmp_path)
    assert not np.allclose(train["V"], train["I"] * train["R"], rtol=1e-6)
    np.testing.assert_allclose(wide["V"], wide["I"] * wide["R"], rtol=1e-15)
    assert json.loads((tmp_path / "ohms_law.json").read_text())["noise"] == 0.05


def test_command_line_writes_the_suite_and_refuses_a_second_time(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(suite, "SUITE", {name: SUITE[name] for name in ("ohms_law", "sine")})
    suite.main([str(tmp_path), "--seed", "3"])
    assert (tmp_path / "sine_wide.csv").is_file() and (tmp_path / "README.md").is_file()
    assert "wrote 7 files" in capsys.readouterr().out
    assert json.loads((tmp_path / "ohms_law.json").read_text())["seed"] == 3
    with pytest.raises(SystemExit) as exit_info:
        suite.main([str(tmp_path)])
    assert exit_info.value.code == 1
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ranges", "wide", "message"),
    [
        ({"x": (0, 1)}, {"x": (0.5, 5)}, "contain"),
        ({"x": (0, 1)}, {"x": (0, 1)}, "extend beyond"),
        ({"x": (0, 1)}, {"z": (0, 5)}, "same inputs"),
        ({"z": (0, 1)}, {"z": (0, 5)}, "no training range"),
    ],
)
def test_suite_entries_validate_their_ranges(ranges, wide, message):
    with pytest.raises(ValueError, match=message):
        SuiteEntry("bad_entry", "y = 2*x", ranges, wide, 10, "invalid on purpose")
