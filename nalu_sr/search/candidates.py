"""From scored structures to formulas: exact constants, symbolic form, errors, selection."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import sympy

from ..data import EXTRAPOLATION, SPLIT_NAMES, TRAIN, VALIDATION
from ..scoring import raised, split_errors
from ..structure import Structure, Term
from ..symbolic import (
    complexity,
    decimal_number,
    exact_form_density,
    is_exact_form,
    rationalize_candidates,
    rival_forms,
    shortest_decimal,
    simplify_formula,
    structure_to_expr,
)
from .noise import residual_is_noise
from .space import FeatureTable
from .transforms import (
    LOG_TARGET,
    TRANSFORMS,
    apply_transform,
    invert_formula,
    invert_values,
)

#: Below this relative validation error the data is taken as noise-free.
NOISE_FREE = 1e-9

#: How much larger than on the validation rows a formula's RMSE on the held-out rows may be
#: before its error counts as growing outside the fitted ranges (as a wrong formula's does).
GROWTH = 1.5

#: Fewest probe rows on which a residual is tested before the search ends on it (see
#: :func:`leaves_noise`); with fewer, every residual counts as noise.
NOISE_TEST_ROWS = 10

#: Above this relative error a formula is an approximation, and its constants stay floats.
MISFIT = 0.05
#: Largest chance that a constant's uncertainty interval holds an exact number as simple as
#: the one chosen by coincidence, for that number to count as pinned by the data. It bounds
#: how often a measured constant is claimed to be a simple number it is not: at 0.2, a fitted
#: 8.314 +- 0.019 (1% noise) was claimed to be 25/3 whenever the noise pushed it above 8.314.
COINCIDENCE = 0.05

#: Significant digits of float constants that tell two candidates apart.
KEY_DIGITS = 10


@dataclass
class Candidate:
    """One formula with its errors on every split.

    Errors are relative RMSEs (RMSE over the RMS of the target on that split) in the
    target's own units, whatever transform the structure was trained on. ``holds``: the
    formula fits the held-out extrapolation rows within tolerance (the noise, on noisy data);
    ``exact``: it holds and the data pin every constant (see :func:`mark_exact`).
    """

    expr: sympy.Expr
    structure: Structure
    transform: str
    architecture: str
    coefficients: list[sympy.Expr]
    complexity: int
    rmse: np.ndarray
    relative_rmse: np.ndarray
    max_relative_error: np.ndarray
    probe_residual: np.ndarray | None = None
    probe_prediction: np.ndarray | None = None
    #: Constants of ``expr`` that the data do not pin to the value shown (estimates).
    estimated: tuple[sympy.Expr, ...] = ()
    holds: bool = False
    exact: bool = False

    @property
    def terms(self) -> int:
        """Terms of the structure whose constant is not 0 (the intercept not counted)."""
        return sum(1 for c in self.coefficients[1:] if c != 0)

    @property
    def key(self) -> str:
        """Identity for deduplication: the expression with float constants rounded to
        ``KEY_DIGITS`` significant digits, so that two refits differing in the last bit of a
        fitted constant are one candidate."""
        rounded = {f: sympy.Float(f, KEY_DIGITS) for f in self.expr.atoms(sympy.Float)}
        return sympy.srepr(self.expr.xreplace(rounded))


def term_values(term: Term, values: np.ndarray) -> np.ndarray:
    """A term's values over the rows of a feature table's ``values``."""
    product = np.ones(values.shape[0])
    with np.errstate(all="ignore"):
        for factor, exponent in term:
            base = sum(sign * values[:, i] for i, sign in factor)
            product = product * raised(base, exponent)
    return product


def design_matrix(structure: Structure, values: np.ndarray) -> np.ndarray:
    """Columns ``[1, term_1, ..., term_T]`` of ``structure`` over the feature table."""
    return np.column_stack([np.ones(values.shape[0]), *(term_values(t, values) for t in structure)])


def _predict(design: np.ndarray, coefficients: np.ndarray, transform: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        return invert_values(design @ coefficients, transform)


def standard_errors(design: np.ndarray, target: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Least-squares standard error of each coefficient (0 for a perfect fit).

    The covariance is computed on columns scaled to unit norm: columns of very different sizes
    (``1``, ``C``, ``C**6``) make the unscaled normal matrix so ill-conditioned that its
    pseudo-inverse drops directions the data do not pin, and the errors come out far too small
    (a fitted ``32.0153`` looked pinned to 1e-9 at 0.1% noise)."""
    n, p = design.shape
    residual = target - design @ coefficients
    if n <= p or not np.all(np.isfinite(residual)) or not np.all(np.isfinite(design)):
        return np.full(p, np.inf)
    variance = float(residual @ residual) / (n - p)
    norms = np.linalg.norm(design, axis=0)
    norms[norms == 0] = 1.0
    scaled = design / norms
    covariance = variance * np.linalg.pinv(scaled.T @ scaled) / np.outer(norms, norms)
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None))


