"""Telling noise from misfit: does a formula's residual still depend on the inputs?"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

#: Cross-validated R^2 above which a residual is taken to be explained by the inputs.
STRUCTURE_R2 = 0.05


def residual_structure(inputs: np.ndarray, residual: np.ndarray) -> float:
    """How much of ``residual`` the inputs predict: best cross-validated R^2 of two models.

    A ridge regression on the inputs (and their squares and products, for a few inputs) sees
    smooth trends; a nearest-neighbour regression sees any local structure in low dimensions.
    The residual of the true formula on noisy data is noise, which neither can predict
    (R^2 at or below 0); a wrong formula leaves a residual that is a function of the inputs.
    """
    n, d = inputs.shape
    if n < 20 or not np.all(np.isfinite(residual)) or np.ptp(residual) == 0:
        return 0.0
    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    alphas = np.logspace(-3, 3, 7)
    ridge = (
        make_pipeline(PolynomialFeatures(2), StandardScaler(), RidgeCV(alphas=alphas))
        if d <= 6
        else make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
    )
    models = [ridge]
    if d <= 6:
        neighbours = min(10, n // 5)
        models.append(make_pipeline(StandardScaler(), KNeighborsRegressor(neighbours)))
    scores = [cross_val_score(m, inputs, residual, cv=folds, scoring="r2").mean() for m in models]
    return float(max(scores))


def residual_is_noise(inputs: np.ndarray, residual: np.ndarray) -> bool:
    """Whether nothing in ``inputs`` predicts ``residual`` (see :func:`residual_structure`)."""
    return residual_structure(inputs, residual) <= STRUCTURE_R2
