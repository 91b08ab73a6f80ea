"""The ``nalu-sr`` commands: parse the options, call the library, print the outcome."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from .._version import __version__
from ..errors import MissingDependencyError
from . import render

if TYPE_CHECKING:
    from ..estimator import NaluRegressor
    from .csv_input import Table

# The library (torch, SymPy, pandas) is imported inside the commands that need it, so that
# --help and --version answer at once.

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_EXACT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES = (
    "Exit codes: 0 success (fit: an exact formula was found); "
    "1 unexpected internal error; "
    "2 usage or input error (bad option, unreadable table, missing column, existing output); "
    "3 fit: the search ended without an exact formula (the best approximation, or a formula "
    "that holds within the noise with estimated constants, is still printed and written); "
    "130 interrupted with Ctrl-C (fit still prints and writes the best formula so far)."
)

app = typer.Typer(
    name="nalu-sr",
    help=(
        "Find exact formulas in tables of numbers with neural arithmetic units, and check "
        "them on input ranges they were not fitted on. Every command has --help.\n\n"
        "Examples:\n\n"
        "  nalu-sr fit datasets/ohms_law.csv --target V --output model.json\n\n"
        "  nalu-sr predict model.json new.csv --output predictions.csv\n\n"
        "  nalu-sr export model.json --format latex"
    ),
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Help is printed as written: Rich markup would take pip install 'nalu-sr[dask]' for a tag.
    rich_markup_mode=None,
)
datasets_app = typer.Typer(
    help="The formula suite: known formulas and their tables.\n\n"
    "Each entry has a training table and a wider extrapolation table.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(datasets_app, name="datasets")

# No markup or emoji codes: file names, column names and formulas print as written (x[1], :y:).
_out = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)


class FitExport(str, Enum):
    json = "json"
    latex = "latex"
    python = "python"
    sympy = "sympy"


class FormulaFormat(str, Enum):
    latex = "latex"
    python = "python"
    sympy = "sympy"
    torch = "torch"


class Backend(str, Enum):
    numpy = "numpy"
    math = "math"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nalu-sr {__version__}")
        raise typer.Exit(EXIT_OK)


#: Options that several commands share.
Force = Annotated[
    bool, typer.Option("--force", "--overwrite", help="Overwrite an existing --output.")
]
DropNA = Annotated[
    bool, typer.Option("--dropna", help="Drop rows with missing or infinite values, do not fail.")
]


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options that apply before any command."""


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the user's mistakes into one line on stderr and exit code 2, and Ctrl-C outside a
    search (which keeps its best formula) into exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        # Files are written whole or not at all, so none is left half written.
        typer.echo("Interrupted; no file was left half written.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (ValueError, IndexError, OSError, MissingDependencyError) as error:
        # InputError and ModelFileError are ValueErrors.
        message = str(error) or type(error).__name__
        if isinstance(error, OSError) and error.strerror and error.filename:
            message = f"{error.filename}: {error.strerror}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _write_or_print(text: str, output: Path | None, force: bool) -> None:
    from ..files import write_text_atomic

    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    write_text_atomic(output, text, overwrite=force)


def _formula_text(model: NaluRegressor, fmt: str, index: int | None, backend: str) -> str:
    from .. import export
    from ..model_file import dumps_record

    if fmt == "json":
        return dumps_record(model.to_record()) + "\n"
    if fmt == "latex":
        return model.latex(index) + "\n"
    if fmt == "python":
        return model.to_python(index, backend=backend)
    if fmt == "torch":
        return export.to_torch(model.sympy(index), model.result_.feature_names)
    return export.to_srepr(model.sympy(index)) + "\n"


def _check_output(output: Path | None, force: bool, option: str = "--output") -> None:
    """Fail before the work, not after it, when ``output`` cannot be written."""
    if output is None:
        return
    if not force and (output.exists() or output.is_symlink()):
        raise FileExistsError(f"{output} already exists; pass --force to overwrite it.")
    if output.is_dir():
        raise IsADirectoryError(f"{output} is a folder; give a file name for {option}.")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"folder {output.parent} does not exist; create it first.")


