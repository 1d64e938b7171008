"""A chain across two hosts: source on host a -> relay on host b -> sink on host a (two tcp hops over
a veth pair between two network namespaces; root only), Myo-like traffic, as

- ``floor plain``: the raw pyzmq chain (``emgflow/floor.py``) over plain tcp;
- ``floor curve``: the same raw chain with every socket speaking CURVE (encryption, no gate);
- ``emgflow``: the graph as ``emgflow run`` runs it across hosts (an ``emgflow agent`` on b, CURVE
  with each host's own keys, ZAP gates, the clock offset mapped onto a's clock),

alternating in rounds in the same run so a change in machine load hits all three alike. The goal
(issue 23): emgflow's p50 <= 1.15x the CURVE floor. Also prints emgflow's per-hop figures: the
transport time of each cross-host hop (on one clock) and the relay's own time.

    sudo python bench/crosshost_chain.py --seconds 30 --rounds 3 --out bench/results/crosshost-chain.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq.auth
from rich.console import Console
from rich.table import Table

from emgflow.benchmark import WARMUP, run_graph_latency
from emgflow.keys import create
from emgflow.tools.netns import TwoHosts
from emgflow.trace import percentiles

AGENT_PORT = 7700
A, B = "10.77.0.1", "10.77.0.2"


def floor_round(hosts: TwoHosts, tmp: Path, args: dict, curve: dict | None) -> np.ndarray:
    """One raw chain: source (a) binds, relay (b) connects and binds, sink (a) connects."""
    out = tmp / "floor.npz"
    out.unlink(missing_ok=True)
    spec = json.dumps({**args, "out": str(out), **({"curve": curve} if curve else {})})
    hop0, hop1 = f"tcp://{A}:7801", f"tcp://{B}:7802"
    cmd = (sys.executable, "-m", "emgflow.floor")
    procs = [hosts.exec("a", *cmd, "sink", hop1, "-", spec), hosts.exec("b", *cmd, "relay", hop0, hop1, spec),
             hosts.exec("a", *cmd, "source", "-", hop0, spec)]
    for p in reversed(procs):
        _, err = p.communicate(timeout=args["count"] / args["rate"] + 60)
        if p.returncode:
            raise RuntimeError(f"floor process failed: {err}")
    seq = np.load(out)["seq"]
    if len(seq) != args["count"]:
        raise RuntimeError(f"floor chain lost messages: {len(seq)} of {args['count']}")
    return np.load(out)["latency_us"][WARMUP:]


def graph_text(keys: Path, args: dict) -> str:
    return (f"name: crosshost-chain\nhosts:\n  a: {{address: {A}, key: {keys}/a.key}}\n"
            f"  b: {{address: {B}, agent: {AGENT_PORT}, key: {keys}/b.key}}\nnodes:\n"
            f"  source: {{type: pulse, params: {{rate: {args['rate']}, channels: {args['channels']}, "
            f"samples: {args['samples']}, count: {args['count']}}}}}\n"
            "  relay: {type: relay, host: b, inputs: {in: source.out}}\n"
            "  sink: {type: discard, inputs: {in: relay.out}}\n")


def emgflow_round(hosts: TwoHosts, tmp: Path, keys: Path, args: dict) -> tuple[np.ndarray, dict, int]:
    """One emgflow chain, its supervisor in host a (this script again, as ``--driver``)."""
    graph, out = tmp / "chain.yaml", tmp / "chain.json"
    graph.write_text(graph_text(keys, args))
    p = hosts.exec("a", sys.executable, __file__, "--driver", str(graph), str(out))
    _, err = p.communicate(timeout=args["count"] / args["rate"] + 120)
    if p.returncode:
        raise RuntimeError(f"emgflow chain failed: {err}")
    nodes = json.loads(out.read_text())
    sink = nodes["sink"]
    lost = args["count"] - sink["stats"]["in"]["in"]["received"] + sum(
        v["dropped"] for n in nodes.values() for v in n["stats"]["in"].values())
    hops = {k[4:]: np.asarray(v)[WARMUP:] for k, v in sink["latency"].items() if k.startswith("hop ")}
    return np.asarray(sink["latency"]["e2e_us"])[WARMUP:], hops, lost


def start_agent(hosts: TwoHosts, tmp: Path, keys: Path) -> None:
    log = tmp / "agent.log"
    hosts.run("b", "agent", "--address", B, "--port", str(AGENT_PORT), "--key", str(keys / "b.key_secret"),
              "--admit", str(keys), log=log)
    deadline = time.monotonic() + 30
    while "listening on" not in log.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the agent did not start: {log.read_text()}")
        time.sleep(0.1)


def report(runs: dict[str, list[np.ndarray]], hop_values: dict[str, list[np.ndarray]], args: argparse.Namespace,
           lost: int) -> dict:
    stats = {k: percentiles(np.concatenate(v)) for k, v in runs.items()}
    table = Table(title=f"a -> b -> a over a veth pair, {args.rate:.0f} msg/s, 1x{args.channels}, {args.rounds} rounds")
    for col in ("chain", "n", "p50 us", "p99 us", "p50 / curve floor", "p99 / curve floor", "round p50 / curve floor"):
        table.add_column(col, justify="left" if col == "chain" else "right")
    floor = stats["floor curve"]
    result = {"rate_hz": args.rate, "channels": args.channels, "rounds": args.rounds, "lost": int(lost), "chains": {}}
    for name, s in stats.items():
        rounds = [float(np.median(a) / np.median(b)) for a, b in zip(runs[name], runs["floor curve"])]
        result["chains"][name] = {**s, "ratio_p50": s["p50_us"] / floor["p50_us"],
                                  "ratio_p99": s["p99_us"] / floor["p99_us"], "round_ratios_p50": rounds}
        table.add_row(name, str(s["n"]), f"{s['p50_us']:.0f}", f"{s['p99_us']:.0f}",
                      f"{s['p50_us'] / floor['p50_us']:.2f}", f"{s['p99_us'] / floor['p99_us']:.2f}",
                      " ".join(f"{r:.2f}" for r in rounds))
    hops = Table(title="emgflow per hop: a->b transport on one clock, a node its own time")
    for col in ("series", "p50 us", "p99 us"):
        hops.add_column(col, justify="left" if col == "series" else "right")
    result["hops"] = {}
    for name, values in hop_values.items():
        s = percentiles(np.concatenate(values))
        result["hops"][name] = s
        hops.add_row(name, f"{s['p50_us']:.0f}", f"{s['p99_us']:.0f}")
    console = Console(width=120)
    console.print(table)
    console.print(hops)
    print(f"lost or dropped: {lost}")
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--driver":
        nodes = run_graph_latency(sys.argv[2])
        Path(sys.argv[3]).write_text(json.dumps(nodes))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200.0, help="messages per second")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0, help="traffic per kind, split across the rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    chain = {"rate": args.rate, "channels": args.channels, "samples": 1,
             "count": int(args.rate * args.seconds / args.rounds) + WARMUP}
    runs: dict[str, list[np.ndarray]] = {"floor plain": [], "floor curve": [], "emgflow": []}
    hop_values: dict[str, list[np.ndarray]] = {}
    lost = 0
    hosts = TwoHosts()
    with tempfile.TemporaryDirectory(prefix="emgflow-crosshost-") as name:
        tmp = Path(name)
        keys = tmp / "keys"
        for host in "ab":
            create(host, keys)
        curve = {"server_key": zmq.auth.load_certificate(str(keys / "a.key"))[0].decode(),
                 "key_file": str(keys / "a.key_secret")}
        try:
            hosts.up()
            start_agent(hosts, tmp, keys)
            for _ in range(args.rounds):
                runs["floor plain"].append(floor_round(hosts, tmp, chain, None))
                runs["floor curve"].append(floor_round(hosts, tmp, chain, curve))
                e2e, hops, n = emgflow_round(hosts, tmp, keys, chain)
                runs["emgflow"].append(e2e)
                lost += n
                for k, v in hops.items():
                    hop_values.setdefault(k, []).append(v)
        finally:
            hosts.down()
    result = report(runs, hop_values, args, lost)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
