"""`emgflow validate`: check graph files without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, load_or_exit


def validate(
    graphs: Annotated[list[Path], typer.Argument(help="Graph YAML files to check.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override a param: NODE.PARAM=VALUE (repeatable).")] = [],
) -> None:
    """Validate graph files: syntax, node types, params, ports, wiring, cycles, stream rates. Exit 2 on any error."""
    failed = False
    for path in graphs:
        try:
            g = load_or_exit(path, set_)
        except typer.Exit:
            failed = True
            continue
        console.print(f"[green]ok[/] {path} ({g.name}: {len(g.nodes)} nodes)")
    if failed:
        raise typer.Exit(code=2)