def _refit(
    design: np.ndarray, target: np.ndarray, fixed: dict[int, float], start: np.ndarray
) -> np.ndarray:
    """Least-squares coefficients with those in ``fixed`` held at their values."""
    values = start.copy()
    for i, v in fixed.items():
        values[i] = v
    free = [i for i in range(design.shape[1]) if i not in fixed]
    if free:
        rest = target - design[:, list(fixed)] @ np.array(list(fixed.values()), dtype=float)
        with np.errstate(all="ignore"):
            solution, *_ = np.linalg.lstsq(design[:, free], rest, rcond=None)
        if np.all(np.isfinite(solution)):
            values[free] = solution
    return values


class FittedConstants(NamedTuple):
    """A formula's constants, and which of them the data leaves uncertain."""

    values: list[sympy.Expr]
    #: Positions of the constants that are estimates: floats known only to within the
    #: noise, or exact forms that a value this uncertain would hit by coincidence too often.
    estimated: tuple[int, ...]


def is_pinned(option: sympy.Expr, value: float, margin: float, tolerance: float) -> bool:
    """Whether data that determine a constant to ``value ± margin`` pin it to ``option``.

    0 (a term the data do without) always is. A float is when the margin is within
    ``tolerance`` of it (noise-free data). An exact form (``9/5``, ``32``, ``pi/2``,
    ``1/(4*pi)``) is when the interval ``value ± margin`` is narrow enough that an exact number
    as simple would fall in it by coincidence with probability at most ``COINCIDENCE`` (see
    :func:`~nalu_sr.symbolic.exact_form_density`): at 1% noise a fitted 8.309 ± 0.014 also
    lies next to ``83/10``, and so would most values near it, and a fitted 8.33 ± 0.019 next
    to ``25/3`` (2 * 0.019 * 5.3 forms as simple per unit = 0.2). Nor is it when a rival
    exact form lies within the margin too (:func:`~nalu_sr.symbolic.rival_forms`).
    """
    if option == 0:
        return True
    if isinstance(option, sympy.Float):
        return margin <= tolerance * abs(value)
    if 2 * margin * exact_form_density(option) > COINCIDENCE:
        return False
    # Two plausible exact forms within the margin (0.3989 +- 0.0014 holds 2/5 and
    # 1/sqrt(2*pi)): the data tell them apart no better than they pin either.
    return not rival_forms(value, margin, option)