def _check_plot(plot: Path | None, output: Path | None, force: bool) -> None:
    """Fail before the search when the figure could not be drawn or written."""
    if plot is None:
        return
    from ..errors import InputError
    from ..plot import figure_format, require_matplotlib

    require_matplotlib()
    _check_output(plot, force, "--plot")
    if output is not None and plot.resolve() == output.resolve():
        raise InputError("--plot and --output name the same file; give them different names.")
    figure_format(plot)


def _check_rows(table: Table) -> None:
    from ..validation import check_enough_rows

    left = " left after dropping rows with missing values" if table.dropped_lines else ""
    check_enough_rows(len(table.X), str(table.path), unit="data row", note=left)


def _check_magnitudes(table: Table) -> None:
    from ..errors import MagnitudeError
    from ..validation import check_magnitude

    frame = table.X if table.y is None else table.X.assign(**{str(table.y.name): table.y})
    try:
        check_magnitude(frame.to_numpy(), list(frame.columns))
    except MagnitudeError as error:
        raise MagnitudeError(f"{table.path}: {error}") from None


@app.command(epilog=EXIT_CODES)
def fit(
    data: Annotated[
        Path,
        typer.Argument(
            metavar="DATA",
            help="Table with a header line: .csv, .tsv or .parquet; .csv and .tsv may be "
            "compressed (.csv.gz, .bz2, .xz, .zip).",
            show_default=False,
        ),
    ],
    target: Annotated[str, typer.Option("--target", "-t", help="Column to explain.")],
    features: Annotated[
        str | None,
        typer.Option(
            "--features", "-f", help="Comma-separated input columns (default: all other columns)."
        ),
    ] = None,
    extrapolation_data: Annotated[
        Path | None,
        typer.Option(
            help="Table with the same columns, to check the formula on (e.g. wider ranges); "
            "by default the rows at the edge of the input ranges are held out instead."
        ),
    ] = None,
    effort: Annotated[
        float | None,
        typer.Option(
            help="How much search to plan (default 1: about two minutes on 2 cores when "
            "nothing is found; 2 plans twice the training). The plan is set by work, so the "
            "same seed gives the same formula on any machine.",
            min=0,
        ),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            help="Optional cap in seconds; after it the search stops with the best formula so "
            "far (the first, simplest group of architectures always runs to the end). A "
            "search the cap ended may give another formula when rerun.",
            min=0,
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same formula.")
    ] = 0,
    n_jobs: Annotated[int, typer.Option(help="Architectures trained in parallel.")] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Run the search's jobs on the Dask cluster whose scheduler listens at ADDRESS, "
            "e.g. tcp://10.0.0.5:8786 (needs pip install 'nalu-sr[dask]'; every thread of the "
            "cluster is used, whatever --n-jobs says).",
        ),
    ] = None,
    architectures: Annotated[
        str | None,
        typer.Option(help="Comma-separated architectures to try, e.g. NAU,NMU (default: all)."),
    ] = None,
    restarts: Annotated[
        int | None, typer.Option(help="Trained copies per target scale.", min=1)
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps per run.", min=1)] = None,
    export_format: Annotated[
        FitExport | None,
        typer.Option(
            "--export",
            help="Format of --output (default json: the model file) or, without --output, "
            "extra output printed after the results.",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the model or the export here.")
    ] = None,
    force: Force = False,
    dropna: DropNA = False,
    top: Annotated[int, typer.Option(help="Candidates shown in the table.", min=1)] = 10,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the formula (or the export).")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also draw the fit to this image: PNG, SVG or PDF, by the name's ending "
            "(--force overwrites it; needs pip install 'nalu-sr[plot]').",
        ),
    ] = None,
) -> None:
    """Find a formula giving TARGET from the other columns of DATA.

    Shows a progress bar while searching, then the best candidates,
    the chosen formula and how it did on held-out input ranges.

    Examples:

      nalu-sr fit datasets/ohms_law.csv --target V

      nalu-sr fit data.csv -t y -f a,b,c --effort 2 --output model.json

      nalu-sr fit data.csv -t y --extrapolation-data wide.csv --export latex

      nalu-sr fit data.csv -t y --scheduler tcp://10.0.0.5:8786

      nalu-sr fit data.csv -t y --plot fit.png
    """
    with _user_errors():
        # The tables are read before the library is imported, so that a wrong file name or a
        # bad cell is reported at once rather than after seconds of loading torch.
        from .csv_input import parse_names, read_table

        _check_output(output, force)
        _check_plot(plot, output, force)
        table = read_table(
            data, target=target, features=parse_names(features, "--features"), dropna=dropna
        )
        extrapolation = None
        if extrapolation_data is not None:
            extrapolation = read_table(
                extrapolation_data, target=target, features=list(table.X.columns), dropna=dropna
            )
        from ..estimator import NaluRegressor

        _check_rows(table)
        for read in (table, extrapolation):
            if read is not None:
                _check_magnitudes(read)
        if not quiet:
            for read in (table, extrapolation):
                if read is not None and read.dropped_lines:
                    _err.print(read.dropped_message())
        options = {
            "effort": effort,
            "max_time": max_time,
            "restarts": restarts,
            "steps": steps,
            "architectures": parse_names(architectures, "--architectures"),
        }
        model = NaluRegressor(
            random_state=seed,
            # n_jobs=1 would keep the search in this process; -1 uses the whole cluster.
            n_jobs=-1 if scheduler is not None else n_jobs,
            **{name: value for name, value in options.items() if value is not None},
        )
        try:
            with (
                _cluster(scheduler),
                render.progress_bar(_err, enabled=not quiet) as progress,
                warnings.catch_warnings(),
            ):
                warnings.filterwarnings("ignore", message="the search was interrupted")
                model.fit(
                    table.X,
                    table.y,
                    None if extrapolation is None else extrapolation.X,
                    None if extrapolation is None else extrapolation.y,
                    progress=progress,
                )
        except KeyboardInterrupt:
            typer.echo("Interrupted before any formula was found; nothing written.", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        _report_fit(model, export_format, output, force, top, quiet)
        if plot is not None:
            _write_plot(model, table, extrapolation, plot, force, quiet)
    if model.result_.interrupted:
        typer.echo("Search interrupted: the result above is the best found so far.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if model.exact_ else EXIT_NOT_EXACT)


@contextmanager
def _cluster(address: str | None) -> Iterator[None]:
    """Send the search's jobs to the Dask scheduler at ``address``; no-op without one."""
    if address is None:
        yield
        return
    from ..search.parallel import dask_backend

    with dask_backend(address):
        yield


def _report_fit(
    model: NaluRegressor,
    export_format: FitExport | None,
    output: Path | None,
    force: bool,
    top: int,
    quiet: bool,
) -> None:
    """Print the outcome of a search, then write ``--output`` or print ``--export``."""
    fmt = (export_format or FitExport.json).value
    printed_export = output is None and export_format is not None
    if quiet and not printed_export:
        typer.echo(str(model.formula_))
    if not quiet:
        _out.print(render.candidates_table(model, top))
        for line in render.verdict(model):
            _out.print(line)
        if printed_export:
            _out.print()
    if printed_export or output is not None:
        _write_or_print(_formula_text(model, fmt, None, "numpy"), output, force)
    if output is not None and not quiet:
        _out.print(f"Wrote {output}")


def _write_plot(
    model: NaluRegressor,
    table: Table,
    extrapolation: Table | None,
    path: Path,
    force: bool,
    quiet: bool,
) -> None:
    """Draw the fit on the rows it was fitted and checked on, and write it to ``path``."""
    from ..plot import save_figure

    extra = (None, None) if extrapolation is None else (extrapolation.X, extrapolation.y)
    save_figure(model.plot(table.X, table.y, *extra), path, overwrite=force)
    if not quiet:
        _out.print(f"Wrote {path}", markup=False)


@app.command(epilog=EXIT_CODES)
def predict(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model file from fit.")],
    data: Annotated[
        Path,
        typer.Argument(metavar="DATA", help="Table with the model's feature columns, as for fit."),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the CSV here (default: print it); a name ending in .tsv writes tabs, "
            "one ending in .gz, .bz2, .xz or .zip compresses it.",
        ),
    ] = None,
    column: Annotated[str, typer.Option(help="Name of the prediction column.")] = "prediction",
    index: Annotated[
        int | None, typer.Option(help="Use candidate row INDEX (the # of fit's table).")
    ] = None,
    force: Force = False,
    dropna: DropNA = False,
) -> None:
    """Evaluate a saved formula on every row of DATA.

    Writes the feature columns and a prediction column as CSV.

    Examples:

      nalu-sr predict model.json new_data.csv

      nalu-sr predict model.json new_data.parquet --output predictions.csv.gz
    """
    with _user_errors():
        import numpy as np

        from ..errors import InputError
        from ..estimator import DomainWarning, NaluRegressor, PoleWarning
        from ..files import write_bytes_atomic
        from .csv_input import read_table
        from .table_formats import output_format, table_bytes, table_text

        _check_output(output, force)
        if output is not None:
            output_format(output)  # a name predict cannot write is refused before the work
        model = NaluRegressor.load(model_path)
        names = list(model.result_.feature_names)
        if column in names:
            raise InputError(f"--column {column!r} is a feature of the model; choose another name.")
        table = read_table(data, target=None, features=names, dropna=dropna)
        frame = table.X.copy()
        # A model fitted on an array has no column names to compare the table's with.
        X = table.X if hasattr(model, "feature_names_in_") else table.X.to_numpy()
        with warnings.catch_warnings(record=True) as poles:
            warnings.simplefilter("always", PoleWarning)
            warnings.simplefilter("always", DomainWarning)
            frame[column] = model.predict(X, index=index)
        if output is None:
            typer.echo(table_text(frame), nl=False)
        else:
            write_bytes_atomic(output, table_bytes(frame, output), overwrite=force)
        undefined = ~np.isfinite(frame[column].to_numpy())
        if undefined.any():
            lines = [table.lines[i] for i in np.flatnonzero(undefined)]
            _err.print(render.undefined_message(model, table.path, lines, table.unit))
        for pole in poles:
            _err.print(f"warning: {pole.message}")


@app.command("export", epilog=EXIT_CODES)
def export_command(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model file from fit.")],
    fmt: Annotated[
        FormulaFormat,
        typer.Option(
            "--format",
            help="latex, python (a function), sympy (srepr) or torch (a module with a "
            "torch.nn.Module class).",
        ),
    ] = FormulaFormat.latex,
    index: Annotated[
        int | None, typer.Option(help="Export candidate row INDEX (the # of fit's table).")
    ] = None,
    backend: Annotated[
        Backend, typer.Option(help="For python: NumPy arrays or math on floats.")
    ] = Backend.numpy,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: print it).")
    ] = None,
    force: Force = False,
) -> None:
    """Print a saved formula as LaTeX, a Python function, SymPy srepr or a PyTorch module.

    Examples:

      nalu-sr export model.json --format latex

      nalu-sr export model.json --format python --output formula.py

      nalu-sr export model.json --format torch --output formula_torch.py
    """
    with _user_errors():
        from ..estimator import NaluRegressor

        _check_output(output, force)
        model = NaluRegressor.load(model_path)
        _write_or_print(_formula_text(model, fmt.value, index, backend.value), output, force)


@datasets_app.command("list", epilog=EXIT_CODES)
def datasets_list() -> None:
    """List the formula suite.

    Example:

      nalu-sr datasets list
    """
    _out.print(render.datasets_table())


@datasets_app.command("make", epilog=EXIT_CODES)
def datasets_make(
    name: Annotated[str, typer.Argument(help="Suite entry, see `nalu-sr datasets list`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write to.")] = Path("."),
    noise: Annotated[
        float, typer.Option(help="Gaussian noise on the training target, relative to its RMS.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (non-negative).")] = 0,
    force: Annotated[
        bool, typer.Option("--force", "--overwrite", help="Overwrite existing files.")
    ] = False,
) -> None:
    """Write the tables of the suite entry NAME.

    NAME.csv is the training table, NAME_wide.csv the extrapolation table and NAME.json
    the entry's manifest.

    Example:

      nalu-sr datasets make ohms_law --out data/
    """
    with _user_errors():
        from ..datasets import write_suite_entry

        paths = write_suite_entry(name, out, noise=noise, random_state=seed, overwrite=force)
    for path in paths:
        _out.print(f"Wrote {path}")


def main() -> None:
    """Entry point of the ``nalu-sr`` executable."""
    app(prog_name="nalu-sr")
