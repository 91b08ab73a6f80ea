"""The ``nalu-sr`` command line: a thin Typer shell over :mod:`nalu_sr`."""

from .app import app, main

__all__ = ["app", "main"]
