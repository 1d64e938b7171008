"""Shared CLI helpers: consoles and turning graph errors into exit code 2."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ..errors import GraphErrors
from ..graph import Graph, load_graph

import sys

# Tables stay readable when output goes to a pipe or CI log (rich would fall back to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def load_or_exit(path: Path, overrides: list[str] | None = None) -> Graph:
    """Load and validate a graph; on error print every problem (file:line:col, hint) and exit 2."""
    try:
        return load_graph(path, overrides)
    except GraphErrors as exc:
        for e in exc.errors:
            err_console.print(f"[bold red]error[/] {e}", markup=True, highlight=False)
        raise typer.Exit(code=2) from None
