"""Reading the user's CSV files: the needed columns, as numbers, or one clear error."""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: Separators recognised in the header line, the most frequent one wins.
DELIMITERS = (",", ";", "\t", "|")
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d+\s*")
_SHOWN_LINES = 8


class InputError(ValueError):
    """A problem with the user's input, stated in one line that says what to do."""


@dataclass
class Table:
    """The columns read from a CSV file, as float64.

    Attributes
    ----------
    X : DataFrame
        Feature columns, in the requested order.
    y : Series or None
        Target column, when one was asked for.
    dropped_lines : list of int
        File line numbers of rows dropped for missing or infinite values (``dropna``).
    """

    X: pd.DataFrame
    y: pd.Series | None
    path: Path
    dropped_lines: list[int] = field(default_factory=list)

    def dropped_message(self) -> str:
        n = len(self.dropped_lines)
        return (
            f"{self.path}: dropped {n} row{'s' if n > 1 else ''} with missing or infinite "
            f"values ({_lines(self.dropped_lines)})."
        )


def parse_names(text: str | None, option: str) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; ``None`` stays ``None``."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise InputError(f"{option} {text!r} has an empty name; write names like a,b,c.")
    return names


def read_table(
    path: Path,
    *,
    target: str | None,
    features: Sequence[str] | None,
    dropna: bool = False,
) -> Table:
    """Read ``target`` and ``features`` (default: every other column) from the CSV ``path``.

    The separator is the most frequent of ``,``, ``;``, tab and ``|`` in the header line.
    Rows whose used cells are all empty (blank lines) are skipped.

    Raises
    ------
    InputError
        For a missing, empty or undecodable file, a header without rows, duplicate, missing
        or non-numeric columns, or rows with missing or infinite values (unless ``dropna``).
    """
    header_line, header = _header(path)
    delimiter = max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","
    names = next(csv.reader([header], delimiter=delimiter, skipinitialspace=True))
    names = [name.strip() for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(
            f"{path}: column names {_quoted(duplicates)} appear more than once in the header; "
            "rename them so that every column is unique."
        )
    if len(names) < 2:
        raise InputError(
            f"{path} has a single column {names[0]!r}; separate columns with ',', ';', tab "
            "or '|' and give at least one feature and the target."
        )
    if target is not None:
        _require(path, [target], names, what="target column")
    if features is None:
        features = [name for name in names if name != target]
    else:
        _require(path, features, names, what="feature column")
        repeated = sorted({name for name in features if list(features).count(name) > 1})
        if repeated:
            raise InputError(f"--features lists {_quoted(repeated)} more than once.")
        if target in features:
            raise InputError(
                f"{target!r} is the target and cannot also be a feature; remove it from --features."
            )
    needed = [*features, *([target] if target is not None else [])]
    frame = _read(path, delimiter, needed)
    first_row_line = header_line + 1
    blank = frame.isna().all(axis=1)
    frame = frame[~blank]
    if frame.empty:
        raise InputError(f"{path} has a header but no data rows.")
    _check_numeric(path, frame, first_row_line)
    frame = frame.astype(np.float64)
    bad = ~np.isfinite(frame.to_numpy()).all(axis=1)
    dropped: list[int] = []
    if bad.any():
        lines = [int(i) + first_row_line for i in frame.index[bad]]
        if not dropna:
            raise InputError(
                f"{path}: {len(lines)} row{'s' if len(lines) > 1 else ''} with missing or "
                f"infinite values ({_lines(lines)}); fill them in, or pass --dropna to drop "
                "them."
            )
        frame, dropped = frame[~bad], lines
        if frame.empty:
            raise InputError(f"{path}: every row has a missing or infinite value.")
    frame = frame.reset_index(drop=True)
    return Table(
        X=frame[list(features)],
        y=None if target is None else frame[target],
        path=path,
        dropped_lines=dropped,
    )


def _header(path: Path) -> tuple[int, str]:
    """Line number and text of the first non-blank line."""
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path.")
    if not path.is_file():
        raise InputError(f"{path} is not a file; give the path of a CSV file.")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    return number, line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; save it as a UTF-8 CSV file.") from None
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}.") from None
    raise InputError(f"{path} is empty; it needs a header line and rows of numbers.")


def _require(path: Path, wanted: Sequence[str], names: list[str], what: str) -> None:
    for name in wanted:
        if name in names:
            continue
        hint = _suggestion(name, names)
        raise InputError(f"{path} has no {what} {name!r}; its columns are {_quoted(names)}.{hint}")


def _suggestion(name: str, names: list[str]) -> str:
    """The column the user most likely meant: the same name in another case, a name it
    abbreviates, or a similar spelling."""
    folded = {n.casefold(): n for n in reversed(names)}
    wanted = name.casefold()
    if wanted in folded:
        close = folded[wanted]
    else:
        prefixed = [n for n in names if n.casefold().startswith(wanted)]
        similar = difflib.get_close_matches(wanted, list(folded), n=1, cutoff=0.6)
        close = prefixed[0] if prefixed else folded[similar[0]] if similar else None
    return f" Did you mean {close!r}?" if close else ""


def _read(path: Path, delimiter: str, columns: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            usecols=lambda name: name.strip() in columns,
            skipinitialspace=True,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, ValueError, csv.Error) as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        raise InputError(f"{path} could not be read as CSV: {message}") from None
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame[columns]


def _check_numeric(path: Path, frame: pd.DataFrame, first_row_line: int) -> None:
    problems = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        numbers = pd.to_numeric(column, errors="coerce")
        wrong = column.notna() & numbers.isna()
        if not wrong.any():
            frame[name] = numbers
            continue
        row = wrong.idxmax()
        value = str(column[row])
        problems.append((name, int(row) + first_row_line, value))
    if not problems:
        return
    details = "; ".join(
        f"{name!r} holds {value!r} on line {line}" for name, line, value in problems
    )
    hint = ""
    if any(_DECIMAL_COMMA.fullmatch(value) for _, _, value in problems):
        hint = " Numbers with a decimal comma must be written with a point (1.5, not 1,5)."
    columns = "column" if len(problems) == 1 else "columns"
    raise InputError(
        f"{path}: {columns} {_quoted([p[0] for p in problems])} must hold numbers only "
        f"({details}).{hint}"
    )


def _lines(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:_SHOWN_LINES]))
    more = f" and {len(lines) - _SHOWN_LINES} more" if len(lines) > _SHOWN_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def table_text(frame: pd.DataFrame) -> str:
    """CSV text of ``frame`` whose floats read back exactly."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.17g", lineterminator="\n")
    return buffer.getvalue()
