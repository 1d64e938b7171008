"""The live view in the browser: `emgflow run GRAPH --view` serves it for the graph it runs;
`emgflow view` attaches one to a graph that `emgflow run` is already running on this machine."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

if TYPE_CHECKING:  # the view extra may be missing: open_view says so
    from ..view.server import Run, View

import typer

from .common import err_console

DEFAULT_PORT = 8765


def open_view(sup: "Run", port: int, host: str) -> "View":
    """Start a view of ``sup`` (a Supervisor, or an attached run) on ``host:port``, a token required
    beyond loopback, and say where it is. Exits 2 with a clear message when the `view` extra is
    missing or the port cannot be bound."""
    try:
        from ..view.auth import needs_token, new_token
        from ..view.server import View
    except ImportError as exc:
        err_console.print(f"[bold red]error[/] the live view needs the view extra ({exc.name} is missing): "
                          'pip install "emgflow-rt[view]"', highlight=False)
        raise typer.Exit(code=2) from None
    token = new_token() if needs_token(host) else None
    view = View(sup, host=host, port=port, token=token)
    try:
        url = view.start()
    except OSError as exc:
        err_console.print(f"[bold red]error[/] the live view cannot listen on {host}:{port}: {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    err_console.print(f"live view: {url}", highlight=False, soft_wrap=True)
    if token:
        err_console.print(f"[bold yellow]the view listens beyond loopback ({host})[/]: only a browser given the "
                          "token in that URL gets in; anyone who can read it can stop the graph", highlight=False)
    return view


def view(
    run: Annotated[int | None, typer.Option("--run", help="PID of the `emgflow run` to watch (needed when several run).")] = None,
    port: Annotated[int, typer.Option(help="Port of the live view (0: any free port).")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Address the view listens on; anything but loopback needs the token printed with the URL.")] = "127.0.0.1",
) -> None:
    """Serve a live view of a graph `emgflow run` is running on this machine, until it ends or Ctrl-C
    (which closes the view and leaves the graph running)."""
    from ..view.attach import AttachedRun, running_runs

    runs = running_runs()
    if run is not None and run not in runs:
        err_console.print(f"[bold red]error[/] no emgflow run with PID {run} on this machine "
                          f"(running: {', '.join(map(str, runs)) or 'none'})", highlight=False)
        raise typer.Exit(code=2)
    if run is None and len(runs) != 1:
        listed = "; ".join(f"--run {pid}" for pid in runs)
        err_console.print("[bold red]error[/] " + ("no emgflow run is running on this machine" if not runs else
                          f"{len(runs)} emgflow runs are running: pick one with {listed}"), highlight=False)
        raise typer.Exit(code=2)
    attached = AttachedRun(runs[run if run is not None else next(iter(runs))])
    served = open_view(attached, port, host)
    err_console.print(f"watching {attached.graph.name} (PID {attached.pid}); Ctrl-C closes the view only")
    exit_code: int | None = None
    try:
        while attached.refresh():
            time.sleep(0.25)
        failed = any(p.state == "failed" for p in attached.procs.values())
        exit_code = 1 if failed else 0
    except KeyboardInterrupt:
        pass
    served.close(exit_code)