def exact_coefficients(
    design: np.ndarray,
    coefficients: np.ndarray,
    y: np.ndarray,
    fit_rows: np.ndarray,
    transform: str,
    tolerance: float,
    weights: np.ndarray | None = None,
) -> FittedConstants:
    """Replace each fitted coefficient by the simplest exact number the data allows.

    Coefficients are taken in turn (intercept first). A replacement (0 first, then integers,
    small fractions, fractions times a power of pi) must lie within three standard errors of
    the value refitted with the earlier replacements held fixed (or within float rounding, for
    noise-free data), and keep the relative RMSE on ``fit_rows`` within ``tolerance`` or
    within 5% of the all-float fit. Refitting matters on noisy data: once a spurious intercept
    is set to 0, the slope it was trading off against moves back to its exact value.
    Constants with no simple exact form stay floats with the fewest significant digits within
    that margin (6.674e-11 stays, 6.67413e-11 fitted on noisy data becomes 6.674e-11 when the
    fifth digit is within its standard errors), and all constants of a formula whose relative
    error exceeds ``MISFIT`` stay full floats. Constants the data do not pin (see
    :func:`is_pinned`) are listed in ``estimated``. With row ``weights`` (one per row of
    ``y``), every fit is weighted least squares and every error a weighted RMSE.
    """
    numeric = np.array(coefficients, dtype=float)
    w = None if weights is None else weights[fit_rows]
    scale = float(np.sqrt(np.average(y[fit_rows] ** 2, weights=w))) or 1.0
    rows = fitted = design[fit_rows]
    target = apply_transform(y[fit_rows], transform)

    def error(values: np.ndarray) -> float:
        residual = y[fit_rows] - _predict(fitted, values, transform)
        return float(np.sqrt(np.average(residual**2, weights=w))) / scale

    if w is not None:
        # Weighted least squares is least squares on rows scaled by the roots of the weights.
        root = np.sqrt(w)
        with np.errstate(all="ignore"):
            rows, target = rows * root[:, None], target * root

    base = error(numeric)
    if not np.isfinite(base) or base > MISFIT:
        # A formula this far off is an approximation: exact-looking constants would flatter it.
        return _estimates(numeric)
    allowed = max(tolerance, 1.05 * base)
    magnitude = float(np.max(np.abs(numeric))) if numeric.size else 1.0
    with np.errstate(all="ignore"):
        # A change that moves the prediction by less than float rounding is no change at all.
        column_rms = np.sqrt(np.mean(rows**2, axis=0))
        rounding = 1e-9 * float(np.sqrt(np.mean(target**2))) / column_rms
    exact: dict[int, sympy.Expr] = {}
    estimated = []
    margins = np.zeros(len(numeric))
    for i in range(len(numeric)):
        fixed = {j: float(v) for j, v in exact.items()}
        with np.errstate(all="ignore"):
            current = _refit(rows, target, fixed, numeric)
        value = current[i]
        numeric = current
        margin = _margin(rows, target, fixed, current, i, rounding[i])
        margins[i] = margin
        if i == 0 and transform == LOG_TARGET:
            # log(y) = c + ...: the constant the formula for y shows is exp(c).
            options = _logarithms_of_exact_forms(value, margin, tolerance)
        else:
            # Exact forms are proposed as far out as the data's uncertainty reaches.
            rtol = min(MISFIT, max(1e-3, margin / abs(value))) if value else 1e-3
            options = rationalize_candidates(float(value), rtol=rtol, scale=magnitude)
            # An exact form is written only where the data pin it; failing one, the constant
            # keeps only the digits the data determine (8.309 known to +-0.014 is written 8.3).
            options = [
                o
                for o in options
                if not isinstance(o, sympy.Float) and is_pinned(o, value, margin, tolerance)
            ]
        if value != 0:
            options = [sympy.Integer(0), *options]
        decimal = shortest_decimal(value, margin)
        options.append(decimal_number(decimal))
        for option in options:
            if abs(float(option) - value) > margin:
                continue
            trial = _refit(rows, target, {**fixed, i: float(option)}, current)
            if error(trial) <= allowed:
                exact[i] = option
                numeric = trial
                break
        if i not in exact or not _pins(exact[i], value, margin, tolerance):
            estimated.append(i)
    final = _refit(rows, target, {j: float(v) for j, v in exact.items()}, numeric)
    if error(final) > allowed:
        return _estimates(coefficients)
    for i in estimated:
        if i not in exact:
            # No option fitted while later constants were still free (a term set to 0 after
            # it moves it): it keeps the digits its margin allows once they are set.
            fixed = {j: float(v) for j, v in exact.items()}
            margin = _margin(rows, target, fixed, final, i, rounding[i])
            decimal = decimal_number(shortest_decimal(final[i], margin))
            trial = _refit(rows, target, {**fixed, i: float(decimal)}, final)
            if error(trial) <= allowed:
                exact[i], final = decimal, trial
    values = [exact.get(i, sympy.Float(float(v))) for i, v in enumerate(final)]
    for i, j, shared in _shared_estimates(rows, target, values, estimated, margins):
        trial = [*values]
        trial[i], trial[j] = shared
        if error(np.array([float(v) for v in trial])) <= allowed:
            values = trial
    return FittedConstants(values, tuple(estimated))


