"""`emgflow validate`: check graph files without starting anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..hosts import crossing
from .common import console, load_or_exit


def validate(
    graphs: Annotated[list[Path], typer.Argument(help="Graph YAML files to check.")],
    set_: Annotated[list[str], typer.Option("--set", help="Override a param: NODE.PARAM=VALUE (repeatable).")] = [],
) -> None:
    """Validate graph files: syntax, node types, params, ports, wiring, cycles, stream rates, hosts (and the edges
    that cross them). Exit 2 on any error."""
    failed = False
    for path in graphs:
        try:
            g = load_or_exit(path, set_)
        except typer.Exit:
            failed = True
            continue
        console.print(f"[green]ok[/] {path} ({g.name}: {len(g.nodes)} nodes"
                      + (f" on {len(g.hosts)} hosts" if g.hosts else "") + ")", highlight=False)
        for e in crossing(g):
            console.print(escape(f"  crosses hosts: {e.source}.{e.output} ({g.nodes[e.source].host}) -> "
                                 f"{e.node}.{e.port} ({g.nodes[e.node].host}), tcp+CURVE"), highlight=False)
    if failed:
        raise typer.Exit(code=2)
