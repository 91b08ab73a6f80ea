"""Scoring packed candidates: fit their coefficients and measure their error on every split."""

from __future__ import annotations

import numpy as np

from .backends import load_backend
from .packing import PackedCandidates
from .rows import TRAIN, SplitRows, group_rows
from .scores import Scores, scores_from_sums


def score(
    packed: PackedCandidates,
    features: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    *,
    coefficients: np.ndarray | None = None,
    fit_intercept: bool | np.ndarray = True,
    backend: str = "auto",
    weights: np.ndarray | None = None,
) -> Scores:
    """Fit and score every candidate on the train, validation and extrapolation rows.

    Candidate ``c`` with terms ``term_1 .. term_T`` predicts ``c0 + sum_t c_t * term_t``. Without
    ``coefficients``, ``c`` is fitted by least squares on the train rows alone; a term that is
    zero on every train row or linearly dependent on the intercept and the terms before it gets
    coefficient 0 (see :func:`~nalu_sr.scoring.normal_equations.solve_normal_equations`).

    Parameters
    ----------
    packed : PackedCandidates
        The candidates, from :func:`~nalu_sr.scoring.pack`.
    features : ndarray of shape (n_rows, n_features)
        The feature table the structures index: inputs, reciprocals, the constant 1, as the
        caller built it. Non-finite values are allowed; they make the candidates that read them
        score +inf.
    y : ndarray of shape (n_rows,)
        Finite targets.
    split : ndarray of int8, shape (n_rows,)
        0 (train), 1 (validation) or 2 (extrapolation) per row; any split may be empty, but
        fitting needs train rows.
    coefficients : ndarray of shape (n_candidates, max_terms + 1), optional
        ``c0, c1, ...`` per candidate, NaN-padded past its terms, used as they are instead of
        fitting. A NaN within a candidate's terms makes it score +inf.
    fit_intercept : bool or ndarray of bool, shape (n_candidates,), default True
        Whether to fit ``c0`` (for all candidates, or per candidate); when False, ``c0 = 0``.
        Ignored when ``coefficients`` are given.
    backend : {"auto", "numba", "numpy", "torch"}, default "auto"
        ``"auto"`` uses Numba when it can be imported and NumPy otherwise. The results of
        ``"numba"`` and ``"numpy"`` agree to rounding; ``"torch"`` (the snapped networks run as
        dense layers) agrees to about 1e-9.
    weights : ndarray of shape (n_rows,), optional
        Finite, non-negative row weights: the fit is weighted least squares and every error a
        weighted mean (see :class:`~nalu_sr.scoring.Scores`); a row of weight 2 counts as that
        row twice.

    Returns
    -------
    Scores
        The coefficients and, per split, the RMSE, the relative RMSE and the largest relative
        error (definitions in :class:`~nalu_sr.scoring.Scores`).

    Examples
    --------
    >>> import numpy as np
    >>> from nalu_sr.scoring import pack, score
    >>> x = np.linspace(1.0, 4.0, 30)
    >>> features = np.column_stack([x, 1.0 / x, np.ones_like(x)])
    >>> split = np.repeat(np.array([0, 1, 2], dtype=np.int8), 10)
    >>> line = (((((0, 1),), 1),),)  # one term: the feature x
    >>> result = score(pack([line]), features, 3 + 2 * x, split, backend="numpy")
    >>> np.round(result.coefficients, 10).tolist()
    [[3.0, 2.0]]
    """
    return score_rows(
        packed,
        group_rows(features, y, split, weights),
        coefficients=coefficients,
        fit_intercept=fit_intercept,
        backend=backend,
    )


def score_rows(
    packed: PackedCandidates,
    rows: SplitRows,
    *,
    coefficients: np.ndarray | None = None,
    fit_intercept: bool | np.ndarray = True,
    backend: str = "auto",
) -> Scores:
    """:func:`score` on a row table already regrouped by :func:`~nalu_sr.scoring.rows.group_rows`.

    Regrouping copies the whole table; a caller that scores many packs against one large
    table regroups it once and calls this.
    """
    name, module = load_backend(backend)
    needed = packed.n_features_required
    if needed > rows.features.shape[0]:
        raise ValueError(
            f"the candidates read feature column {needed - 1}, but features has only "
            f"{rows.features.shape[0]} columns; pass the feature table the structures were "
            "built for."
        )
    n = packed.n_candidates
    width = packed.max_terms + 1
    padding = np.arange(width) > packed.n_terms[:, None]
    fit = coefficients is None
    if fit:
        if rows.counts[TRAIN] == 0:
            raise ValueError(
                "no train rows (split == 0) to fit the coefficients on; mark some rows as "
                "train or pass coefficients."
            )
        coefficients = np.zeros((n, width))
        intercept = np.asarray(fit_intercept, dtype=np.bool_)
        if intercept.shape not in ((), (n,)):
            raise ValueError(
                f"fit_intercept must be a bool or one bool per candidate ({n}); "
                f"got shape {intercept.shape}."
            )
        intercept = np.broadcast_to(intercept, (n,)).copy()
    else:
        coefficients = np.array(coefficients, dtype=np.float64, order="C")
        if coefficients.shape != (n, width):
            raise ValueError(
                f"coefficients must have shape (n_candidates, max_terms + 1) = {(n, width)}; "
                f"got {coefficients.shape}."
            )
        coefficients[padding] = 0.0
        intercept = np.ones(n, dtype=np.bool_)
    square_sum, max_abs = module.residual_sums(packed, rows, coefficients, fit, intercept)
    coefficients[padding] = np.nan
    return scores_from_sums(coefficients, square_sum, max_abs, rows, name)
