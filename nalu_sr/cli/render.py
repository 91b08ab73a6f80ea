"""What the command line shows: the progress bar, the candidates table, the verdict."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..progress import ProgressCallback, progress_display

if TYPE_CHECKING:
    import pandas as pd

    from ..estimator import NaluRegressor


@contextmanager
def progress_bar(console: Console, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """The search's progress bar on ``console``, with the best formula so far, removed when
    the search ends; None when disabled or when ``console`` cannot draw a bar (a file)."""
    if not enabled:
        yield None
        return
    with progress_display(console, lines=False, transient=True) as update:
        yield update


def number(value: float) -> str:
    """A loss for a table cell: three significant digits, ``-`` when undefined."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"


def candidates_table(model: NaluRegressor, top: int = 10) -> Table:
    """The ``top`` candidates with the lowest validation loss, and the chosen one, simplest first.

    The ``#`` column is the row of ``candidates_``, the ``--index`` of ``predict`` and
    ``export``.
    """
    frame: pd.DataFrame = model.candidates_
    best = frame.sort_values(["loss_validation", "complexity"], kind="stable").index[:top]
    rows = frame.loc[sorted(set(best) | {model.chosen_})]
    rows = rows.sort_values(["complexity", "loss_validation"], kind="stable")
    shown = len(rows)
    title = f"Candidates: {shown} of {len(frame)}, lowest validation loss (relative RMSE)"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("formula", overflow="fold", ratio=1)
    table.add_column("size", justify="right")
    for split in ("train", "valid.", "extrap."):
        table.add_column(split, justify="right")
    table.add_column("holds")
    table.add_column("exact")
    for index, row in rows.iterrows():
        chosen = index == model.chosen_
        table.add_row(
            f"{'*' if chosen else ''}{index}",
            Text(str(row["formula"])),
            str(row["complexity"]),
            number(row["loss_train"]),
            number(row["loss_validation"]),
            number(row["loss_extrapolation"]),
            "yes" if row.get("holds", row["exact"]) else "no",
            "yes" if row["exact"] else "no",
            style="bold" if chosen else None,
        )
    table.caption = "* chosen formula"
    table.caption_justify = "left"
    return table


def equation(model: NaluRegressor, index: int | None = None) -> str:
    """``target = formula`` (or the formula alone when the target has no name)."""
    formula = str(model.sympy(index))
    return f"{model.target_name_} = {formula}" if model.target_name_ else formula


def verdict(model: NaluRegressor) -> list[Text]:
    """Lines stating the chosen formula and how it did on the held-out rows."""
    check = model.extrapolation_
    ranges = ", ".join(
        f"{name} in [{low:.4g}, {high:.4g}]" for name, (low, high) in check["fitted_ranges"].items()
    )
    where = (
        "the extrapolation data"
        if check["explicit"]
        else "the outer edge of the input ranges (never trained on)"
    )
    lines = [
        Text.assemble(("Formula: ", "bold"), equation(model)),
        Text(f"Fitted on: {ranges}"),
        Text(f"Checked on: {check['rows']} rows from {where}"),
    ]
    if "relative_rmse" in check:
        lines.append(
            Text(
                f"Error there: relative RMSE {number(check['relative_rmse'])}, largest relative "
                f"error {number(check['max_relative_error'])} (tolerance {check['tolerance']:.3g})"
            )
        )
    dropped = getattr(model, "dropped_features_", {})  # absent from models pickled before
    if dropped:
        from ..validation import describe_dropped

        left_out = describe_dropped(dropped)
        lines.append(Text(f"Left out of the search: {left_out}; the formula does not use them."))
    reseeded = model.result_.reseeded
    if reseeded:
        lines.append(
            Text(
                f"Re-seeded: {reseeded} trained cop{'ies' if reseeded > 1 else 'y'} went NaN or "
                "infinite and started afresh; the search went on."
            )
        )
    if model.result_.timed_out:
        lines.append(
            Text(
                "Stopped by --max-time before the search plan was done: how far it got "
                "depends on the machine, so a rerun may give another formula."
            )
        )
    if model.exact_:
        exact = ("yes", "green")
    elif model.result_.holds:
        exact = ("no: it holds within the noise, with estimated constants", "yellow")
    else:
        exact = ("no", "red")
    lines.append(Text.assemble(("Exact: ", "bold"), exact))
    lines.append(Text(model.message_))
    return lines


def undefined_message(
    model: NaluRegressor, path: object, lines: list[int], unit: str = "line"
) -> str:
    """Warning for rows where the formula is undefined (a division by zero, say); ``lines`` are
    line numbers, or row numbers when ``unit`` is ``"row"`` (Parquet files)."""
    n = len(lines)
    shown = ", ".join(map(str, lines[:8])) + (f" and {n - 8} more" if n > 8 else "")
    return (
        f"warning: the formula {model.formula_} is undefined or infinite on {n} "
        f"row{'s' if n > 1 else ''} of {path} ({unit}{'s' if n > 1 else ''} {shown}), for "
        "example a division by zero or a root of a negative number; their predictions are "
        "written as nan or inf."
    )


def datasets_table() -> Table:
    """The formula suite: name, formula and inputs of each entry."""
    from ..datasets import SUITE

    table = Table(title="Formula suite (nalu-sr datasets make NAME)", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("formula", overflow="fold", ratio=1)
    table.add_column("inputs", justify="right")
    table.add_column("rows", justify="right")
    for entry in SUITE.values():
        formula = entry.formula if len(entry.formula) <= 60 else entry.description
        table.add_row(
            entry.name,
            Text(formula),
            str(len(entry.inputs)),
            f"{entry.n_samples} / {entry.n_wide_samples}",
        )
    table.caption = "rows: training table / extrapolation (wide) table"
    table.caption_justify = "left"
    return table