def _margin(
    rows: np.ndarray,
    target: np.ndarray,
    fixed: dict[int, float],
    values: np.ndarray,
    i: int,
    rounding: float,
) -> float:
    """Three standard errors of constant ``i`` with those in ``fixed`` held, and no less than
    float rounding (``rounding`` and 1e-9 of the value)."""
    free = [j for j in range(len(values)) if j not in fixed]
    rest = target - rows[:, list(fixed)] @ np.array(list(fixed.values()), dtype=float)
    with np.errstate(all="ignore"):
        errors = 3 * standard_errors(rows[:, free], rest, values[free])
    return float(np.nanmax([errors[free.index(i)], 1e-9 * abs(values[i]), rounding]))


def _shared_estimates(
    rows: np.ndarray,
    target: np.ndarray,
    values: list[sympy.Expr],
    estimated: Sequence[int],
    margins: np.ndarray,
) -> Iterator[tuple[int, int, tuple[sympy.Expr, sympy.Expr]]]:
    """Pairs of estimated constants equal in size within their margins, with one value for
    both, fitted with the others held: noise leaves ``13.6/n1**2 - 13.5/n2**2`` where the
    data allow ``13.6*(1/n1**2 - 1/n2**2)``, and one constant is the simpler formula. The
    shared value keeps the digits its own margin determines (the better-pinned term leads).
    """
    numeric = np.array([float(v) for v in values])
    taken: set[int] = set()
    for i, j in itertools.combinations(estimated, 2):
        if i in taken or j in taken or numeric[i] == 0 or numeric[j] == 0:
            continue
        if abs(abs(numeric[i]) - abs(numeric[j])) > max(margins[i], margins[j]):
            continue
        sign = float(np.sign(numeric[i] * numeric[j]))
        column = rows[:, i] + sign * rows[:, j]
        others = [k for k in range(len(numeric)) if k not in (i, j)]
        rest = target - rows[:, others] @ numeric[others]
        with np.errstate(all="ignore"):
            value = float(column @ rest / (column @ column))
            error = 3 * float(standard_errors(column[:, None], rest, np.array([value]))[0])
        if not (np.isfinite(value) and np.isfinite(error)) or value == 0:
            continue
        decimal = shortest_decimal(value, max(error, 1e-9 * abs(value)))
        taken |= {i, j}
        yield i, j, (decimal_number(decimal), decimal_number(sign * decimal))


def _logarithms_of_exact_forms(value: float, margin: float, tolerance: float) -> list[sympy.Expr]:
    """``log(r)`` for the exact forms ``r`` near ``exp(value)`` that the data pin.

    A margin ``m`` on a logarithm is a relative margin of about ``m`` on the number itself,
    so the coincidence bound is applied to ``exp(value)`` known to ``exp(value) * m``: a
    fitted ``-0.9189`` is ``log(1/sqrt(2*pi))`` where the data pin ``0.3989`` that closely.
    """
    with np.errstate(over="ignore"):
        number = float(np.exp(value))
    if not np.isfinite(number) or number == 0:
        return []
    rtol = min(MISFIT, max(1e-3, margin))
    forms = rationalize_candidates(number, rtol=rtol)
    logarithms = [sympy.log(f) for f in forms if not isinstance(f, sympy.Float) and f > 0]
    return [option for option in logarithms if _pins(option, value, margin, tolerance)]


