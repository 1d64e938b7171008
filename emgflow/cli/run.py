"""`emgflow run`: start a graph, show live per-node figures, print a summary, exit 0 on a clean stop."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from ..remote import AgentError
from ..supervisor import GraphFailed, NodeProc, Supervisor
from .common import console, err_console, load_or_exit
from .view import DEFAULT_PORT as DEFAULT_VIEW_PORT, open_view


def stats_table(procs: dict[str, NodeProc], elapsed: float, title: str = "") -> Table:
    table = Table(title=title or None, header_style="bold", expand=False)
    hosts = any(p.spec.host for p in procs.values())  # a graph with hosts: say where each node runs
    for col in ("node", "type", *(("host",) if hosts else ()), "process", "state", "in msgs", "out msgs", "msg/s", "dropped", "gaps", "bad", "restarts",
                "e2e p50 ms", "e2e p99 ms", "counters"):
        table.add_column(col, justify="left" if col in ("node", "type", "host", "state", "counters") else "right")
    for nid, p in procs.items():
        s = p.stats or {}
        ins = s.get("in", {})
        received = sum(v["received"] for v in ins.values())
        lat = s.get("latency", {})
        rate = (received or s.get("sent", 0)) / elapsed if elapsed > 0 else 0.0
        table.add_row(
            nid, p.spec.type, *((p.spec.host,) if hosts else ()), p.process, p.state, str(received), str(s.get("sent", 0)), f"{rate:.0f}",
            str(sum(v["dropped"] for v in ins.values())), str(sum(v["gaps"] for v in ins.values())),
            str(s.get("malformed", 0) + sum(v.get("nonfinite", 0) for v in ins.values())), str(p.restarts),
            f"{lat['p50_us'] / 1000:.2f}" if "p50_us" in lat else "-",
            f"{lat['p99_us'] / 1000:.2f}" if "p99_us" in lat else "-",
            " ".join(f"{k}={v}" for k, v in (s.get("counters") or {}).items()),
        )
    return table


def collect_stats(sup: Supervisor, elapsed: float) -> dict[str, Any]:
    """--stats: every node's figures, and what the supervisor refused (strangers on its sockets)."""
    return {"elapsed_s": elapsed,
            "supervisor": {"bad_control": sup.bad_control, "refused_peers": sup.refused},
            "hosts": sup.hosts.figures() if sup.hosts is not None else {},
            "nodes": {nid: {"type": p.spec.type, "host": p.spec.host, "process": p.process, "state": p.state, "restarts": p.restarts, **(p.stats or {})}
                      for nid, p in sup.procs.items()}}


def positive_seconds(value: float | None) -> float | None:
    """``--duration`` must be a finite time > 0 (NaN would never compare as elapsed, 0 or less stops at once)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a finite number of seconds > 0")
    return value


def run(
    graph: Annotated[Path, typer.Argument(help="Graph YAML file.")],
    duration: Annotated[float | None, typer.Option(callback=positive_seconds,
                        help="Stop after this many seconds (default: until the sources end or Ctrl-C).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a param: NODE.PARAM=VALUE (repeatable).")] = [],
    stats: Annotated[Path | None, typer.Option(help="Write per-node figures (messages, drops, latency) to this JSON file.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live table; only the summary.")] = False,
    fuse: Annotated[bool, typer.Option("--fuse", help="Run every node that has no `group:` in one process "
                                                      "(in-process edges: less memory and latency, no isolation).")] = False,
    view: Annotated[bool, typer.Option("--view", help="Serve a live view of the graph in the browser (prints its URL).")] = False,
    view_port: Annotated[int, typer.Option(help="Port of the live view (0: any free port).")] = DEFAULT_VIEW_PORT,
    view_host: Annotated[str, typer.Option(help="Address the view listens on; anything but loopback needs the token printed with the URL.")] = "127.0.0.1",
) -> None:
    """Run a graph until its sources end, DURATION passes, or Ctrl-C / SIGTERM (a clean stop exits 0)."""
    g = load_or_exit(graph, set_)
    g = g.fused() if fuse else g
    t0 = time.monotonic()
    live: Live | None = None
    last_line = [0.0]

    def on_stats(procs: dict[str, NodeProc]) -> None:
        elapsed = time.monotonic() - t0
        if live is not None:
            live.update(stats_table(procs, elapsed, f"{g.name}  {elapsed:.1f} s"))
        elif not quiet and elapsed - last_line[0] >= 5.0:
            last_line[0] = elapsed
            parts = []
            for nid, p in procs.items():
                lat = (p.stats or {}).get("latency", {})
                parts.append(f"{nid}:{p.state}" + (f" {lat['p50_us'] / 1000:.2f}ms" if "p50_us" in lat else ""))
            err_console.print(f"[{elapsed:6.1f}s] " + "  ".join(parts), highlight=False)

    def on_event(node: str, text: str) -> None:
        err_console.print(f"[bold yellow]{node}[/]: {text}", highlight=False)

    try:
        sup = Supervisor(g, on_event=on_event, on_stats=on_stats)
    except (GraphFailed, AgentError) as exc:
        err_console.print(f"[red]error[/]: {exc}", highlight=False)
        raise typer.Exit(code=1) from None
    viewer = open_view(sup, view_port, view_host) if view else None
    err_console.print(f"running [bold]{g.name}[/] ({len(g.nodes)} nodes in {len(sup.processes)} processes); "
                      "Ctrl-C stops it cleanly")
    if not quiet and sys.stderr.isatty():
        live = Live(console=err_console, refresh_per_second=4, transient=True)
        live.start()
    code = 1
    try:
        code = sup.run(duration)
    finally:
        if live is not None:
            live.stop()
        if viewer is not None:
            viewer.close(code)
    elapsed = time.monotonic() - t0
    console.print(stats_table(sup.procs, elapsed, f"{g.name}: summary after {elapsed:.1f} s"))
    if stats is not None:
        stats.write_text(json.dumps(collect_stats(sup, elapsed), indent=2))
    raise typer.Exit(code=code)
