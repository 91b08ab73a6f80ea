"""A fitted model's formula through every surface: generated Python (NumPy and ``math``), the
model file, and the torch module, each matching ``predict``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from nalu_sr import NaluRegressor


def assert_every_surface_matches_predict(model: NaluRegressor, frame: pd.DataFrame, folder) -> None:
    expected = model.predict(frame)
    columns = [frame[name].to_numpy() for name in model.feature_names_in_]
    for backend in ("numpy", "math"):
        namespace: dict = {}
        exec(model.to_python(backend=backend), namespace)  # the product's own output
        function = namespace["formula"]
        if backend == "numpy":
            values = function(*columns)
        else:
            values = [function(*row) for row in zip(*columns, strict=True)]
        assert np.allclose(values, expected, rtol=1e-12)
    model.save(folder / "model.json")
    loaded = NaluRegressor.load(folder / "model.json")
    assert loaded.formula_ == model.formula_
    assert np.allclose(loaded.predict(frame), expected, rtol=1e-12)
    torch_values = model.pytorch()(torch.tensor(frame.to_numpy()))
    assert np.allclose(torch_values.detach().numpy(), expected, rtol=1e-9)
