"""The formula-recovery benchmark: its check of a formula against the truth, and a short run."""

import importlib.util
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sympy

from nalu_sr.data import VALIDATION, Split
from nalu_sr.datasets import load_suite_entry
from nalu_sr.datasets.suite import truth

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "formula_recovery.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("formula_recovery", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def real(names):
    return sympy.symbols(names, real=True, seq=True)


def test_same_formula_accepts_equivalent_forms(bench):
    w, h = sympy.symbols("w h")  # not real: matched to the truth's symbols by name
    assert bench.same_formula(2 * (w + h), truth("rectangle_perimeter").rhs)
    assert bench.same_formula(2 * w + 2 * h, truth("rectangle_perimeter").rhs)
    x, z = real("x z")
    assert bench.same_formula((x + z) * (x - z), truth("difference_of_squares").rhs)
    r1, r2 = real("R1 R2")
    assert bench.same_formula(1 / (1 / r1 + 1 / r2), truth("parallel_resistors").rhs)
    assert bench.same_formula(2 * r1 * r2 / (2 * r1 + 2 * r2), truth("parallel_resistors").rhs)
    # A logistic written through tanh is the logistic; half the rate is not.
    k, rate, t = real("K r t")
    logistic = truth("logistic_growth").rhs
    assert bench.same_formula(k * (sympy.tanh(rate * t / 2) + 1) / 2, logistic)
    assert not bench.same_formula(k * (sympy.tanh(rate * t / 3) + 1) / 2, logistic)


def test_an_undecided_simplification_raises_instead_of_hanging(bench, monkeypatch):
    def slow(expr):
        time.sleep(5)
        return expr

    monkeypatch.setattr(bench.sympy, "simplify", slow)
    monkeypatch.setattr(bench, "SIMPLIFY_SECONDS", 0.05)
    (t,) = real("t")
    started = time.perf_counter()
    with pytest.raises(bench.CheckTimeout):
        bench.same_formula(sympy.sin(t) ** 2, 1 - sympy.cos(t) ** 2)
    assert time.perf_counter() - started < 4
    # Read as "not the truth" where a candidate is checked.
    assert not bench._truth_among([sympy.sin(t) ** 2], 1 - sympy.cos(t) ** 2, frozenset())


def test_same_formula_accepts_constants_within_one_in_a_million(bench):
    (c,) = real("C")
    assert bench.same_formula(1.8000001 * c + 32.0000001, truth("celsius_to_fahrenheit").rhs)
    m1, m2, r = real("m1 m2 r")
    found = 6.67400001e-11 * m1 * m2 / r**2
    assert bench.same_formula(found, truth("newton_gravitation").rhs)
    assert bench.same_formula(sympy.Float(3.0000000001), sympy.Integer(3))


def test_same_formula_rejects_wrong_formulas_and_constants_off_by_1e_3(bench):
    (c,) = real("C")
    celsius = truth("celsius_to_fahrenheit").rhs
    assert not bench.same_formula(1.8018 * c + 32, celsius)
    assert not bench.same_formula(sympy.Rational(9, 5) * c + 32.032, celsius)
    assert not bench.same_formula(sympy.Rational(9, 5) * c + 32 + 1e-9 * c**2, celsius)
    x0, x1 = real("x0 x1")
    assert not bench.same_formula(x0 + x1, truth("nac_subtract").rhs)
    assert not bench.same_formula(x0, truth("nac_subtract").rhs)
    assert not bench.same_formula(None, truth("nac_subtract").rhs)
    assert not bench.same_formula(sympy.zoo, truth("nac_subtract").rhs)
    r1, r2 = real("R1 R2")
    found = r1 * r2 / (r1 + r2 + sympy.Rational(1, 1000))
    assert not bench.same_formula(found, truth("parallel_resistors").rhs)


def test_same_formula_reads_roots_of_numbers_as_the_suite_s_floats(bench):
    (x,) = real("x")
    density = truth("normal_density").rhs  # written with 0.3989422804014327
    assert bench.same_formula(sympy.exp(-(x**2) / 2) / sympy.sqrt(2 * sympy.pi), density)
    assert not bench.same_formula(sympy.exp(-(x**2) / 2) * sympy.Rational(2, 5), density)


def test_same_formula_never_takes_a_polynomial_for_sine(bench):
    (x,) = real("x")
    sine = truth("sine").rhs
    assert not bench.same_formula(x - x**3 / 6 + x**5 / 120, sine)
    assert bench.same_formula(1.0000000001 * sympy.sin(x), sine)
    assert not bench.same_formula(1.001 * sympy.sin(x), sine)


def test_same_formula_compares_roots_on_the_domain_of_the_entry(bench):
    g, h = real("g h")
    truth_rhs = truth("free_fall_speed").rhs
    split = sympy.sqrt(2) * sympy.sqrt(g) * sympy.sqrt(h)
    # The same function where g and h are positive, as on the entry's ranges; not elsewhere.
    assert bench.same_formula(split, truth_rhs, positive=frozenset({"g", "h"}))
    assert not bench.same_formula(split, truth_rhs)
    assert not bench.same_formula(sympy.sqrt(2 * g * h + 1), truth_rhs, positive={"g", "h"})


