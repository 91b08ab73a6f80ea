"""Table files by the end of their name: CSV or TSV, plain or compressed, and Parquet.

The compression is inferred from the name as pandas does (``compression="infer"``) for the four
kinds the standard library reads: ``.gz``, ``.bz2``, ``.xz`` and ``.zip``. pandas reads the
tables; the standard library opens them as text where the header line has to be looked at first.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pandas as pd

from ..errors import ColumnError, CSVError, MissingDependencyError

#: Name ending -> pandas' name for the compression.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
#: Endings that pandas would also read, but only with more packages (zstd) or as archives (tar).
_REFUSED = (".zst", ".tar", ".tgz", ".tbz2", ".txz")
_OPENERS = {None: open, "gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
#: Raised by the decompressors for data that is not what the name says, or is cut short.
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, lzma.LZMAError, zipfile.BadZipFile)
_SOURCE = re.compile(r"^Could not open Parquet input source '.*?': ")
#: Endings of text tables whose bytes are not explained by naming the formats read.
_TEXT_ENDINGS = (".csv", ".tsv", ".txt")
#: The formats read, for messages.
FORMATS_TEXT = ".csv or .tsv (also compressed: .csv.gz, .bz2, .xz, .zip) or .parquet"

__all__ = [
    "COMPRESSIONS",
    "TableFormat",
    "open_text",
    "output_format",
    "read_errors",
    "read_parquet",
    "table_bytes",
    "table_format",
    "table_text",
]

#: CSV as predict writes it: floats that read back exactly, NaN as ``nan``.
_CSV_OPTIONS = {"index": False, "float_format": "%.17g", "na_rep": "nan", "lineterminator": "\n"}


@dataclass(frozen=True)
class TableFormat:
    """How a table file is read and written, decided by the end of its name.

    Attributes
    ----------
    parquet : bool
        A Parquet file (``.parquet``); otherwise delimited text.
    compression : str or None
        pandas' name of the compression of a text file (``"gzip"``, ``"bz2"``, ``"xz"``,
        ``"zip"``), or None.
    separator : str or None
        ``"\\t"`` for ``.tsv`` files; None to detect it from the header line.
    """

    parquet: bool = False
    compression: str | None = None
    separator: str | None = None


def table_format(path: str | Path) -> TableFormat:
    """The format of the table file ``path``, from the end of its name (case-insensitive).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    TableFormat
        ``.parquet`` is Parquet; ``.tsv`` is tab-separated text; any other name is text whose
        separator is detected. ``.gz``, ``.bz2``, ``.xz`` or ``.zip`` after the name of a text
        file compresses it (``data.csv.gz``, ``data.tsv.zip``).

    Raises
    ------
    CSVError
        For zstd or tar files, and for a compressed Parquet file.

    Examples
    --------
    >>> table_format("data.TSV.gz")
    TableFormat(parquet=False, compression='gzip', separator='\\t')
    """
    name, compression = _split(path)
    if name.endswith(_REFUSED):
        raise CSVError(
            f"{path}: zstd files and tar archives are not read or written; compress the table "
            "with gzip, bz2, xz or zip instead (.csv.gz, .csv.bz2, .csv.xz, .csv.zip)."
        )
    if name.endswith(".parquet"):
        if compression is not None:
            raise CSVError(
                f"{path}: Parquet files are compressed inside already; decompress it to a "
                ".parquet file."
            )
        return TableFormat(parquet=True)
    return TableFormat(compression=compression, separator="\t" if name.endswith(".tsv") else None)


def _split(path: str | Path) -> tuple[str, str | None]:
    """The name of ``path`` in lower case less its compression ending, and the compression."""
    name = Path(path).name.lower()
    for end, compression in COMPRESSIONS.items():
        if name.endswith(end):
            return name[: -len(end)], compression
    return name, None


@contextmanager
def open_text(path: Path, compression: str | None) -> Iterator[TextIO]:
    """Open the text table ``path`` for reading as UTF-8 (a byte order mark is skipped).

    Parameters
    ----------
    path : Path
    compression : str or None
        As in :class:`TableFormat`; a ``.zip`` file must hold exactly one file, as for pandas.

    Yields
    ------
    TextIO
        Lines with their line endings as they are (``newline=""``, as the csv module needs).

    Raises
    ------
    CSVError
        For a ``.zip`` file that does not hold exactly one file.
    """
    if compression != "zip":
        with _OPENERS[compression](path, "rt", encoding="utf-8-sig", newline="") as handle:
            yield handle
        return
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) != 1:
            raise CSVError(
                f"{path} holds {len(names)} files; a .zip table must hold exactly one file."
            )
        with (
            archive.open(names[0]) as member,
            io.TextIOWrapper(member, encoding="utf-8-sig", newline="") as handle,
        ):
            yield handle


@contextmanager
def read_errors(path: Path, fmt: TableFormat) -> Iterator[None]:
    """Turn the errors of reading, decompressing and decoding ``path`` into one CSVError line.

    Parameters
    ----------
    path : Path
    fmt : TableFormat
        Names the compression in the message.

    Raises
    ------
    CSVError
        For bytes that are not UTF-8, data that is not compressed as the name says (or is cut
        short), and a file that cannot be read.
    """
    try:
        yield
    except UnicodeDecodeError:
        usual = _split(path)[0].endswith(_TEXT_ENDINGS)
        formats = "" if usual else f" (tables are read from {FORMATS_TEXT})"
        raise CSVError(f"{path} is not UTF-8 text; save it as a UTF-8 CSV file{formats}.") from None
    except (OSError, *_DECOMPRESSION_ERRORS) as error:
        if isinstance(error, OSError) and error.errno is not None:
            raise CSVError(f"cannot read {path}: {error.strerror}.") from None
        if fmt.compression is None:
            raise CSVError(f"cannot read {path}: {error}.") from None
        end = next(end for end, c in COMPRESSIONS.items() if c == fmt.compression)
        raise CSVError(
            f"{path} is not a valid {end} file ({error}); its name ends in {end}, so it must "
            "be complete and compressed that way."
        ) from None


def read_parquet(path: Path) -> pd.DataFrame:
    """The table in the Parquet file ``path``, as pandas reads it with pyarrow.

    Parameters
    ----------
    path : Path

    Returns
    -------
    DataFrame
        The columns as stored (numbers, text, ...), indexed by row number from 1; an index
        stored in the file is dropped.

    Raises
    ------
    MissingDependencyError
        If pyarrow is not installed.
    ColumnError
        For column names that appear more than once.
    CSVError
        For an empty file or one that is not valid Parquet.
    """
    try:
        import pyarrow.parquet
    except ImportError as error:
        raise MissingDependencyError(
            f"reading the Parquet file {path} needs pyarrow; install it with pip install "
            "pyarrow (or pip install 'nalu-sr[parquet]')."
        ) from error
    if path.stat().st_size == 0:
        raise CSVError(f"{path} is empty; it needs columns of numbers.")
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        if isinstance(error, OSError) and error.errno is not None:
            raise CSVError(f"cannot read {path}: {error.strerror}.") from None
        _refuse_duplicates(path)
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        message = _SOURCE.sub("", message)  # pyarrow names the file again
        raise CSVError(
            f"{path} could not be read as Parquet ({message}); check that the file is complete "
            "and really Parquet, as its name says."
        ) from None
    frame = frame.reset_index(drop=True)
    frame.index += 1
    return frame


def _refuse_duplicates(path: Path) -> None:
    """pandas cannot read a Parquet file whose columns share a name; say so when that is why."""
    import pyarrow
    import pyarrow.parquet

    try:
        names = pyarrow.parquet.read_schema(path).names
    except (OSError, ValueError, pyarrow.ArrowException):
        return  # broken beyond its schema: the caller says so
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ColumnError(
            f"{path}: column names {', '.join(map(repr, duplicates))} appear more than once; "
            "rename them so that every column is unique."
        )


def output_format(path: str | Path) -> TableFormat:
    """The format of the CSV file ``path`` that predictions are written to.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    TableFormat
        As :func:`table_format` reads it; never Parquet.

    Raises
    ------
    CSVError
        For a ``.parquet`` name (predictions are written as CSV only) and for the names
        :func:`table_format` refuses.
    """
    fmt = table_format(path)
    if fmt.parquet:
        raise CSVError(
            f"{path}: predictions are written as CSV; name the file .csv or .tsv, compressed "
            "or not (.csv.gz, .bz2, .xz, .zip)."
        )
    return fmt


def table_bytes(frame: pd.DataFrame, path: str | Path) -> bytes:
    """CSV of ``frame`` for the file ``path``: tab-separated for ``.tsv``, compressed as its name
    says (``.csv.gz``: gzip); floats read back exactly and NaN is written ``nan``.

    Parameters
    ----------
    frame : DataFrame
    path : str or Path
        Only its name is used.

    Returns
    -------
    bytes
        UTF-8 text, compressed where the name says so.

    Raises
    ------
    CSVError
        For the names :func:`output_format` refuses.
    """
    fmt = output_format(path)
    compression: dict | None = None
    if fmt.compression == "zip":
        # The one file inside is named after the archive, less its .zip.
        compression = {"method": "zip", "archive_name": Path(path).name[: -len(".zip")]}
    elif fmt.compression == "gzip":
        compression = {"method": "gzip", "mtime": 0}  # the same table gives the same bytes
    elif fmt.compression is not None:
        compression = {"method": fmt.compression}
    buffer = io.BytesIO()
    frame.to_csv(
        buffer, sep=fmt.separator or ",", encoding="utf-8", compression=compression, **_CSV_OPTIONS
    )
    return buffer.getvalue()


def table_text(frame: pd.DataFrame) -> str:
    """CSV text of ``frame`` whose floats read back exactly; NaN is written ``nan``.

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    str
    """
    buffer = io.StringIO()
    frame.to_csv(buffer, **_CSV_OPTIONS)
    return buffer.getvalue()
