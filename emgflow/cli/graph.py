"""`emgflow graph`: show a graph's wiring as text, or as Graphviz dot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..hosts import crossing
from .common import console, load_or_exit


def graph(
    graph: Annotated[Path, typer.Argument(help="Graph YAML file.")],
    dot: Annotated[bool, typer.Option("--dot", help="Print Graphviz dot instead of text.")] = False,
    set_: Annotated[list[str], typer.Option("--set", help="Override a param: NODE.PARAM=VALUE.")] = [],
) -> None:
    """Print the validated wiring: nodes in start order, each input with its source, policy and stream rate."""
    g = load_or_exit(graph, set_)
    cross, processes = crossing(g), g.processes()
    if dot:
        lines = [f'digraph "{g.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
        for host in g.hosts or [""]:  # a cluster per host, holding its nodes and its groups' clusters
            pad = "    " if host else "  "
            if host:
                lines.append(f'  subgraph "cluster_host_{host}" {{ label="host {host} ({g.hosts[host].address})";')
                lines += [f'{pad}"{n}";' for n in g.order if g.nodes[n].host == host and len(processes[g.nodes[n].process]) == 1]
            for name, members in processes.items():
                if len(members) > 1 and g.nodes[members[0]].host == host:
                    lines.append(f'{pad}subgraph "cluster_{name}" {{ label="group {name}"; ' +
                                 " ".join(f'"{m}";' for m in members) + " }")
            if host:
                lines.append("  }")
        for nid in g.order:
            lines.append(f'  "{nid}" [label="{nid}\\n({g.nodes[nid].type})"];')
        for nid in g.order:
            for port, e in g.nodes[nid].inputs.items():
                style = (' style=dashed' if e.policy == "latest" else "") + (" color=red" if e in cross else "")
                lines.append(f'  "{e.source}" -> "{nid}" [label="{e.output} -> {port}"{style}];')
        lines.append("}")
        typer.echo("\n".join(lines))
        return
    console.print(f"[bold]{g.name}[/] ({g.file}): {len(g.nodes)} nodes in {len(processes)} processes", highlight=False)
    for name, members in processes.items():
        if len(members) > 1:
            console.print(escape(f"  group {name}: {', '.join(members)} (one process; edges inside are calls)"),
                          highlight=False)
    for nid in g.order:
        spec = g.nodes[nid]
        params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
        group = (f" [host {spec.host}]" if spec.host else "") + (f" [group {spec.group}]" if spec.group else "")
        console.print(f"  [bold]{nid}[/] : {spec.type}" + escape(group + (f" ({params})" if params else "")),
                      highlight=False)
        for port, e in spec.inputs.items():
            info = g.nodes[e.source].streams.get(e.output)
            rate = f" @ {info.rate:g} Hz" if info and info.rate else ""
            via = f" (crosses hosts {g.nodes[e.source].host} -> {spec.host}, tcp+CURVE)" if e in cross else ""
            console.print(escape(f"      {port} <- {e.source}.{e.output}  [{e.policy}, queue {e.queue}]{rate}{via}"),
                          highlight=False)
