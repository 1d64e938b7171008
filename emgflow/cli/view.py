"""`emgflow run GRAPH --view [--view-port PORT] [--view-host HOST]`: serve the live view of the graph being run."""

from __future__ import annotations

import typer

from ..supervisor import Supervisor
from .common import err_console

DEFAULT_PORT = 8765


def open_view(sup: Supervisor, port: int, host: str) -> "View":  # noqa: F821  (imported below)
    """Start the view on ``host:port`` (a token is required beyond loopback) and say where it is.
    Exits 2 with a clear message when the `view` extra is missing or the port cannot be bound."""
    try:
        from ..view.auth import needs_token, new_token
        from ..view.server import View
    except ImportError as exc:
        err_console.print(f"[bold red]error[/] --view needs the view extra ({exc.name} is missing): "
                          'pip install "emgflow-rt[view]"', highlight=False)
        raise typer.Exit(code=2) from None
    token = new_token() if needs_token(host) else None
    view = View(sup, host=host, port=port, token=token)
    try:
        url = view.start()
    except OSError as exc:
        err_console.print(f"[bold red]error[/] --view: cannot listen on {host}:{port}: {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    err_console.print(f"live view: {url}", highlight=False, soft_wrap=True)
    if token:
        err_console.print(f"[bold yellow]the view listens beyond loopback ({host})[/]: only a browser given the "
                          "token in that URL gets in; anyone who can read it can stop the graph", highlight=False)
    return view
