"""Tables are read as pandas reads them: CSV and TSV, compressed as their name says, and Parquet;
every check of the CSV reader works in each format, and a broken or misnamed file gets one line."""

import bz2
import doctest
import gzip
import io
import lzma
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from nalu_sr.cli import app, render, table_formats
from nalu_sr.cli.csv_input import read_table
from nalu_sr.cli.table_formats import (
    TableFormat,
    open_text,
    output_format,
    read_errors,
    read_parquet,
    table_bytes,
    table_format,
    table_text,
)
from nalu_sr.errors import ColumnError, CSVError, InputError, MissingDependencyError, NonFiniteError
from nalu_sr.files import write_bytes_atomic

REPO = Path(__file__).resolve().parents[1]
OHMS = REPO / "datasets" / "ohms_law.csv"
# Small searches that still find I*R.
PRODUCT = ["--restarts", "1", "--steps", "300", "--architectures", "NAU,NMU", "--max-time", "10"]
COMPRESSED = [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip"]
TEXT = [".csv", *COMPRESSED, ".tsv", ".tsv.gz"]
OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    """The single ``error:`` line of a failed command, after checking the exit code."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def write(frame: pd.DataFrame, path: Path) -> Path:
    """``frame`` in the format its name says, written by pandas itself."""
    if path.name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        sep = "\t" if ".tsv" in path.name else ","
        frame.to_csv(path, sep=sep, index=False, float_format="%.17g", compression="infer")
    return path


def write_text(text: str, path: Path) -> Path:
    """``text`` compressed as the name of ``path`` says."""
    data = text.encode("utf-8")
    end = path.suffix
    if end == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(path.stem, data)
    elif end in OPENERS:
        with OPENERS[end](path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("ending", [*TEXT, ".parquet", ".CSV.GZ"])
def test_every_format_reads_the_same_numbers_as_the_csv(ending, tmp_path):
    frame = pd.read_csv(OHMS)
    table = read_table(write(frame, tmp_path / f"ohms{ending}"), target="V", features=None)
    pd.testing.assert_frame_equal(table.X, frame[["I", "R"]])
    pd.testing.assert_series_equal(table.y, frame["V"])
    parquet = ending == ".parquet"
    assert table.unit == ("row" if parquet else "line")
    assert table.lines[:3] == ([1, 2, 3] if parquet else [2, 3, 4])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model fitted through the command line on a gzip table, checked on a Parquet one."""
    folder = tmp_path_factory.mktemp("tables")
    data = write(pd.read_csv(OHMS), folder / "ohms.csv.gz")
    wide = write(pd.read_csv(REPO / "datasets" / "ohms_law_wide.csv"), folder / "wide.parquet")
    output = folder / "model.json"
    result = run("fit", data, "-t", "V", *PRODUCT, "--extrapolation-data", wide, "-o", output)
    assert result.exit_code == 0, result.output
    assert "Formula: V = I*R" in result.stdout
    assert "from the extrapolation data" in result.stdout
    return output


def test_fit_on_a_tsv_bz2_table_finds_the_formula(tmp_path):
    data = write(pd.read_csv(OHMS), tmp_path / "ohms.tsv.bz2")
    result = run("fit", data, "-t", "V", *PRODUCT, "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == "I*R\n"


@pytest.mark.parametrize("ending", [".parquet", ".csv.xz", ".tsv", ".csv.zip"])
def test_predict_reads_every_format(model, ending, tmp_path):
    frame = pd.read_csv(OHMS)[["I", "R"]]
    result = run("predict", model, write(frame, tmp_path / f"new{ending}"))
    assert result.exit_code == 0, result.output
    predicted = pd.read_csv(io.StringIO(result.stdout))
    np.testing.assert_allclose(predicted["prediction"], frame.I * frame.R, rtol=1e-15)


@pytest.mark.parametrize("ending", [".csv", ".tsv", *COMPRESSED, ".tsv.xz"])
def test_predict_output_is_csv_compressed_and_separated_as_its_name_says(model, ending, tmp_path):
    output = tmp_path / f"predictions{ending}"
    result = run("predict", model, OHMS, "--output", output)
    assert result.exit_code == 0, result.output
    sep = "\t" if ".tsv" in ending else ","
    written = pd.read_csv(output, sep=sep, compression="infer")
    assert list(written.columns) == ["I", "R", "prediction"]
    data = pd.read_csv(OHMS)
    np.testing.assert_allclose(written["prediction"], data.I * data.R, rtol=1e-15)


def test_predict_refuses_a_parquet_output_before_writing_anything(model, tmp_path):
    output = tmp_path / "predictions.parquet"
    line = one_error_line(run("predict", model, OHMS, "--output", output))
    assert "predictions are written as CSV" in line
    assert not output.exists()


# name -> (file text, what the message must say); each is written plain and compressed.
TEXT_CASES = {
    "empty": ("", "is empty"),
    "header only": ("I,R,V\n", "has a header but no data rows"),
    "duplicate header": ("I,I,V\n1,2,3\n", "column names 'I' appear more than once"),
    "unnamed column": (
        "I,,V\n1,2,3\n",
        "column 2 has no name in the header but holds '2' on line 2",
    ),
    "extra field": ("I,R,V\n1,2,3\n4,5,6,7\n", "line 3 has 4 fields but the header names 3"),
    "missing target": ("I,R,volts\n1,2,3\n", "no target column 'V'.*Did you mean 'volts'"),
    "not numbers": ("I,R,V\n1,2,3\n1,abc,3\n", "'R' holds 'abc' on line 3"),
    "decimal comma": ("I;R;V\n1,5;2;3\n", "decimal comma"),
    "missing values": ("I,R,V\n1,2,3\n1,,3\n\n2,2,nan\n", r"2 rows .*\(lines 3, 5\).*--dropna"),
}


@pytest.mark.parametrize("ending", COMPRESSED)
@pytest.mark.parametrize("case", list(TEXT_CASES))
def test_every_check_of_the_csv_reader_says_the_same_in_a_compressed_file(case, ending, tmp_path):
    text, pattern = TEXT_CASES[case]
    plain = write_text(text, tmp_path / "data.csv")
    compressed = write_text(text, tmp_path / f"data{ending}")
    with pytest.raises(InputError, match=pattern) as expected:
        read_table(plain, target="V", features=None)
    with pytest.raises(type(expected.value)) as raised:
        read_table(compressed, target="V", features=None)
    assert str(raised.value) == str(expected.value).replace(str(plain), str(compressed))


def test_dropna_reports_the_lines_of_a_compressed_file(tmp_path):
    path = write_text("I,R,V\n1,2,3\n1,,3\n2,2,4\n", tmp_path / "data.csv.xz")
    table = read_table(path, target="V", features=None, dropna=True)
    assert table.lines == [2, 4]
    assert (
        table.dropped_message()
        == f"{path}: dropped 1 row with missing or infinite values (line 3)."
    )


def test_a_tsv_file_is_split_at_tabs_only(tmp_path):
    path = write_text("a,b\tc;d\ty\n1\t2\t3\n", tmp_path / "data.tsv")
    assert list(read_table(path, target="y", features=None).X.columns) == ["a,b", "c;d"]
    commas = write_text("a,b,y\n1,2,3\n", tmp_path / "commas.tsv")
    with pytest.raises(CSVError, match="single column 'a,b,y'; separate columns with tabs"):
        read_table(commas, target="y", features=None)


def parquet_file(tmp_path, **columns) -> Path:
    path = tmp_path / "data.parquet"
    pd.DataFrame(columns).to_parquet(path, index=False)
    return path


def test_parquet_problems_are_placed_by_row_number(tmp_path):
    path = parquet_file(tmp_path, a=[1.0, np.nan, 3.0, np.inf], b=["1", "2", None, "4"], y=[1] * 4)
    with pytest.raises(NonFiniteError) as raised:
        read_table(path, target="y", features=None)
    assert str(raised.value) == (
        f"{path}: 3 rows with missing or infinite values (rows 2, 3, 4): 'a' has 1 NaN (row 2), "
        "1 infinite value (row 4); 'b' has 1 NaN (row 3); fill them in, or pass --dropna to "
        "drop those rows."
    )
    table = read_table(path, target="y", features=None, dropna=True)
    assert table.lines == [1] and table.dropped_lines == [2, 3, 4]
    assert table.dropped_message().endswith("(rows 2, 3, 4).")
    assert table.X.to_dict("list") == {"a": [1.0], "b": [1.0]}


PARQUET_CASES = {
    "text": (dict(a=[1.0, 2.0], b=["1.5", "x7"], y=[1, 2]), ColumnError, "'b' holds 'x7' on row 2"),
    "booleans": (dict(a=[True, False], y=[1, 2]), ColumnError, "'a' holds 'True' on row 1"),
    "decimal comma": (dict(a=["1,5"], y=[1.0]), ColumnError, r"\(1\.5, not 1,5\)"),
    "unnamed": ({"a": [1.0], "": [2.0], "y": [3.0]}, ColumnError, "no name but holds 2.0 on row 1"),
    "no rows": (dict(a=[], y=[]), CSVError, "has columns but no rows"),
    "one column": (dict(y=[1.0]), CSVError, "single column 'y'; it needs at least one feature"),
    "no columns": ({}, CSVError, "has no columns; it needs at least one feature"),
    "missing target": (dict(a=[1.0], Y=[2.0]), ColumnError, "no target column 'y'.*'Y'"),
}


@pytest.mark.parametrize("case", list(PARQUET_CASES))
def test_parquet_files_get_the_checks_of_csv_files(case, tmp_path):
    columns, error, pattern = PARQUET_CASES[case]
    with pytest.raises(error, match=pattern):
        read_table(parquet_file(tmp_path, **columns), target="y", features=None)


def test_a_parquet_file_with_a_column_name_twice_says_so(tmp_path):
    path = tmp_path / "data.parquet"
    arrays = [pa.array([1.0]), pa.array([2.0]), pa.array([3.0])]
    pq.write_table(pa.Table.from_arrays(arrays, names=["a", "a", "y"]), path)
    with pytest.raises(ColumnError, match="column names 'a' appear more than once; rename"):
        read_table(path, target="y", features=None)


def test_nullable_integers_in_parquet_are_numbers_and_their_nulls_missing(tmp_path):
    path = parquet_file(tmp_path, a=pd.array([1, None, 3], dtype="Int64"), y=[1.0, 2.0, 3.0])
    table = read_table(path, target="y", features=None, dropna=True)
    assert table.X["a"].tolist() == [1.0, 3.0] and table.dropped_lines == [2]


def gzip_cut_short(tmp_path) -> Path:
    whole = write(pd.read_csv(OHMS), tmp_path / "whole.csv.gz").read_bytes()
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def gzip_with_flipped_bytes(tmp_path) -> Path:
    data = bytearray(write(pd.read_csv(OHMS), tmp_path / "whole.csv.gz").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8] = bytes(8)
    path = tmp_path / "flipped.csv.gz"
    path.write_bytes(bytes(data))
    return path


def plain_text_named_gz(tmp_path) -> Path:
    return write_text("I,R,V\n1,2,3\n", tmp_path / "data.csv").rename(tmp_path / "data.csv.gz")


@pytest.mark.parametrize("make", [gzip_cut_short, gzip_with_flipped_bytes, plain_text_named_gz])
def test_a_corrupt_gzip_file_gives_one_line_and_exit_code_2(make, tmp_path):
    path = make(tmp_path)
    line = one_error_line(run("fit", path, "--target", "V", "--quiet"))
    assert line.startswith(f"error: {path} is not a valid .gz file (")
    assert line.endswith("its name ends in .gz, so it must be complete and compressed that way.")


def csv_named_parquet(tmp_path) -> Path:
    return write_text("I,R,V\n1,2,3\n", tmp_path / "data.parquet")


def parquet_named_csv(tmp_path) -> Path:
    path = parquet_file(tmp_path, I=[1.0], R=[2.0], V=[2.0])
    return path.rename(tmp_path / "data.csv")


def zip_of_two_files(tmp_path) -> Path:
    path = tmp_path / "data.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "I,R,V\n1,2,2\n")
        archive.writestr("b.csv", "I,R,V\n1,2,2\n")
    return path


def zstd_file(tmp_path) -> Path:
    return write_text("I,R,V\n1,2,2\n", tmp_path / "data.csv.zst")


def empty_parquet_file(tmp_path) -> Path:
    return write_text("", tmp_path / "data.parquet")


WRONG_FILES = {
    csv_named_parquet: "could not be read as Parquet (Parquet magic bytes not found",
    parquet_named_csv: "is not UTF-8 text; save it as a UTF-8 CSV file.",
    zip_of_two_files: "holds 2 files; a .zip table must hold exactly one file.",
    zstd_file: "zstd files and tar archives are not read or written",
    empty_parquet_file: "is empty",
}


@pytest.mark.parametrize("make", list(WRONG_FILES), ids=lambda make: make.__name__)
def test_a_file_not_in_the_format_its_name_says_gives_one_line(make, tmp_path):
    path = make(tmp_path)
    line = one_error_line(run("fit", path, "--target", "V", "--quiet"))
    assert line.startswith(f"error: {path}")
    assert WRONG_FILES[make] in line


def test_a_file_of_unknown_kind_is_told_which_formats_are_read(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xff\xfe\x00")
    line = one_error_line(run("fit", path, "--target", "V"))
    assert line.endswith("(tables are read from .csv or .tsv (also compressed: .csv.gz, .bz2, "
                         ".xz, .zip) or .parquet).")  # fmt: skip


def test_without_pyarrow_a_parquet_file_names_what_to_install(monkeypatch, tmp_path):
    path = parquet_file(tmp_path, I=[1.0], R=[2.0], V=[2.0])
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match="pip install pyarrow"):
        read_table(path, target="V", features=None)
    line = one_error_line(run("fit", path, "--target", "V"))
    assert line == (
        f"error: reading the Parquet file {path} needs pyarrow; install it with pip install "
        "pyarrow (or pip install 'nalu-sr[parquet]')."
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("data.csv", TableFormat()),
        ("data.txt", TableFormat()),
        ("data.tsv", TableFormat(separator="\t")),
        ("data.CSV.GZ", TableFormat(compression="gzip")),
        ("data.tsv.bz2", TableFormat(compression="bz2", separator="\t")),
        ("data.csv.xz", TableFormat(compression="xz")),
        ("v1.2.csv.zip", TableFormat(compression="zip")),
        ("data.parquet", TableFormat(parquet=True)),
    ],
)
def test_table_format_follows_the_end_of_the_name(name, expected):
    assert table_format(Path("folder.gz") / name) == expected


@pytest.mark.parametrize("name", ["data.csv.zst", "data.tar.gz", "data.tgz", "data.parquet.gz"])
def test_table_format_refuses_zstd_tar_and_compressed_parquet(name):
    with pytest.raises(CSVError, match=name):
        table_format(name)


@pytest.mark.parametrize("ending", [".csv", *COMPRESSED])
def test_open_text_gives_the_decompressed_lines_with_their_endings(ending, tmp_path):
    path = write_text("\ufeffa,b\r\n1,2\n", tmp_path / f"data{ending}")
    with open_text(path, table_format(path).compression) as handle:
        assert handle.readlines() == ["a,b\r\n", "1,2\n"]


def test_read_errors_turns_a_broken_compressed_file_into_one_csv_error(tmp_path):
    path = gzip_cut_short(tmp_path)
    with (
        pytest.raises(CSVError, match="cut.csv.gz is not a valid .gz file"),
        read_errors(path, table_format(path)),
        open_text(path, "gzip") as handle,
    ):
        handle.read()


def test_read_parquet_numbers_rows_from_1_and_drops_the_stored_index(tmp_path):
    path = tmp_path / "data.parquet"
    pd.DataFrame({"a": [1.5, 2.5]}, index=pd.Index([10, 20], name="id")).to_parquet(path)
    frame = read_parquet(path)
    assert frame.index.tolist() == [1, 2] and frame.to_dict("list") == {"a": [1.5, 2.5]}


def test_output_format_refuses_parquet_and_keeps_the_rest():
    assert output_format("out.tsv.gz") == TableFormat(compression="gzip", separator="\t")
    with pytest.raises(CSVError, match="predictions are written as CSV"):
        output_format("out.parquet")


@pytest.mark.parametrize("ending", [".csv", ".tsv", *COMPRESSED])
def test_table_bytes_read_back_exactly_and_the_same_table_gives_the_same_bytes(ending, tmp_path):
    frame = pd.DataFrame({"x": [0.1, 1 / 3, np.nan, -2.5e-300], "y": [0.5, 1.5, 2.5, 3.5]})
    path = tmp_path / f"out{ending}"
    path.write_bytes(table_bytes(frame, path))
    sep = "\t" if ending == ".tsv" else ","
    pd.testing.assert_frame_equal(pd.read_csv(path, sep=sep, compression="infer"), frame)
    if ending != ".csv.zip":  # zip records the time of writing
        assert table_bytes(frame, path) == path.read_bytes()


def test_table_text_writes_exact_floats_and_nan():
    frame = pd.DataFrame({"x": [1 / 3, np.nan]})
    assert table_text(frame) == "x\n0.33333333333333331\nnan\n"


def test_write_bytes_atomic_writes_the_whole_file_and_refuses_an_existing_one(tmp_path):
    path = tmp_path / "out.csv.gz"
    write_bytes_atomic(path, b"\x1f\x8b data")
    assert path.read_bytes() == b"\x1f\x8b data"
    with pytest.raises(FileExistsError, match="already exists"):
        write_bytes_atomic(path, b"other")
    write_bytes_atomic(path, b"other", overwrite=True)
    assert path.read_bytes() == b"other" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_predict_names_the_undefined_rows_of_a_parquet_file_by_row_number():
    model = SimpleNamespace(formula_="1/x")
    message = render.undefined_message(model, "new.parquet", [2, 5], unit="row")
    assert "on 2 rows of new.parquet (rows 2, 5)" in message


def test_the_examples_in_the_table_formats_docstrings_hold():
    result = doctest.testmod(table_formats)
    assert result.attempted > 0 and result.failed == 0