def _pins(option: sympy.Expr, value: float, margin: float, tolerance: float) -> bool:
    """:func:`is_pinned` for a constant that may also be the logarithm of an exact form."""
    # A logarithm of a form (log(1/2) is written -log(2), log(2/e) stays as it is) is judged
    # by its exponential, the number it names; a form that holds a logarithm (1/log(10)) is
    # judged as it is.
    if option.has(sympy.log) and not is_exact_form(option):
        exponential = sympy.exp(option)
        with np.errstate(over="ignore"):
            number = float(np.exp(value))
        if not np.isfinite(number):
            return False
        return is_pinned(exponential, number, number * margin, tolerance)
    return is_pinned(option, value, margin, tolerance)


def _estimates(coefficients: np.ndarray) -> FittedConstants:
    """Every constant a full float, and none of them pinned."""
    values = [sympy.Float(float(c)) for c in coefficients]
    return FittedConstants(values, tuple(range(len(values))))


def _simplify_where_positive(expr: sympy.Expr, table: FeatureTable, rows: np.ndarray) -> sympy.Expr:
    """:func:`simplify_formula` of ``expr``, taking the inputs that are positive on every one
    of ``rows`` as positive: the root of a structure fitted to ``y**2`` is ``x**(3/2)*z``, not
    ``sqrt(x**3)*Abs(z)``, where ``x`` and ``z`` are positive on the rows it was fitted on."""
    swap = {}
    for j in table.inputs:
        symbol = table.expressions[j]
        if symbol in expr.free_symbols and np.all(table.values[rows, j] > 0):
            swap[symbol] = sympy.Dummy(str(symbol), positive=True)
    if not swap:
        return simplify_formula(expr)
    simplified = simplify_formula(expr.subs(swap))
    simplified = simplified.subs({dummy: symbol for symbol, dummy in swap.items()})
    if simplified.free_symbols <= set(swap):
        # Positive symbols split roots of products, sqrt(2*g*h) into sqrt(2)*sqrt(g)*sqrt(h);
        # with every symbol positive on the rows, they are joined again where that is shorter.
        joined = sympy.powsimp(simplified, force=True)
        if complexity(joined) < complexity(simplified):
            simplified = joined
    return simplified


