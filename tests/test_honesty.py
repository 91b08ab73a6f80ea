"""On data that no formula of the search space explains, the tool says so: not exact, a message
saying there is no exact formula, exit code 3, and the best approximation still reported."""

import numpy as np
import pandas as pd
import pytest
import scipy.special
import sympy
from typer.testing import CliRunner

from nalu_sr import NaluRegressor
from nalu_sr.cli import app

# Every architecture, each trained briefly.
TINY = ["--restarts", "1", "--steps", "200"]
EXIT_NOT_EXACT = 3
NOISE_VERDICT = (
    "No exact formula: the best one leaves a residual that the inputs do not predict (noise), "
    "so the search stopped"
)


def _data(kind: str) -> pd.DataFrame:
    # Noise on 200 rows: on 100, a fitted 0.01*z**2 leaves a residual the noise test cannot
    # tell from noise or not, and whether the search stops is chance.
    n = 200 if kind == "noise" else 100
    rng = np.random.default_rng(0)
    x, z = rng.uniform(0.5, 3, n), rng.uniform(0.5, 3, n)
    # Products of functions, functions of sums, a Bessel function: beyond the functions of single
    # inputs and of products the search has. (The logistic 1/(1 + exp(-x*z)) was here until the
    # search learnt functions of products on 1/y, log(x + z) until it fitted exp(y), and
    # x*log(x + z) until it listed functions of sums of two inputs.)
    y = {
        "sin": np.sin(x * z) * np.cos(x),
        "bessel": scipy.special.j0(x * z),
        "noise": rng.normal(size=n),
        "log": x * np.log(x + z**2),
    }[kind]
    return pd.DataFrame({"x": x, "z": z, "y": y})


@pytest.mark.parametrize("kind", ["sin", "bessel", "noise", "log"])
@pytest.mark.slow
def test_no_exact_formula_is_said_plainly_and_the_best_approximation_kept(kind, tmp_path):
    data = _data(kind)
    path, output = tmp_path / f"{kind}.csv", tmp_path / "model.json"
    data.to_csv(path, index=False, float_format="%.17g")
    result = CliRunner().invoke(app, ["fit", str(path), "-t", "y", *TINY, "-o", str(output)])
    assert result.exit_code == EXIT_NOT_EXACT, result.output
    assert "Exact: no" in result.stdout
    # Noise ends the search as soon as the best formula leaves only noise, and says so.
    # Elsewhere the search ends its plan (x*log(x + z**2) leaves stages of wider stacks out).
    verdict = {
        "noise": NOISE_VERDICT,
        "log": "No exact formula among the stages of the search plan",
    }.get(kind, "No exact formula in the search space")
    printed = " ".join(result.stdout.split())
    assert verdict in printed and "; the best approximation has relative error" in printed
    model = NaluRegressor.load(output)
    assert model.exact_ is False
    assert not model.candidates_["exact"].any()
    assert f"Formula: y = {model.formula_}" in result.stdout
    # The best approximation is a usable formula whose error is stated, not hidden.
    assert not model.formula_.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)
    predictions = model.predict(data[["x", "z"]])
    assert np.isfinite(predictions).all()
    error = model.extrapolation_["relative_rmse"]
    # Well above the 1e-6 of an exact formula (the logarithm of a sum comes within 1%).
    assert np.isfinite(error) and error > 1e-4
    assert f"relative RMSE {error:.3g}" in result.stdout


def test_the_exit_code_for_no_exact_formula_is_documented():
    help_text = CliRunner().invoke(app, ["fit", "--help"]).stdout
    assert "3 fit: the search ended without an exact formula" in " ".join(help_text.split())


@pytest.mark.slow
def test_pure_noise_is_not_explained_by_its_inputs_in_the_library():
    data = _data("noise")
    model = NaluRegressor(restarts=1, steps=200, max_time=20).fit(data[["x", "z"]], data.y)
    assert model.exact_ is False
    assert model.message_.startswith(NOISE_VERDICT)
    # Whatever it is, the best approximation explains almost none of the noise.
    assert model.candidates_.loc[model.chosen_, "loss_validation"] > 0.5
