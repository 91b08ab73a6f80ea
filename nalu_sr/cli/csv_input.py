"""Reading the user's CSV files: the needed columns, as numbers, or one clear error."""

from __future__ import annotations

import csv
import difflib
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ColumnError, CSVError, InputError, NonFiniteError

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

__all__ = ["InputError", "Table", "parse_names", "read_table", "table_text"]


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
    lines : list of int
        File line number of each row of ``X``.
    """

    X: pd.DataFrame
    y: pd.Series | None
    path: Path
    dropped_lines: list[int] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

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

    The separator is the most frequent of ``,``, ``;``, tab and ``|`` in the header line
    (outside quotes). Column names are stripped of surrounding spaces; a column with an empty
    name and no values (a separator at the end of every line) is ignored. Rows whose used cells
    are all empty (blank lines) are skipped. Cells are read as numbers exactly as Python's
    ``float`` reads them; ``nan``, ``NA``, ``null`` and similar texts count as missing.

    Raises
    ------
    CSVError
        For a missing, empty or undecodable file, a header without rows, a single column, or
        a row with more fields than the header.
    ColumnError
        For duplicate, unnamed, missing or non-numeric columns.
    NonFiniteError
        For empty, NaN or infinite cells in the used columns (unless ``dropna``).
    """
    path = Path(path)
    header_line, header = _header(path)
    delimiter = _delimiter(header)
    frame = _read(path, delimiter, header_line)
    names = list(frame.columns)
    if len(names) < 2:
        spaces = " Spaces do not separate columns." if " " in names[0].strip() else ""
        raise CSVError(
            f"{path} has a single column {names[0]!r}; separate columns with ',', ';', tab "
            f"or '|' and give at least one feature and the target.{spaces}"
        )
    target = None if target is None else target.strip()
    if target is not None:
        _require(path, [target], names, what="target column")
    if features is None:
        features = [name for name in names if name != target]
    else:
        features = [name.strip() for name in features]
        _require(path, features, names, what="feature column")
        repeated = sorted({name for name in features if features.count(name) > 1})
        if repeated:
            raise ColumnError(f"--features lists {_quoted(repeated)} more than once.")
        if target in features:
            raise ColumnError(
                f"{target!r} is the target and cannot also be a feature; remove it from --features."
            )
    needed = [*features, *([target] if target is not None else [])]
    cells = frame[needed].apply(lambda column: column.str.strip())
    first_row_line = header_line + 1
    cells = cells[~(cells == "").all(axis=1)]
    if cells.empty:
        raise CSVError(f"{path} has a header but no data rows; add rows of numbers below it.")
    numbers = _numbers(path, cells, first_row_line)
    bad = ~np.isfinite(numbers.to_numpy()).all(axis=1)
    dropped: list[int] = []
    if bad.any():
        lines = [int(i) + first_row_line for i in numbers.index[bad]]
        if not dropna:
            cells_text = _non_finite_cells(cells, numbers, first_row_line)
            raise NonFiniteError(
                f"{path}: {len(lines)} row{'s' if len(lines) > 1 else ''} with missing or "
                f"infinite values ({_lines(lines)}): {cells_text}; fill them in, or pass "
                "--dropna to drop those rows."
            )
        numbers, dropped = numbers[~bad], lines
        if numbers.empty:
            raise NonFiniteError(f"{path}: every row has a missing or infinite value.")
    lines = [int(i) + first_row_line for i in numbers.index]
    numbers = numbers.reset_index(drop=True)
    return Table(
        X=numbers[features],
        y=None if target is None else numbers[target],
        path=path,
        dropped_lines=dropped,
        lines=lines,
    )


def _header(path: Path) -> tuple[int, str]:
    """Line number and text of the first non-blank line."""
    if not path.exists():
        raise CSVError(f"{path} does not exist; check the path.")
    if not path.is_file():
        raise CSVError(f"{path} is not a file; give the path of a CSV file.")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    return number, line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise CSVError(f"{path} is not UTF-8 text; save it as a UTF-8 CSV file.") from None
    except OSError as error:
        raise CSVError(f"cannot read {path}: {error.strerror}.") from None
    raise CSVError(f"{path} is empty; it needs a header line and rows of numbers.")


def _delimiter(header: str) -> str:
    unquoted = _QUOTED.sub("", header)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=counts.__getitem__)
    return best if counts[best] else ","


