"""Checks on the user's table before a search: shape, row count, finite values, magnitudes.

Every check raises a subclass of ``ValueError`` from :mod:`nalu_sr.errors` whose message says
what is wrong, where, and what to do. Columns that carry nothing for the search (constant, or
equal to an earlier column) are not an error: :func:`informative_columns` leaves them out and
says why.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import ColumnError, MagnitudeError, NonFiniteError, TooFewRowsError, WeightError

__all__ = [
    "MAX_MAGNITUDE",
    "MIN_MAGNITUDE",
    "MIN_SAMPLES",
    "check_enough_rows",
    "check_finite",
    "check_frame",
    "check_magnitude",
    "check_sample_weight",
    "check_search_inputs",
    "describe_dropped",
    "informative_columns",
]

#: Fewest rows a search accepts: enough to hold out, validate and fit a few constants.
MIN_SAMPLES = 10

#: Largest magnitude accepted in a column, and smallest non-zero largest magnitude: errors are
#: measured on squares, which leave float64's normal range (1e-308 to 1e308) beyond these.
MAX_MAGNITUDE, MIN_MAGNITUDE = 1e150, 1e-150

#: Rows named in an error message about NaN or infinite values.
_SHOWN_ROWS = 5


def check_enough_rows(n_rows: int, what: str, *, unit: str = "sample", note: str = "") -> None:
    """Raise :class:`~nalu_sr.errors.TooFewRowsError` when ``what`` has under ``MIN_SAMPLES`` rows.

    Parameters
    ----------
    n_rows : int
        Rows of the table.
    what : str
        The table as the message names it: ``"X"``, or a file's path.
    unit : str, default="sample"
        What a row is called in the count: ``"sample"`` (scikit-learn's word, which its
        estimator checks look for) or ``"data row"`` (a CSV file's lines after the header).
    note : str, default=""
        Said right after the count, e.g. ``" left after dropping rows with missing values"``.
    """
    if n_rows >= MIN_SAMPLES:
        return
    raise TooFewRowsError(
        f"{what} has {n_rows} {unit}{'' if n_rows == 1 else 's'}{note}; the search needs at "
        f"least {MIN_SAMPLES} samples, because it holds rows out for validation and for the "
        "extrapolation check. Add rows."
    )


def check_frame(frame: pd.DataFrame, what: str) -> None:
    """Duplicate, unnamed and non-numeric columns of a DataFrame, named in one error."""
    names = [str(name) for name in frame.columns]
    blank = [position for position, name in enumerate(names) if not name.strip()]
    if blank:
        raise ColumnError(
            f"{what} has columns without a name (positions {', '.join(map(str, blank))}); "
            "name every column, since the names become the formula's symbols."
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ColumnError(
            f"{what} has columns named {', '.join(map(repr, duplicates))} more than once; "
            "rename them so that every column is unique."
        )
    wrong = []
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        if pd.api.types.is_numeric_dtype(column):
            continue
        try:
            numbers = pd.to_numeric(column, errors="coerce")
            bad = (column.notna() & numbers.isna()).to_numpy()
        except (TypeError, ValueError):
            bad = np.ones(len(column), dtype=bool)
        if bad.any():
            row = int(np.argmax(bad))
            wrong.append(f"{name!r} holds {column.iloc[row]!r} (row {row})")
    if wrong:
        raise ColumnError(
            f"{what} has columns that are not numeric: {'; '.join(wrong)}. Convert them to "
            "numbers or leave them out of X."
        )


def check_finite(values: np.ndarray | None, names: Sequence[str], what: str) -> None:
    """Raise :class:`~nalu_sr.errors.NonFiniteError` naming the columns and first rows of
    ``values`` (one column per name, or a single column) that hold NaN or infinite values.

    ``None`` or an empty array passes: there is nothing to check.
    """
    if values is None or values.size == 0 or np.isfinite(values).all():
        return
    values = values.reshape(len(values), -1)
    rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    details = []
    for j, name in enumerate(names if len(names) == values.shape[1] else range(values.shape[1])):
        found = []
        for kind, mask in (("NaN", np.isnan(values[:, j])), ("infinite", np.isinf(values[:, j]))):
            if mask.any():
                found.append(f"{int(mask.sum())} {kind} ({_rows(np.flatnonzero(mask))})")
        if found:
            details.append(f"{name!r} has {' and '.join(found)}")
    raise NonFiniteError(
        f"{what} holds NaN or infinite values in {len(rows)} row{'s' if len(rows) > 1 else ''} "
        f"({_rows(rows)}, counting from 0): {'; '.join(details)}. Drop or fill those rows "
        "first."
    )


def check_magnitude(values: np.ndarray, names: Sequence[str]) -> None:
    """Raise :class:`~nalu_sr.errors.MagnitudeError` for a column of ``values`` (2-D) whose
    largest magnitude is above ``MAX_MAGNITUDE`` or, not zero, below ``MIN_MAGNITUDE``."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return
    largest = np.abs(values).max(axis=0)
    for name, top in zip(names, largest, strict=True):
        if top > MAX_MAGNITUDE:
            raise MagnitudeError(
                f"{name!r} reaches {top:.3g}; values beyond {MAX_MAGNITUDE:.0e} overflow when "
                f"squared. Divide {name!r} by a power of ten (e.g. 1e{round(np.log10(top))}) "
                "and scale the formula back."
            )
        if 0 < top < MIN_MAGNITUDE:
            raise MagnitudeError(
                f"{name!r} is at most {top:.3g}; values below {MIN_MAGNITUDE:.0e} underflow "
                f"when squared, which would make any formula look exact. Multiply {name!r} by "
                f"a power of ten (e.g. 1e{-round(np.log10(top))}) and scale the formula back."
            )


def check_sample_weight(sample_weight, n_rows: int) -> np.ndarray | None:
    """``sample_weight`` as a float64 array of one weight per row, or None when not given.

    A single number weighs every row the same, as in scikit-learn.

    Parameters
    ----------
    sample_weight : array-like of shape (n_rows,), number or None
    n_rows : int
        Rows of the table the weights belong to.

    Returns
    -------
    ndarray of float64, shape (n_rows,), or None
        A new array: the caller's weights are never changed.

    Raises
    ------
    WeightError
        If the weights are not numbers, not one per row, NaN, infinite or negative, or all 0.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_rows, float(sample_weight))
    try:
        weights = np.array(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise WeightError(
            f"sample_weight must be numbers, one per row of X; got {type(sample_weight).__name__} "
            "that does not convert to numbers."
        ) from error
    if weights.ndim != 1:
        raise WeightError(
            f"sample_weight must be a 1-D array of one weight per row of X, shape ({n_rows},); "
            f"got shape {weights.shape}."
        )
    if weights.shape[0] != n_rows:
        raise WeightError(
            f"sample_weight has {weights.shape[0]} values for the {n_rows} rows of X; give "
            "one weight per row."
        )
    bad = np.flatnonzero(~np.isfinite(weights))
    if bad.size:
        raise WeightError(
            f"sample_weight holds NaN or infinite values in {bad.size} "
            f"{'row' if bad.size == 1 else 'rows'} ({_rows(bad)}, counting from 0); give every "
            "row a finite weight (0 leaves a row out)."
        )
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        raise WeightError(
            f"sample_weight holds negative values in {negative.size} "
            f"{'row' if negative.size == 1 else 'rows'} ({_rows(negative)}, counting from 0); "
            "weights must be 0 or more (0 leaves a row out)."
        )
    if not np.any(weights > 0):
        raise WeightError(
            "sample_weight is zero for every row, which leaves nothing to fit; give the rows "
            "to fit a positive weight."
        )
    return weights


def check_search_inputs(
    X, y, feature_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``X`` (2-D) and ``y`` (1-D) as float64 arrays with one name per column of ``X``.

    The names default to a DataFrame's columns, else ``x0``, ``x1``, ...

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, the row counts or the number of names do not match, or a value
        is NaN or infinite.
    TooFewRowsError
        If there are fewer than ``MIN_SAMPLES`` rows (see :func:`check_enough_rows`).
    """
    if isinstance(X, pd.DataFrame):
        feature_names = feature_names or [str(c) for c in X.columns]
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D table of inputs, got an array of shape {X.shape}.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; they must match.")
    if feature_names is None:
        feature_names = [f"x{j}" for j in range(X.shape[1])]
    feature_names = [str(n) for n in feature_names]
    if len(feature_names) != X.shape[1]:
        raise ValueError(f"{len(feature_names)} feature names given for {X.shape[1]} columns of X.")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite: remove or fill rows with NaN or inf first.")
    check_enough_rows(X.shape[0], "X")
    return X, y, feature_names


def informative_columns(X: np.ndarray, names: Sequence[str]) -> tuple[list[int], dict[str, str]]:
    """Columns worth searching over, and the others with the reason they are left out.

    A constant column is the same as the formula's constant term, and a column equal to an
    earlier one doubles the search space for nothing; both only slow the search down and can
    lead it to a wrong formula.
    """
    kept: list[int] = []
    dropped: dict[str, str] = {}
    for j, name in enumerate(names):
        column = X[:, j]
        if np.all(column == column[0]):
            dropped[name] = f"constant {column[0]:.6g}"
            continue
        twin = next((k for k in kept if np.array_equal(X[:, k], column)), None)
        if twin is not None:
            dropped[name] = f"same values as {names[twin]!r}"
            continue
        kept.append(j)
    if not kept:
        # The search needs one input; with none varying, it can only find a constant.
        kept.append(0)
        del dropped[names[0]]
    return kept, dropped


def describe_dropped(dropped: dict[str, str]) -> str:
    """``'c' (constant 2), 'a2' (same values as 'a')``."""
    return ", ".join(f"{name!r} ({reason})" for name, reason in dropped.items())


def _rows(rows: np.ndarray) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:_SHOWN_ROWS])
    more = ", ..." if len(rows) > _SHOWN_ROWS else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"
