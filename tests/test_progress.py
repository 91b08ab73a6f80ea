import importlib.machinery
import io
import sys
import types

import pytest
from rich.console import Console

from nalu_sr.cli import render
from nalu_sr.progress import can_draw, plain_lines, progress_display, verbose_progress
from nalu_sr.search.runner import takes_best

ESCAPE = "\x1b["


@pytest.fixture
def no_forced_terminal(monkeypatch):
    # Either variable would make Rich treat captured output as a terminal.
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)


def _terminal(width=80):
    return Console(file=io.StringIO(), force_terminal=True, width=width)


def _feed(update):
    update(1, 3, "NAU on y", best="2*x + 1")
    update(2, 3, "NMU on y", best="mass [kg]*g")


def test_bar_on_a_terminal_shows_counts_and_the_best_formula():
    console = _terminal()
    with progress_display(console) as update:
        _feed(update)
    shown = console.file.getvalue()
    assert ESCAPE in shown
    assert "trained NMU on y" in shown and "2/3" in shown
    # Formulas are plain text, not Rich markup.
    assert "best so far: mass [kg]*g" in shown


def test_bar_cuts_a_long_formula_to_the_width_of_the_terminal():
    console = _terminal(width=50)
    with progress_display(console) as update:
        update(1, 1, "NAU on y", best=" + ".join(f"x{i}" for i in range(40)))
    shown = [line for line in console.file.getvalue().splitlines() if "best so far" in line]
    assert shown and all(line.startswith("best so far: x0 + x1") for line in shown)
    assert all(len(line) <= 50 and line.endswith("…") for line in shown)


def test_output_that_is_no_terminal_gets_plain_lines(no_forced_terminal):
    console = Console(file=io.StringIO())
    with progress_display(console) as update:
        _feed(update)
    assert console.file.getvalue().splitlines() == [
        "[1/3] trained NAU on y; best so far: 2*x + 1",
        "[2/3] trained NMU on y; best so far: mass [kg]*g",
    ]


def test_plain_lines_leave_out_a_best_formula_not_given():
    file = io.StringIO()
    plain_lines(file)(1, 2, "NAU on y")
    assert file.getvalue() == "[1/2] trained NAU on y\n"


def test_without_lines_no_terminal_shows_nothing(no_forced_terminal):
    with progress_display(Console(file=io.StringIO()), lines=False) as update:
        assert update is None


def test_a_dumb_terminal_gets_plain_lines(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    assert not can_draw(_terminal())


def test_a_notebook_draws_the_bar_only_with_ipywidgets(monkeypatch):
    notebook = Console(file=io.StringIO(), force_jupyter=True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    assert not can_draw(notebook)
    widgets = types.ModuleType("ipywidgets")
    widgets.__spec__ = importlib.machinery.ModuleSpec("ipywidgets", None)
    monkeypatch.setitem(sys.modules, "ipywidgets", widgets)
    assert can_draw(notebook)


def test_verbose_levels_choose_what_is_shown(monkeypatch, capsys):
    def own(done, total, description):
        pass

    with verbose_progress(0) as update:
        assert update is None
    with verbose_progress(1, own) as update:
        assert update is own
    # Level 2 prints plain lines even on a terminal.
    monkeypatch.setenv("FORCE_COLOR", "1")
    with verbose_progress(2) as update:
        _feed(update)
    assert capsys.readouterr().out.startswith("[1/3] trained NAU on y; best so far: 2*x + 1\n")


def test_command_line_bar_shows_the_best_formula_and_goes_away(no_forced_terminal):
    console = _terminal()
    with render.progress_bar(console) as update:
        _feed(update)
    shown = console.file.getvalue()
    assert "best so far: mass [kg]*g" in shown
    # Both lines (bar and formula) are erased when the search ends.
    assert shown.endswith("\x1b[1A\x1b[2K" * 2)
    with render.progress_bar(Console(file=io.StringIO())) as update:
        assert update is None


def test_only_callbacks_with_a_best_parameter_get_the_best_formula():
    def three(done, total, description):
        pass

    def four(done, total, description, best=None):
        pass

    def keyword(done, total, description, *, best):
        pass

    assert not takes_best(three) and not takes_best(lambda *args: None)
    assert takes_best(four) and takes_best(keyword)
    assert not takes_best(print)