def build_candidate(
    structure: Structure,
    coefficients: np.ndarray,
    *,
    table: FeatureTable,
    y: np.ndarray,
    labels: np.ndarray,
    transform: str,
    architecture: str,
    tolerance: float,
    probe_rows: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> Candidate:
    """The formula of a scored structure with exact constants, and its errors.

    ``probe_rows`` (a sample of the fitted rows) keep the residual and the prediction there,
    for telling noise from misfit in :func:`mark_exact`. Row ``weights`` (one per row of
    ``y``) weigh the constants' fit and every error.
    """
    design = design_matrix(structure, table.values)
    fit_rows = labels == TRAIN
    exact, estimated = exact_coefficients(
        design, coefficients, y, fit_rows, transform, tolerance, weights
    )
    expr = structure_to_expr(structure, exact, table.expressions)
    if transform != "y":
        inverted = invert_formula(expr, transform)
        if TRANSFORMS[transform].arithmetic:
            expr = simplify_formula(inverted)
        else:
            expr = _simplify_where_positive(inverted, table, fit_rows)
    prediction = _predict(design, np.array([float(c) for c in exact]), transform)
    # Measured as the scoring backends measure the structures: on a split where y is all 0,
    # only an exact prediction has a finite relative error (0).
    rmse, relative, worst = split_errors(prediction, y, labels, weights)
    residual = None if probe_rows is None else y[probe_rows] - prediction[probe_rows]
    if residual is not None and weights is not None:
        # Each residual in units of its row's noise (weights as inverse variances), so that
        # rows known less precisely do not read as structure.
        probe_weights = weights[probe_rows]
        residual = residual * np.sqrt(probe_weights / probe_weights.mean())
    return Candidate(
        expr=expr,
        structure=structure,
        transform=transform,
        architecture=architecture,
        coefficients=exact,
        complexity=complexity(expr),
        rmse=rmse,
        relative_rmse=relative,
        max_relative_error=worst,
        probe_residual=residual,
        probe_prediction=None if probe_rows is None else prediction[probe_rows],
        estimated=tuple(exact[i] for i in estimated if exact[i] != 0),
    )


def mark_exact(
    candidates: list[Candidate], tolerance: float, probe_inputs: np.ndarray | None = None
) -> float:
    """Flag the candidates that hold on the held-out rows, and those that are exact; return
    the tolerance used.

    Noise-free data (some candidate fits the validation rows within ``tolerance``): a candidate
    holds when its relative RMSE is within ``tolerance`` on validation and extrapolation
    rows and, where that RMSE is above ``NOISE_FREE`` (data rounded to a few digits, or a
    close approximation) and ``probe_inputs`` are given, its residual there is noise.
    Noisy data: the tolerance comes from the residual of the best candidate on the
    validation rows; a candidate holds when it matches that residual on validation rows
    and its RMSE on the extrapolation rows is no more than 1.5 times its validation RMSE, i.e.
    its error does not grow outside the fitted ranges, as a wrong formula's does, and, given
    ``probe_inputs``, when its residual there is noise that the inputs cannot predict.
    A candidate is exact when it holds and none of its constants is an estimate: noise
    leaves ``8.31`` in ``8.31*T*n/V`` uncertain in its third digit, so that formula holds but
    is not claimed exact, while ``9*C/5 + 32`` on the same data can be.
    """
    finite = [c for c in candidates if np.isfinite(c.relative_rmse[VALIDATION])]
    if not finite:
        return tolerance
    best = min(c.relative_rmse[VALIDATION] for c in finite)
    noisy = best > NOISE_FREE and best > tolerance
    used = max(tolerance, 1.2 * best) if noisy else tolerance
    for c in candidates:
        val, extra = c.relative_rmse[VALIDATION], c.relative_rmse[EXTRAPOLATION]
        if not (np.isfinite(val) and val <= used) or np.isnan(extra):
            c.holds = False
        elif noisy:
            c.holds = bool(_error_stays(c) and val <= 0.05)
            if c.holds and probe_inputs is not None and c.probe_residual is not None:
                c.holds = residual_is_noise(probe_inputs, c.probe_residual, c.probe_prediction)
        else:
            c.holds = bool(
                extra <= tolerance and c.max_relative_error[EXTRAPOLATION] <= 1e3 * tolerance
            )
            # Within the tolerance but above float precision: rounded data leave a residual
            # that is noise, a close approximation one that follows the inputs (a polynomial
            # in T standing for 1/T over [250, 350] fits to 1e-8 with every constant pinned).
            tested = c.probe_residual is not None and probe_inputs is not None
            if c.holds and val > NOISE_FREE and tested:
                c.holds = residual_is_noise(probe_inputs, c.probe_residual, c.probe_prediction)
        c.exact = c.holds and not c.estimated
    return used


def _error_stays(candidate: Candidate) -> bool:
    """Whether ``candidate``'s RMSE on the held-out rows is within ``GROWTH`` times its RMSE on
    the validation rows."""
    return bool(candidate.rmse[EXTRAPOLATION] <= GROWTH * candidate.rmse[VALIDATION])


#: Most terms of a formula whose fit ends the search on noisy data (see :func:`leaves_noise`
#: and :meth:`~nalu_sr.search.runner.Scoring.found`): a sparse ratio with more can bend to fit
#: within 0.1% noise (four monomials in ``n2`` for ``-13.6/n2**2``); it is kept, and chosen at
#: the end if nothing simpler holds.
STOP_TERMS = 3


def leaves_noise(candidates: list[Candidate], tolerance: float, probe_inputs: np.ndarray) -> bool:
    """Whether the best of the candidates whose error does not grow on the held-out rows
    leaves a residual that is only noise.

    When the formula with the lowest validation loss among those whose error does not grow on
    the held-out rows misses the target (by more than ``tolerance``) by a residual that
    nothing in the inputs predicts, the data show nothing more to find: wider stacks could
    only fit the noise. That is pure noise, or a formula found up to noise above the level
    under which :func:`mark_exact` lets a formula hold. On noise-free data a formula that
    misses leaves a residual that is a function of the inputs, so it does not end the search;
    on fewer than ``NOISE_TEST_ROWS`` probe rows nothing can be told and every residual counts
    as noise. Only formulas of at most :data:`STOP_TERMS` terms count: a longer sum can bend
    to leave noise where a later stage may still find the formula.
    """
    steady = [
        c
        for c in candidates
        if np.isfinite(c.rmse[VALIDATION])
        and c.probe_residual is not None
        and _error_stays(c)
        and c.terms <= STOP_TERMS
    ]
    if not steady:
        return False
    best = min(steady, key=lambda c: (c.relative_rmse[VALIDATION], c.key))
    if best.relative_rmse[VALIDATION] <= max(NOISE_FREE, tolerance):
        return False
    return residual_is_noise(
        probe_inputs, best.probe_residual, best.probe_prediction, min_rows=NOISE_TEST_ROWS
    )


def pareto_scores(complexities: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """PySR's score: ``-d ln(loss) / d complexity`` along the Pareto front, 0 off it."""
    scores = np.zeros(len(losses))
    order = np.lexsort((losses, complexities))
    best_loss, best_complexity = np.inf, None
    floor = np.finfo(float).tiny
    for i in order:
        loss = max(float(losses[i]), floor)
        if not np.isfinite(loss) or loss >= best_loss:
            continue
        if best_complexity is not None and complexities[i] > best_complexity:
            scores[i] = -np.log(loss / best_loss) / (complexities[i] - best_complexity)
        best_loss, best_complexity = loss, complexities[i]
    return scores


def candidates_table(candidates: list[Candidate]) -> pd.DataFrame:
    """One row per candidate, simplest first, in the spirit of PySR's ``equations_``."""
    complexities = np.array([c.complexity for c in candidates])
    losses = np.array([c.relative_rmse[VALIDATION] for c in candidates])
    rows = []
    for c, score in zip(candidates, pareto_scores(complexities, losses), strict=True):
        row = {"formula": str(c.expr), "complexity": c.complexity}
        for part, name in enumerate(SPLIT_NAMES):
            row[f"loss_{name}"] = c.relative_rmse[part]
        row["max_error_extrapolation"] = c.max_relative_error[EXTRAPOLATION]
        row.update(
            holds=c.holds,
            exact=c.exact,
            score=score,
            architecture=c.architecture,
            transform=c.transform,
            sympy_format=c.expr,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame) -> int | None:
    """Row of the chosen formula: the exact one with the fewest decimal constants, then the
    simplest (``2*pi*sqrt(m/k)`` before ``6.28318531717396*m**0.5/k**0.500000001``, which a
    fit on ``log(y)`` leaves and which holds as well); else the simplest that holds (with
    estimated constants); else PySR's ``"best"`` trade-off."""
    if table.empty:
        return None
    exact = table[table["exact"]] if "exact" in table else table.iloc[:0]
    if not exact.empty:
        floats = exact["sympy_format"].map(lambda e: len(sympy.sympify(e).atoms(sympy.Float)))
        order = exact.assign(floats=floats).sort_values(["floats", "complexity", "loss_validation"])
        return int(order.index[0])
    found = table[table["holds"]] if "holds" in table else table.iloc[:0]
    if not found.empty:
        return int(found.sort_values(["complexity", "loss_validation"]).index[0])
    finite = table[np.isfinite(table["loss_validation"])]
    if finite.empty:
        return None
    threshold = 1.5 * finite["loss_validation"].min()
    good = finite[finite["loss_validation"] <= threshold]
    return int(good.sort_values(["score", "complexity"], ascending=[False, True]).index[0])
