"""Reading the user's tables: the needed columns, as numbers, or one clear error.

CSV and TSV files, plain or compressed, and Parquet files (:mod:`.table_formats` tells them
apart by name) go through the same checks. A text file's problems are placed by line number, a
Parquet file's, which has no lines, by row number.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from ..errors import ColumnError, CSVError, InputError, NonFiniteError
from .table_formats import TableFormat, open_text, read_errors, read_parquet, table_format

#: Separators recognised in the header line, the most frequent one wins.
DELIMITERS = (",", ";", "\t", "|")
#: Cell texts read as NaN (compared case-insensitively), as pandas and spreadsheets write it.
NAN_TEXTS = frozenset(
    {"nan", "-nan", "+nan", "na", "n/a", "#n/a", "#na", "null", "none", "<na>", "1.#ind",
     "-1.#ind", "1.#qnan", "-1.#qnan"}
)  # fmt: skip
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d+\s*")
_QUOTED = re.compile(r'"[^"]*"')
_FIELD_COUNT = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_SHOWN_LINES = 8
_SHOWN_PER_KIND = 3

__all__ = ["InputError", "Table", "parse_names", "read_table"]


@dataclass
class Table:
    """The columns read from a table file, as float64.

    Attributes
    ----------
    X : DataFrame
        Feature columns, in the requested order.
    y : Series or None
        Target column, when one was asked for.
    path : Path
        The file read.
    dropped_lines : list of int
        Line numbers (``unit``) of rows dropped for missing or infinite values (``dropna``).
    lines : list of int
        Line number (``unit``) of each row of ``X``.
    unit : str
        ``"line"`` for text files; ``"row"`` for Parquet files, whose numbers count rows from 1.
    """

    X: pd.DataFrame
    y: pd.Series | None
    path: Path
    dropped_lines: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    unit: str = "line"

    def dropped_message(self) -> str:
        n = len(self.dropped_lines)
        return (
            f"{self.path}: dropped {n} row{'s' if n > 1 else ''} with missing or infinite "
            f"values ({_lines(self.dropped_lines, self.unit)})."
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
    """Read ``target`` and ``features`` (default: every other column) from the table ``path``.

    The format follows the end of the name (:func:`~.table_formats.table_format`): ``.parquet``
    is Parquet, ``.tsv`` tab-separated text, anything else text whose separator is the most
    frequent of ``,``, ``;``, tab and ``|`` in the header line (outside quotes); ``.gz``,
    ``.bz2``, ``.xz`` or ``.zip`` after a text file's name decompresses it. Column names are
    stripped of surrounding spaces; a column with an empty name and no values (a separator at
    the end of every line) is ignored. In text files, rows whose used cells are all empty (blank
    lines) are skipped. Text cells are read as numbers exactly as Python's ``float`` reads them;
    ``nan``, ``NA``, ``null`` and similar texts count as missing, as do Parquet's nulls.

    Raises
    ------
    CSVError
        For a missing, empty, undecodable or corrupt file, a header without rows, a single
        column, or a row with more fields than the header.
    ColumnError
        For duplicate, unnamed, missing or non-numeric columns.
    NonFiniteError
        For empty, NaN or infinite cells in the used columns (unless ``dropna``).
    MissingDependencyError
        For a Parquet file without pyarrow installed.
    """
    path = Path(path)
    if not path.exists():
        raise CSVError(f"{path} does not exist; check the path.")
    if not path.is_file():
        raise CSVError(f"{path} is not a file; give the path of a CSV file.")
    fmt = table_format(path)
    unit = "row" if fmt.parquet else "line"
    frame = _named_columns(path, read_parquet(path) if fmt.parquet else _read_text(path, fmt), unit)
    names = list(frame.columns)
    if len(names) < 2:
        raise CSVError(_too_few_columns(path, fmt, names))
    target = None if target is None else target.strip()
    if target is not None:
        _require(path, [target], names, what="target column", header=not fmt.parquet)
    if features is None:
        features = [name for name in names if name != target]
    else:
        features = [name.strip() for name in features]
        _require(path, features, names, what="feature column", header=not fmt.parquet)
        repeated = sorted({name for name in features if features.count(name) > 1})
        if repeated:
            raise ColumnError(f"--features lists {_quoted(repeated)} more than once.")
        if target in features:
            raise ColumnError(
                f"{target!r} is the target and cannot also be a feature; remove it from --features."
            )
    needed = [*features, *([target] if target is not None else [])]
    numbers, empty = _numbers(path, frame[needed], unit)
    if not fmt.parquet:
        filled = ~empty.all(axis=1)
        numbers, empty = numbers[filled], empty[filled]
    if numbers.empty:
        raise CSVError(
            f"{path} has columns but no rows; it needs rows of numbers."
            if fmt.parquet
            else f"{path} has a header but no data rows; add rows of numbers below it."
        )
    bad = ~np.isfinite(numbers.to_numpy()).all(axis=1)
    dropped: list[int] = []
    if bad.any():
        places = [int(i) for i in numbers.index[bad]]
        if not dropna:
            cells = _non_finite_cells(numbers, empty, unit)
            raise NonFiniteError(
                f"{path}: {len(places)} row{'s' if len(places) > 1 else ''} with missing or "
                f"infinite values ({_lines(places, unit)}): {cells}; fill them in, or pass "
                "--dropna to drop those rows."
            )
        numbers, dropped = numbers[~bad], places
        if numbers.empty:
            raise NonFiniteError(f"{path}: every row has a missing or infinite value.")
    lines = [int(i) for i in numbers.index]
    numbers = numbers.reset_index(drop=True)
    return Table(
        X=numbers[features],
        y=None if target is None else numbers[target],
        path=path,
        dropped_lines=dropped,
        lines=lines,
        unit=unit,
    )


def _too_few_columns(path: Path, fmt: TableFormat, names: list[str]) -> str:
    if not names:  # a Parquet file can have none
        return f"{path} has no columns; it needs at least one feature and the target."
    name = names[0]
    if fmt.parquet:
        return f"{path} has a single column {name!r}; it needs at least one feature and the target."
    spaces = " Spaces do not separate columns." if " " in name.strip() else ""
    separate = (
        "separate columns with tabs, as the name ends in .tsv"
        if fmt.separator == "\t"
        else "separate columns with ',', ';', tab or '|'"
    )
    return (
        f"{path} has a single column {name!r}; {separate} and give at least one feature and the "
        f"target.{spaces}"
    )


def _read_text(path: Path, fmt: TableFormat) -> pd.DataFrame:
    """Every cell as text, under the stripped header names, indexed by line number."""
    with read_errors(path, fmt):
        header_line, header = _header(path, fmt)
        separator = fmt.separator or _delimiter(header)
        frame = _read_csv(path, fmt, separator, header_line)
        with _rows(path, fmt, separator, header_line) as rows:
            names = [name.strip() for name in next(rows)]
    if len(names) != frame.shape[1]:
        raise CSVError(
            f"{path}: the header line could not be split into columns; check its quotes."
        )
    frame.columns = names
    frame.index = pd.RangeIndex(header_line + 1, header_line + 1 + len(frame))
    return frame


def _header(path: Path, fmt: TableFormat) -> tuple[int, str]:
    """Line number and text of the first non-blank line."""
    with open_text(path, fmt.compression) as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                return number, line.rstrip("\r\n")
    raise CSVError(f"{path} is empty; it needs a header line and rows of numbers.")


def _delimiter(header: str) -> str:
    unquoted = _QUOTED.sub("", header)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else ","


def _read_csv(path: Path, fmt: TableFormat, separator: str, header_line: int) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # index_col=False: a row with an extra field must not turn the first column into
            # the index and shift every value one column to the left; pandas warns instead.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path,
                sep=separator,
                skiprows=header_line - 1,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                skipinitialspace=True,
                index_col=False,
                encoding="utf-8-sig",
                compression=fmt.compression,
            )
    except pd.errors.ParserWarning:
        raise CSVError(_extra_fields(path, fmt, separator, header_line)) from None
    except UnicodeDecodeError:
        raise  # read_errors says it in one line
    except (pd.errors.ParserError, ValueError, csv.Error) as error:
        text = str(error).strip()
        match = _FIELD_COUNT.search(text)
        if match:
            expected, line, seen = match.groups()
            raise CSVError(
                f"{path}: line {line} has {seen} fields but the header names {expected} "
                "columns; remove the extra fields or name the missing columns."
            ) from None
        message = text.splitlines()[-1] if text else repr(error)
        raise CSVError(f"{path} could not be read as CSV: {message}") from None


@contextmanager
def _rows(
    path: Path, fmt: TableFormat, separator: str, header_line: int
) -> Iterator[Iterator[list[str]]]:
    """The fields of each line from the header line on, split as pandas splits them."""
    with open_text(path, fmt.compression) as handle:
        lines = itertools.islice(handle, header_line - 1, None)
        yield csv.reader(lines, delimiter=separator, skipinitialspace=True)


def _extra_fields(path: Path, fmt: TableFormat, separator: str, header_line: int) -> str:
    with _rows(path, fmt, separator, header_line) as rows:
        width = len(next(rows))
        for number, row in enumerate(rows, start=header_line + 1):
            if len(row) > width:
                return (
                    f"{path}: line {number} has {len(row)} fields but the header names {width} "
                    "columns; remove the extra fields or name the missing columns."
                )
    return f"{path}: some rows have more fields than the header names columns."


def _named_columns(path: Path, frame: pd.DataFrame, unit: str) -> pd.DataFrame:
    """``frame`` under its stripped column names, less the unnamed columns without values."""
    names = [str(name).strip() for name in frame.columns]
    frame.columns = names
    header = " in the header" if unit == "line" else ""
    keep = []
    for position, name in enumerate(names):
        if name:
            keep.append(position)
            continue
        values = frame.iloc[:, position]
        filled = (values.notna() & (values.astype(str).str.strip() != "")).to_numpy()
        if filled.any():
            row = int(np.argmax(filled))
            value = values.iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise ColumnError(
                f"{path}: column {position + 1} has no name{header} but holds {value!r} on "
                f"{unit} {frame.index[row]}; name it{header}."
            )
    frame = frame.iloc[:, keep]
    names = list(frame.columns)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ColumnError(
            f"{path}: column names {_quoted(duplicates)} appear more than once{header}; "
            "rename them so that every column is unique."
        )
    return frame


def _require(path: Path, wanted: Sequence[str], names: list[str], what: str, header: bool) -> None:
    for name in wanted:
        if name in names:
            continue
        hint = _suggestion(name, names)
        if not hint and header and all(_is_number(n) for n in names):
            hint = " The first line holds numbers: add a header line with the column names."
        raise ColumnError(f"{path} has no {what} {name!r}; its columns are {_quoted(names)}.{hint}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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


def _numbers(path: Path, cells: pd.DataFrame, unit: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cells`` as float64, and which of them are empty text.

    Numeric columns (Parquet's) are taken as they are, their nulls as NaN; any other column is
    read as stripped text, where empty and NaN texts become NaN.
    """
    numbers, empty = {}, {}
    problems = []
    for name in cells.columns:
        column = cells[name]
        if is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype):
            numbers[name] = column.astype(np.float64)
            empty[name] = pd.Series(False, index=cells.index)
            continue
        text = column.astype(str).str.strip()
        empty[name] = (text == "").fillna(False).astype(bool)
        missing = empty[name] | text.isna() | text.str.casefold().isin(NAN_TEXTS)
        values = pd.to_numeric(text.where(~missing), errors="coerce").astype(np.float64)
        wrong = ~missing & values.isna()
        if wrong.any():
            row = int(np.argmax(wrong.to_numpy()))
            problems.append((name, text.iloc[row], int(cells.index[row])))
        numbers[name] = values
    if problems:
        details = "; ".join(
            f"{name!r} holds {value!r} on {unit} {place}" for name, value, place in problems
        )
        hint = ""
        if any(_DECIMAL_COMMA.fullmatch(value) for _, value, _ in problems):
            hint = " Numbers with a decimal comma must be written with a point (1.5, not 1,5)."
        columns = "column" if len(problems) == 1 else "columns"
        raise ColumnError(
            f"{path}: {columns} {_quoted([p[0] for p in problems])} must hold numbers only "
            f"({details}).{hint}"
        )
    return pd.DataFrame(numbers, index=cells.index), pd.DataFrame(empty, index=cells.index)


