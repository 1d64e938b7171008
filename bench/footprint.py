"""What a graph costs a small machine: memory, CPU, start-up and latency of all its processes.

Runs each graph at real time under the real supervisor (in this process) while a sampler reads
/proc for every descendant (node processes and anything they spawn): resident memory (VmRSS) and
CPU time. Steady state is the run after its first ``--settle`` seconds. Start-up is launch -> the
first message at every sink (nodes nobody consumes); spawn -> ready is per process.

    python bench/footprint.py                       # db5-gestures vs db5-gestures-embedded + a plain chain
    python bench/footprint.py --seconds 20 --out bench/results/footprint.json

Goals (issue 22, 2-core VM): embedded total RSS <= 600 MB, a plain node process <= 40 MB and
<= 0.4 s spawn -> ready, CPU <= 30 % of one core, gesture decision at the hand p99 <= 5 ms,
start-up <= 3 s. Figures are printed and written, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from procstat import TICK, Sampler

from emgflow.graph import load_graph
from emgflow.supervisor import Supervisor
from emgflow.trace import percentiles

ROOT = Path(__file__).resolve().parents[1]
CHAIN = """
name: plain-chain
nodes:
  source: {type: pulse, params: {rate: 200, channels: 16, samples: 2}}
  relay: {type: relay, inputs: {in: source.out}}
  rms: {type: rms, inputs: {in: relay.out}, params: {window: 20, step: 2}}
  sink: {type: discard, inputs: {in: rms.out}}
"""


def measure(path: Path, sets: list[str], seconds: float, settle: float) -> dict:
    graph = load_graph(path, sets)
    sinks = [n for n in graph.order if not any(e.source == n for s in graph.nodes.values() for e in s.inputs.values())]
    sup = Supervisor(graph, on_event=lambda n, t: print(f"[{n}] {t}", file=sys.stderr))
    sampler = Sampler()
    launch_ns = time.monotonic_ns()
    sampler.start()
    code = sup.run(seconds)
    sampler.done.set()
    sampler.join()
    if code:
        raise RuntimeError(f"{path} failed (exit {code})")
    # steady state: after the settle time, before the supervisor began to stop the graph
    t0, t1 = launch_ns / 1e9 + settle, sup.started_at + seconds - 2 * sampler.period
    steady = [(t, s) for t, s in sampler.samples if t0 <= t <= t1 and s]
    if len(steady) < 2:
        raise RuntimeError(f"{path}: no steady state to measure (raise --seconds above --settle)")
    (ta, first), (tb, last) = steady[0], steady[-1]
    cpu = sum(last[p][2] - first[p][2] for p in last if p in first) / TICK / (tb - ta)
    rss_total = [sum(v[1] for v in s.values()) / 1024 for _, s in steady]
    per_process: dict[str, float] = {}
    for _, s in steady:
        for name, rss, _ in s.values():
            per_process[name] = max(per_process.get(name, 0.0), rss / 1024)
    first_rx = [sup.procs[n].stats.get("first_rx_ns", 0) for n in sinks]
    latency = {n: percentiles(np.asarray(p.latency.get("e2e_us", []))) for n, p in sup.procs.items()
               if p.latency.get("e2e_us")}
    return {
        "graph": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name,
        "processes": max(len(s) for _, s in steady), "node_processes": len(sup.processes),
        "rss_total_mb": float(np.median(rss_total)), "rss_total_max_mb": float(max(rss_total)),
        "rss_per_process_max_mb": dict(sorted(per_process.items(), key=lambda kv: -kv[1])),
        "cpu_one_core_pct": 100 * cpu,
        "startup_s": (max(first_rx) - launch_ns) / 1e9 if all(first_rx) else None,
        "spawn_to_ready_s": {name: (p.ready_ns - p.spawned_ns) / 1e9 for name, p in sup.processes.items()},
        "latency_us": latency,
    }


def show(r: dict) -> None:
    print(f"\n== {r['graph']}: {r['node_processes']} node processes ({r['processes']} with their children)")
    print(f"   total RSS {r['rss_total_mb']:.0f} MB (max {r['rss_total_max_mb']:.0f}), CPU {r['cpu_one_core_pct']:.0f} % "
          f"of one core, start-up {r['startup_s'] or float('nan'):.2f} s")
    print("   RSS per process (max MB): " + ", ".join(f"{k} {v:.0f}" for k, v in r["rss_per_process_max_mb"].items()))
    print("   spawn -> ready (s): " + ", ".join(f"{k} {v:.2f}" for k, v in r["spawn_to_ready_s"].items()))
    for node, p in r["latency_us"].items():
        print(f"   {node:18s} e2e p50 {p['p50_us'] / 1000:6.2f} ms  p99 {p['p99_us'] / 1000:6.2f} ms  (n {p['n']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="run time per graph (real time)")
    ap.add_argument("--settle", type=float, default=8.0, help="seconds after launch not counted as steady state")
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    args = ap.parse_args()
    os.environ.setdefault("EMGFLOW_DATA", str(ROOT.parent / "shared" / "data"))
    results = []
    with tempfile.TemporaryDirectory(prefix="emgflow-footprint-") as tmp:
        chain = Path(tmp) / "chain.yaml"
        chain.write_text(CHAIN)
        real_time = ["source.speed=1", "source.stop_s=200"]
        cases = [(ROOT / "graphs/db5-gestures.yaml", real_time + [f"hand.out_dir={tmp}/h1", f"hand_angles.out_dir={tmp}/h2"]),
                 (ROOT / "graphs/db5-gestures-embedded.yaml", real_time),
                 (chain, [])]
        for path, sets in cases:
            results.append(measure(path, sets, args.seconds, args.settle))
            show(results[-1])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"seconds": args.seconds, "settle_s": args.settle, "results": results}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
