"""A search's progress for people: a live bar in a terminal or a notebook, plain lines elsewhere.

:func:`~nalu_sr.search.find_formula` calls ``progress(done, total, description, best=...)``
after each trained architecture (see :data:`nalu_sr.search.runner.Progress`); the callbacks
made here show those calls. The bar is Rich's (already there for the command line), which
draws in a Jupyter notebook through ipywidgets; where no bar can be drawn (a log file, a pipe,
captured output, a notebook without ipywidgets) it gives way to one plain line per call, with
no escape codes.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

__all__ = ["can_draw", "plain_lines", "progress_display", "verbose_progress"]

#: ``progress(done, total, description, best=None)``; ``best`` is the formula with the lowest
#: validation error so far, or None where the caller does not give it.
ProgressCallback = Callable[..., None]


def can_draw(console: Console) -> bool:
    """Whether ``console`` can show a live bar.

    A terminal can, unless it is a dumb one (``TERM=dumb``); a Jupyter notebook can when
    ipywidgets is installed (Rich draws there through a widget); files and pipes cannot.

    Parameters
    ----------
    console : rich.console.Console

    Returns
    -------
    bool
    """
    if console.is_jupyter:
        return importlib.util.find_spec("ipywidgets") is not None
    return console.is_terminal and not console.is_dumb_terminal


def plain_lines(file: TextIO | None = None) -> ProgressCallback:
    """A callback printing ``[done/total] trained description; best so far: formula``.

    Parameters
    ----------
    file : text file, optional
        Where the lines go; ``sys.stdout`` at the time of each call by default.

    Returns
    -------
    callable
        ``update(done, total, description, best=None)``.
    """

    def update(done: int, total: int, description: str, best: object = None) -> None:
        line = f"[{done}/{total}] trained {description}"
        if best is not None:
            line += f"; best so far: {best}"
        print(line, file=file or sys.stdout, flush=True)

    return update


@contextmanager
def progress_display(
    console: Console | None = None, *, lines: bool = True, transient: bool = False
) -> Iterator[ProgressCallback | None]:
    """A callback showing the search's progress as a bar where ``console`` can draw one.

    The bar shows the architecture just trained, architectures done of the total and the time
    spent, and the best formula so far on a line below it. Where no bar can be drawn (see
    :func:`can_draw`), the callback prints :func:`plain_lines` to the console's file instead,
    or is None when ``lines`` is false.

    Parameters
    ----------
    console : rich.console.Console, optional
        Where to draw; a console on ``sys.stdout`` by default.
    lines : bool, default=True
        Print plain lines where no bar can be drawn; when false, show nothing there.
    transient : bool, default=False
        Remove the bar when the search ends; by default its last state stays on screen.

    Yields
    ------
    callable or None
        ``update(done, total, description, best=None)``, for ``find_formula``'s
        ``progress``.
    """
    console = console or Console()
    if not can_draw(console):
        yield plain_lines(console.file) if lines else None
        return
    columns = (
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with _SearchBar(*columns, console=console, transient=transient) as bar:
        task = bar.add_task("searching", total=None)

        def update(done: int, total: int, description: str, best: object = None) -> None:
            if best is not None:
                bar.best = str(best)
            bar.update(task, completed=done, total=total, description=f"trained {description}")

        yield update


@contextmanager
def verbose_progress(
    verbose: int, progress: ProgressCallback | None = None
) -> Iterator[ProgressCallback | None]:
    """The callback ``NaluRegressor(verbose=...)`` passes to the search.

    Parameters
    ----------
    verbose : int
        0: nothing; 1: a bar (plain lines where none can be drawn); 2 or more: plain lines.
    progress : callable, optional
        The user's own callback, which replaces what ``verbose`` would show.

    Yields
    ------
    callable or None
    """
    if progress is not None or not verbose:
        yield progress
    elif verbose >= 2:
        yield plain_lines()
    else:
        with progress_display() as update:
            yield update


class _SearchBar(Progress):
    """Rich's progress bar with the best formula so far on a line of its own below it, cut to
    the console's width (a long formula would squeeze the bar to nothing)."""

    best = ""

    def get_renderables(self) -> Iterator[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.best:
            # Formulas are plain text: a column called "mass [kg]" is not Rich markup.
            yield Text(f"best so far: {self.best}", no_wrap=True, overflow="ellipsis")
