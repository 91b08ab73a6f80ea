"""A table of 200,000 rows read from CSV still gives the exact formula."""

import numpy as np
import pandas as pd
import pytest
import sympy

from nalu_sr.search import TrainingSettings, find_formula

pytestmark = pytest.mark.slow

ROWS = 200_000
NAMES = [f"x{j}" for j in range(10)]
SMALL = TrainingSettings(restarts=1, scale_steps=2, steps=300)


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory):
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.uniform(1.0, 5.0, size=(ROWS, len(NAMES))), columns=NAMES)
    frame["y"] = frame["x0"] * frame["x2"] * frame["x4"]
    frame["note"] = "ignored"
    path = tmp_path_factory.mktemp("large") / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_product_with_seven_irrelevant_columns_is_found_in_200000_rows(large_csv):
    frame = pd.read_csv(large_csv, usecols=[*NAMES, "y"], dtype=np.float64, engine="c")
    assert frame.shape == (ROWS, len(NAMES) + 1)

    result = find_formula(
        frame[NAMES], frame["y"], settings=SMALL, architectures=["NAU", "NMU"], random_state=0
    )

    assert result.exact, result.message
    x0, x2, x4 = (result.symbols[j] for j in (0, 2, 4))
    assert sympy.simplify(result.formula - x0 * x2 * x4) == 0
    assert sum(result.split.counts().values()) == ROWS
    assert np.isfinite(result.candidates.loc[result.chosen, "loss_extrapolation"])
