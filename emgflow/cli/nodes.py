"""`emgflow nodes [NAME]`: the stock nodes with ports, params, defaults and docs."""

from __future__ import annotations

import inspect
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..params import REQUIRED
from ..registry import UnknownNodeType, import_errors, resolve, stock_nodes
from .common import console, err_console


def nodes(
    name: Annotated[str | None, typer.Argument(help="A stock node name (or package.module:Class) for its full doc.")] = None,
) -> None:
    """List the registered nodes (stock and plugins), or document one: ports, params (type, default, unit, range) and help."""
    if name is None:
        table = Table(header_style="bold")
        for col in ("node", "inputs", "outputs", "summary"):
            table.add_column(col)
        for kind, cls in sorted(stock_nodes().items()):
            table.add_row(kind, ", ".join(cls.inputs) or "-", ", ".join(cls.outputs) or "-", escape(cls.doc()))
        console.print(table)
        for kind, why in sorted(import_errors().items()):
            err_console.print(f"[red]error[/] node type {kind!r} failed to import: {escape(why)}")
        if import_errors():
            raise typer.Exit(code=1)
        return
    try:
        cls = resolve(name)
    except UnknownNodeType as exc:
        err_console.print(f"[red]error[/] {exc} ({exc.hint})")
        raise typer.Exit(code=2) from None
    console.print(f"[bold]{cls.kind or name}[/]  ({cls.__module__}.{cls.__name__})\n")
    console.print(escape(inspect.cleandoc(cls.__doc__ or "")), highlight=False)
    ports = Table(title="ports", header_style="bold", title_justify="left")
    for col in ("port", "direction", "policy", "queue", "help"):
        ports.add_column(col)
    for p in cls.inputs.values():
        ports.add_row(p.name, "in" + (" (optional)" if p.optional else ""), p.policy, str(p.queue), escape(p.help))
    for p in cls.outputs.values():
        ports.add_row(p.name, "out", "", "", escape(p.help))
    console.print(ports)
    params = Table(title="params", header_style="bold", title_justify="left")
    for col in ("param", "type", "default", "unit", "range", "help"):
        params.add_column(col)
    for p in cls.params.values():
        params.add_row(p.name, p.type_name(), "(required)" if p.default is REQUIRED else repr(p.default),
                       p.unit, p.doc_range(), escape(p.help))
    console.print(params)
