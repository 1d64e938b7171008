"""`emgflow agent`: serve this host's share of graphs run from another host (see emgflow/agent.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import zmq

from ..agent import ORPHAN_S, Agent
from .common import err_console


def agent(
    address: Annotated[str, typer.Option(help="This host's address, as the graph's `hosts:` gives it.")],
    key: Annotated[Path, typer.Option(help="This host's secret key file (NAME.key_secret from `emgflow keys NAME`).")],
    admit: Annotated[Path, typer.Option(help="Folder of the public keys (NAME.key) of the hosts allowed to run graphs here.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port the graph's `agent:` names.")] = 7700,
    orphan_s: Annotated[float, typer.Option(min=1.0, help="Stop a supervisor's processes after it is silent this long (s).")] = ORPHAN_S,
) -> None:
    """Run node processes for supervisors on other hosts, admitting only the listed keys (tcp+CURVE).
    Logs to stderr; SIGTERM or Ctrl-C stops it and every process it runs. Exit 2 on a bad key or address."""
    try:
        server = Agent(address, port, str(key), str(admit), orphan_s)
    except (OSError, ValueError, zmq.ZMQError) as exc:
        err_console.print(f"[red]error[/]: {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    raise typer.Exit(code=server.serve())