def _non_finite_cells(numbers: pd.DataFrame, empty: pd.DataFrame, unit: str) -> str:
    """Per column: how many cells are empty, NaN or infinite, and on which lines (or rows)."""
    parts = []
    for name in numbers.columns:
        values = numbers[name].to_numpy()
        blank = empty[name].to_numpy()
        kinds = (
            ("empty cell", "empty cells", blank),
            ("NaN", "NaN", np.isnan(values) & ~blank),
            ("infinite value", "infinite values", np.isinf(values)),
        )
        found = []
        for one, many, mask in kinds:
            if mask.any():
                places = [int(i) for i in numbers.index[mask]]
                shown = ", ".join(map(str, places[:_SHOWN_PER_KIND]))
                more = ", ..." if len(places) > _SHOWN_PER_KIND else ""
                kind, plural = (one, "") if len(places) == 1 else (many, "s")
                found.append(f"{len(places)} {kind} ({unit}{plural} {shown}{more})")
        if found:
            parts.append(f"{name!r} has {', '.join(found)}")
    return "; ".join(parts)


def _lines(lines: list[int], unit: str = "line") -> str:
    shown = ", ".join(map(str, lines[:_SHOWN_LINES]))
    more = f" and {len(lines) - _SHOWN_LINES} more" if len(lines) > _SHOWN_LINES else ""
    return f"{unit}{'s' if len(lines) > 1 else ''} {shown}{more}"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)