def _read(path: Path, delimiter: str, header_line: int) -> pd.DataFrame:
    """Every cell as text, under the stripped header names; empty unnamed columns dropped."""
    try:
        with warnings.catch_warnings():
            # index_col=False: a row with an extra field must not turn the first column into
            # the index and shift every value one column to the left; pandas warns instead.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                sep=delimiter,
                skiprows=header_line - 1,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                skipinitialspace=True,
                index_col=False,
                encoding="utf-8-sig",
            )
    except pd.errors.ParserWarning:
        raise CSVError(_extra_fields(path, delimiter, header_line)) from None
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
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(
            _from_line(handle, header_line), delimiter=delimiter, skipinitialspace=True
        )
        names = [name.strip() for name in next(rows)]
    if len(names) != frame.shape[1]:
        raise CSVError(
            f"{path}: the header line could not be split into columns; check its quotes."
        )
    frame.columns = names
    keep = []
    for position, name in enumerate(names):
        if name:
            keep.append(position)
            continue
        values = frame.iloc[:, position].str.strip()
        if (values != "").any():
            row = int(np.argmax((values != "").to_numpy()))
            raise ColumnError(
                f"{path}: column {position + 1} has no name in the header but holds "
                f"{values.iloc[row]!r} on line {header_line + 1 + row}; name it in the header."
            )
    frame = frame.iloc[:, keep]
    names = list(frame.columns)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ColumnError(
            f"{path}: column names {_quoted(duplicates)} appear more than once in the header; "
            "rename them so that every column is unique."
        )
    return frame


def _from_line(handle: io.TextIOBase, line: int):
    for number, text in enumerate(handle, start=1):
        if number >= line:
            yield text


def _extra_fields(path: Path, delimiter: str, header_line: int) -> str:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(
            _from_line(handle, header_line), delimiter=delimiter, skipinitialspace=True
        )
        width = len(next(rows))
        for number, row in enumerate(rows, start=header_line + 1):
            if len(row) > width:
                return (
                    f"{path}: line {number} has {len(row)} fields but the header names {width} "
                    "columns; remove the extra fields or name the missing columns."
                )
    return f"{path}: some rows have more fields than the header names columns."


def _require(path: Path, wanted: Sequence[str], names: list[str], what: str) -> None:
    for name in wanted:
        if name in names:
            continue
        hint = _suggestion(name, names)
        if not hint and all(_is_number(n) for n in names):
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


def _numbers(path: Path, cells: pd.DataFrame, first_row_line: int) -> pd.DataFrame:
    """``cells`` (stripped text) as float64; empty and NaN texts become NaN."""
    numbers = {}
    problems = []
    for name in cells.columns:
        text = cells[name]
        missing = (text == "") | text.str.casefold().isin(NAN_TEXTS)
        values = pd.to_numeric(text.where(~missing), errors="coerce").astype(np.float64)
        wrong = ~missing & values.isna()
        if wrong.any():
            row = int(np.argmax(wrong.to_numpy()))
            problems.append((name, text.iloc[row], int(cells.index[row]) + first_row_line))
        numbers[name] = values
    if problems:
        details = "; ".join(
            f"{name!r} holds {value!r} on line {line}" for name, value, line in problems
        )
        hint = ""
        if any(_DECIMAL_COMMA.fullmatch(value) for _, value, _ in problems):
            hint = " Numbers with a decimal comma must be written with a point (1.5, not 1,5)."
        columns = "column" if len(problems) == 1 else "columns"
        raise ColumnError(
            f"{path}: {columns} {_quoted([p[0] for p in problems])} must hold numbers only "
            f"({details}).{hint}"
        )
    return pd.DataFrame(numbers, index=cells.index)


def _non_finite_cells(cells: pd.DataFrame, numbers: pd.DataFrame, first_row_line: int) -> str:
    """Per column: how many cells are empty, NaN or infinite, and on which lines."""
    parts = []
    for name in numbers.columns:
        values = numbers[name].to_numpy()
        empty = (cells[name] == "").to_numpy()
        kinds = (
            ("empty cell", "empty cells", empty),
            ("NaN", "NaN", np.isnan(values) & ~empty),
            ("infinite value", "infinite values", np.isinf(values)),
        )
        found = []
        for one, many, mask in kinds:
            if mask.any():
                lines = [int(i) + first_row_line for i in numbers.index[mask]]
                shown = ", ".join(map(str, lines[:_SHOWN_PER_KIND]))
                more = ", ..." if len(lines) > _SHOWN_PER_KIND else ""
                kind, plural = (one, "") if len(lines) == 1 else (many, "s")
                found.append(f"{len(lines)} {kind} (line{plural} {shown}{more})")
        if found:
            parts.append(f"{name!r} has {', '.join(found)}")
    return "; ".join(parts)


def _lines(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:_SHOWN_LINES]))
    more = f" and {len(lines) - _SHOWN_LINES} more" if len(lines) > _SHOWN_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def table_text(frame: pd.DataFrame) -> str:
    """CSV text of ``frame`` whose floats read back exactly; NaN is written ``nan``."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.17g", na_rep="nan", lineterminator="\n")
    return buffer.getvalue()
