"""Telling noise from misfit: does a formula's residual still depend on the inputs?"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, SplineTransformer, StandardScaler

#: Cross-validated R^2 above which a residual is taken to be explained by the inputs.
STRUCTURE_R2 = 0.05
#: Knots of the splines along each input, and the most inputs they are fitted over.
SPLINE_KNOTS = 8
MAX_SPLINE_INPUTS = 10


def residual_structure(
    inputs: np.ndarray,
    residual: np.ndarray,
    fitted: np.ndarray | None = None,
    min_rows: int = 20,
) -> float:
    """How much of ``residual`` the inputs predict: best cross-validated R^2 of a few models.

    A ridge regression on the inputs (and their squares and products, for a few inputs) sees
    smooth trends; a nearest-neighbour regression sees any local structure in low dimensions;
    a ridge regression on cubic splines of each input sees a residual that wiggles along one
    input, as a close approximation's does (a polynomial in ``theta`` standing for
    ``1 - cos(theta)`` misses by a ripple in ``theta`` alone, which the other two blur over
    the other inputs).
    Given the formula's ``fitted`` values, a ridge regression on their square and cube (Ramsey's
    RESET test) sees curvature the formula missed in any dimension: a linear fit of ``a*b``
    over 100 inputs leaves a residual no linear model of the inputs predicts, but one that
    follows the square of the fit. The residual of the true formula on noisy data is noise,
    which none of them can predict (R^2 at or below 0); a wrong formula leaves a residual that
    is a function of the inputs. Below ``min_rows`` rows nothing is tested and 0 is returned.
    """
    n, d = inputs.shape
    if n < min_rows or not np.all(np.isfinite(residual)) or np.ptp(residual) == 0:
        return 0.0
    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    alphas = np.logspace(-3, 3, 7)
    ridge = (
        make_pipeline(PolynomialFeatures(2), StandardScaler(), RidgeCV(alphas=alphas))
        if d <= 6
        else make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
    )
    models = [(ridge, inputs)]
    if d <= 6:
        neighbours = min(10, n // 5)
        models.append((make_pipeline(StandardScaler(), KNeighborsRegressor(neighbours)), inputs))
    if d <= MAX_SPLINE_INPUTS:
        splines = SplineTransformer(n_knots=SPLINE_KNOTS, degree=3)
        models.append((make_pipeline(splines, RidgeCV(alphas=alphas)), inputs))
    if fitted is not None and np.all(np.isfinite(fitted)) and np.ptp(fitted) > 0:
        z = (fitted - fitted.mean()) / fitted.std()
        powers = np.column_stack([z, z**2, z**3])
        models.append((make_pipeline(StandardScaler(), RidgeCV(alphas=alphas)), powers))
    scores = [
        cross_val_score(model, X, residual, cv=folds, scoring="r2").mean() for model, X in models
    ]
    return float(max(scores))


def residual_is_noise(
    inputs: np.ndarray,
    residual: np.ndarray,
    fitted: np.ndarray | None = None,
    min_rows: int = 20,
) -> bool:
    """Whether nothing in ``inputs`` (or the ``fitted`` values) predicts ``residual`` (see
    :func:`residual_structure`)."""
    return residual_structure(inputs, residual, fitted, min_rows) <= STRUCTURE_R2
