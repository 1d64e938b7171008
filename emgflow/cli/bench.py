"""`emgflow bench chain | graph | codec`: latency figures with the raw pyzmq floor beside them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..trace import percentiles
from .common import console

app = typer.Typer(no_args_is_help=True, help="Latency benchmarks (figures are printed, never asserted).")


def _write(out: Path | None, result: dict) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2))
    console.print(f"wrote {out}")


@app.command()
def chain(
    relays: Annotated[int, typer.Option(min=0, help="Relay nodes between source and sink.")] = 3,
    rate: Annotated[float, typer.Option(min=1, help="Messages per second.")] = 200.0,
    channels: Annotated[int, typer.Option(min=1, help="Channels per message.")] = 8,
    samples: Annotated[int, typer.Option(min=1, help="Samples (rows) per message.")] = 1,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of traffic per chain (all rounds together).")] = 20.0,
    rounds: Annotated[int, typer.Option(min=1, help="Alternate floor and emgflow this many times, pooling "
                                                    "the samples (evens out drifting machine load).")] = 1,
    fused: Annotated[bool, typer.Option("--fused", help="Also run the chain with every node in one process.")] = False,
    out: Annotated[Path | None, typer.Option(help="JSON result file; a latency CDF PNG is written beside it.")] = None,
) -> None:
    """Raw pyzmq floor vs the same chain as an emgflow graph under the real supervisor."""
    from ..benchmark import bench_chain, plot_cdf

    r = bench_chain(relays, rate, channels, samples, duration, rounds, fused)
    table = Table(title=f"source -> {relays} relays -> sink, {rate:g} msg/s, {samples}x{channels}", header_style="bold")
    for col in ("chain", "p50 us", "p99 us", "max us"):
        table.add_column(col, justify="right")
    table.add_row("raw pyzmq floor", f"{r['floor_p50_us']:.0f}", f"{r['floor_p99_us']:.0f}", f"{r['floor_max_us']:.0f}")
    table.add_row("emgflow", f"{r['p50_us']:.0f}", f"{r['p99_us']:.0f}", f"{r['max_us']:.0f}")
    table.add_row("ratio", f"{r['ratio_p50']:.2f}", f"{r['ratio_p99']:.2f}", "")
    if fused:
        table.add_row("emgflow, one process", f"{r['fused_p50_us']:.0f}", f"{r['fused_p99_us']:.0f}", f"{r['fused_max_us']:.0f}")
        table.add_row("ratio, one process", f"{r['fused_ratio_p50']:.2f}", f"{r['fused_ratio_p99']:.2f}", "")
    console.print(table)
    console.print(f"messages {r['messages']}, dropped {r['dropped']}"
                  + (f"; per-round p50 ratios {', '.join(f'{x:.2f}' for x in r['round_ratios_p50'])}"
                     if rounds > 1 else ""))
    _write(out, r)
    if out is not None:
        png = out.with_suffix(".png")
        plot_cdf(r["_samples"], png, f"{relays}-relay chain, {rate:g} msg/s, {samples}x{channels}")
        console.print(f"wrote {png}")


@app.command()
def graph(
    graph: Annotated[Path, typer.Argument(help="Graph YAML file.")],
    duration: Annotated[float | None, typer.Option(help="Seconds to run (default: until the sources end).")] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Override a param: NODE.PARAM=VALUE (repeatable).")] = [],
    fuse: Annotated[bool, typer.Option("--fuse", help="Run every node that has no group in one process.")] = False,
    out: Annotated[Path | None, typer.Option(help="JSON result file; a latency CDF PNG is written beside it.")] = None,
) -> None:
    """Latency of any graph, from its header traces: end to end and per hop, at every node that receives."""
    from ..benchmark import plot_cdf, run_graph_latency

    nodes = run_graph_latency(graph, duration, set_, fuse)
    table = Table(title=f"{graph}", header_style="bold")
    for col in ("node", "path", "n", "p50 us", "p99 us", "max us"):
        table.add_column(col, justify="right")
    result, series = {"nodes": {}}, {}
    for nid, n in nodes.items():
        lat = n["latency"]
        if not lat.get("e2e_us"):
            continue
        e2e = percentiles(lat["e2e_us"])
        result["nodes"][nid] = {"e2e": e2e, "hops": {k[4:]: percentiles(v) for k, v in lat.items() if k.startswith("hop ")}}
        table.add_row(nid, "end to end", str(e2e["n"]), f"{e2e['p50_us']:.0f}", f"{e2e['p99_us']:.0f}", f"{e2e['max_us']:.0f}")
        for hop, p in result["nodes"][nid]["hops"].items():
            table.add_row("", hop, str(p["n"]), f"{p['p50_us']:.0f}", f"{p['p99_us']:.0f}", f"{p['max_us']:.0f}")
        series[nid] = lat["e2e_us"]
    console.print(table)
    leaves = [nid for nid in result["nodes"]] or [""]
    last = result["nodes"].get(leaves[-1], {}).get("e2e", {})
    result.update({"p50_us": last.get("p50_us"), "p99_us": last.get("p99_us"),
                   "dropped": int(sum(v["dropped"] for n in nodes.values() for v in n["stats"].get("in", {}).values()))})
    _write(out, result)
    if out is not None and series:
        plot_cdf(series, out.with_suffix(".png"), f"{graph.name}: end-to-end latency per node")


@app.command()
def codec(
    channels: Annotated[int, typer.Option(help="Channels per message.")] = 8,
    samples: Annotated[int, typer.Option(help="Samples per message.")] = 1,
) -> None:
    """Header encode + decode cost per message (target <= 5 us)."""
    from ..benchmark import bench_codec

    r = bench_codec(channels, samples)
    console.print(f"encode+decode {samples}x{channels}: p50 {r['encode_decode_p50_us']:.2f} us, "
                  f"p99 {r['encode_decode_p99_us']:.2f} us")