def test_noisy_table_keeps_the_shipped_inputs(bench):
    shipped = load_suite_entry("ohms_law")
    noisy = bench.training_table("ohms_law", 0.01)
    pd.testing.assert_frame_equal(noisy[["I", "R"]], shipped[["I", "R"]])
    residual = (noisy["V"] - shipped["V"]).to_numpy()
    assert 0.003 < residual.std() / np.sqrt(np.mean(shipped["V"] ** 2)) < 0.03
    pd.testing.assert_frame_equal(bench.training_table("ohms_law", 0.01), noisy)


def fake_search(formula, exact, candidates):
    def find_formula(X, y, **kwargs):
        table = pd.DataFrame({"sympy_format": candidates, "architecture": "NAU", "transform": "y"})
        return SimpleNamespace(
            formula=formula,
            exact=exact,
            candidates=table,
            chosen=0 if candidates else None,
            seconds=0.5,
            timed_out=False,
            message="fake",
            # Every row a validation row.
            split=Split(np.full(len(X), VALIDATION, dtype=np.int8), np.zeros((X.shape[1], 2))),
        )

    return find_formula


def test_claiming_exact_for_a_wrong_formula_is_a_false_claim(bench, monkeypatch):
    x0, x1 = real("x0 x1")
    search = fake_search(x0 + x1, True, [x0 + x1, 2 * x0, x0 - x1])
    monkeypatch.setattr(bench, "find_formula", search)
    run = bench.run_entry("nac_subtract", 0.0, max_time=1, seed=0, n_jobs=1)
    assert run.claimed_exact and not run.recovered and run.false_claim
    assert run.truth_in_candidates
    assert run.architecture == "NAU on y"
    assert run.wide_relative_rmse > 0.1
    assert run.validation_r2 < 0.999  # x0 + x1 for x0 - x1
    assert "FALSE CLAIM" in bench.noise_table([run])
    assert bench.summary([run])["false_claims"] == ["nac_subtract"]


def test_an_entry_that_raises_is_recorded_and_the_others_still_run(bench, monkeypatch, tmp_path):
    x0, x1 = real("x0 x1")
    working = fake_search(x0 - x1, True, [x0 - x1])

    def search(X, y, **kwargs):
        if "C" in X.columns:
            raise RuntimeError("training diverged")
        return working(X, y, **kwargs)

    monkeypatch.setattr(bench, "find_formula", search)
    out = tmp_path / "recovery"
    argv = ["--entries", "celsius_to_fahrenheit", "nac_subtract", "--noise", "0"]
    assert bench.main([*argv, "--no-warm-up", "--out", str(out)]) == 0
    rows = pd.read_csv(f"{out}.csv", keep_default_na=False).set_index("entry")
    assert rows.loc["celsius_to_fahrenheit", "error"] == "RuntimeError: training diverged"
    assert not rows.loc["celsius_to_fahrenheit", "recovered"]
    assert rows.loc["nac_subtract", "recovered"] and rows.loc["nac_subtract", "error"] == ""
    assert float(rows.loc["nac_subtract", "validation_r2"]) == 1.0


@pytest.mark.slow
def test_benchmark_recovers_two_easy_entries_end_to_end(bench, tmp_path):
    out = tmp_path / "results" / "recovery"
    argv = ["--entries", "nac_subtract", "celsius_to_fahrenheit", "--noise", "0"]
    assert bench.main([*argv, "--max-time", "20", "--no-warm-up", "--out", str(out)]) == 0
    rows = pd.read_csv(f"{out}.csv", keep_default_na=False)
    assert list(rows["entry"]) == ["nac_subtract", "celsius_to_fahrenheit"]
    assert list(rows["noise"]) == [0.0, 0.0]
    assert rows["recovered"].all() and rows["claimed_exact"].all()
    assert not rows["false_claim"].any() and rows["truth_in_candidates"].all()
    assert (rows["wide_relative_rmse"] < 1e-9).all()
    assert (rows["error"] == "").all()
    report = Path(f"{out}.md").read_text(encoding="utf-8")
    assert "| nac_subtract | `x0 - x1` | `x0 - x1` | yes | yes | no | yes |" in report
    assert "exact recovery over arithmetic entries: 2/2 (100%)" in report


def test_alternatives_and_restarts_reach_the_search_settings(bench, monkeypatch, tmp_path):
    x0, x1 = real("x0 x1")
    seen = []
    working = fake_search(x0 - x1, True, [x0 - x1])

    def search(X, y, **kwargs):
        seen.append((kwargs["settings"].alternatives, kwargs["settings"].restarts))
        return working(X, y, **kwargs)

    monkeypatch.setattr(bench, "find_formula", search)
    argv = ["--entries", "nac_subtract", "--noise", "0", "--no-warm-up"]
    argv += ["--alternatives", "64", "--restarts", "3", "--out", str(tmp_path / "recovery")]
    assert bench.main(argv) == 0
    assert seen == [(64, 3)]
    report = (tmp_path / "recovery.md").read_text(encoding="utf-8")
    assert "restarts 3, alternatives per copy 64" in report
    for option in ("--alternatives", "--restarts"):
        with pytest.raises(SystemExit):
            bench.main([option, "0"])


def test_same_formula_compares_pi_constants_with_the_suite_floats(bench):
    q1, q2, eps, r = real("q1 q2 eps r")
    truth_rhs = truth("coulomb_force").rhs
    assert bench.same_formula(q1 * q2 / (4 * sympy.pi * eps * r**2), truth_rhs)
    assert not bench.same_formula(q1 * q2 / (4 * eps * r**2), truth_rhs)
