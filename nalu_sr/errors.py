"""The errors nalu-sr raises for bad input, all of them ``ValueError`` subclasses.

Catching ``ValueError`` keeps working as for any scikit-learn estimator; the subclasses let a
program tell the cases apart. Every message says what is wrong, where, and what to do. The
command line prints the message on one line and exits with code 2.

``InputError``
    Any problem with the data or an option given by the user.
``CSVError``
    The file cannot be read as a table: missing, empty, not UTF-8, not compressed as its name
    says or cut short, not valid Parquet, a header without rows, rows with more fields than the
    header.
``ColumnError``
    A column is missing, unnamed, named twice, or holds something other than numbers.
``NonFiniteError``
    Cells are empty, NaN or infinite.
``TooFewRowsError``
    Fewer rows than the search needs to hold some out.
``MagnitudeError``
    Values so large or so small that squaring them leaves float64's range.
``WeightError``
    Sample weights that are negative, NaN, infinite, all zero, or not one per row.
``MissingDependencyError``
    An option needs an optional extra that is not installed (an ``ImportError``, not a
    ``ValueError``).
``ModelFileError``
    A model file is corrupted, truncated, or not a nalu-sr model (from
    :mod:`nalu_sr.serialization`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .serialization import ModelFileError


class InputError(ValueError):
    """A problem with the user's data or options, stated in one line that says what to do."""


class CSVError(InputError):
    """A file that cannot be read as a table of numbers with a header line."""


class ColumnError(InputError):
    """A column that is missing, unnamed, duplicated, or not numeric."""


class NonFiniteError(InputError):
    """Empty, NaN or infinite values where numbers are needed."""


class TooFewRowsError(InputError):
    """Fewer rows than the search needs for its train, validation and held-out parts."""


def __getattr__(name: str) -> type:
    # SymPy, which the model file format needs, takes a second to import; a CSV check does not
    # need it.
    if name == "ModelFileError":
        from .serialization import ModelFileError

        return ModelFileError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class MagnitudeError(InputError):
    """Values whose squares overflow or underflow float64, so that no error can be measured."""


class WeightError(InputError):
    """Sample weights that cannot weigh the rows: negative, not finite, all zero, or not one
    number per row."""


class MissingDependencyError(ImportError):
    """An optional extra that the requested feature needs is not installed; says which."""


__all__ = [
    "CSVError",
    "ColumnError",
    "InputError",
    "MagnitudeError",
    "MissingDependencyError",
    "ModelFileError",
    "NonFiniteError",
    "TooFewRowsError",
    "WeightError",
]
