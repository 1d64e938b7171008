"""End-to-end latency benchmarks: emgflow against the raw pyzmq floor, in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .codec import decode, encode
from .graph import load_graph
from .message import Msg
from .plan import Endpoints
from .supervisor import Supervisor
from .trace import percentiles

WARMUP = 20  # messages discarded at the start of each run (connection set-up, first-touch costs)


def run_floor(relays: int, rate: float, channels: int, samples: int, count: int,
              transport: str = "ipc") -> np.ndarray:
    """Latencies (us) of the raw pyzmq chain source -> relays -> sink (endpoints as a graph's)."""
    with tempfile.TemporaryDirectory(prefix="emgflow-floor-") as tmp:
        eps = [Endpoints(transport, tmp).output(f"hop{i}") for i in range(relays + 1)]
        out = f"{tmp}/sink.npz"
        args = json.dumps({"rate": rate, "channels": channels, "samples": samples, "count": count, "out": out})
        cmd = [sys.executable, "-m", "emgflow.floor"]
        procs = [subprocess.Popen(cmd + ["sink", eps[-1], "-", args])]
        procs += [subprocess.Popen(cmd + ["relay", eps[i], eps[i + 1], args]) for i in range(relays)]
        procs.append(subprocess.Popen(cmd + ["source", "-", eps[0], args]))
        try:
            for p in reversed(procs):
                p.wait(timeout=count / rate + 60)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        result = np.load(out)
        if len(result["seq"]) != count:
            raise RuntimeError(f"floor chain lost messages: {len(result['seq'])} of {count}")
        return result["latency_us"][WARMUP:]


def chain_graph(relays: int, rate: float, channels: int, samples: int, count: int, transport: str = "ipc") -> str:
    lines = ["name: bench-chain", f"transport: {transport}", "nodes:",
             f"  source: {{type: pulse, params: {{rate: {rate}, channels: {channels}, samples: {samples}, count: {count}}}}}"]
    prev = "source"
    for i in range(relays):
        lines.append(f"  relay{i}: {{type: relay, inputs: {{in: {prev}.out}}}}")
        prev = f"relay{i}"
    lines.append(f"  sink: {{type: discard, inputs: {{in: {prev}.out}}}}")
    return "\n".join(lines) + "\n"


def run_graph_latency(path: str | Path, duration: float | None = None,
                      overrides: list[str] | None = None, fuse: bool = False) -> dict[str, Any]:
    """Run a graph (``overrides``: ``NODE.PARAM=VALUE`` strings, as ``--set``; ``fuse``: every node
    without a group in one process) under the real supervisor; return each node's latency export and stats."""
    graph = load_graph(path, overrides)
    graph = graph.fused() if fuse else graph
    sup = Supervisor(graph, on_event=lambda n, t: print(f"[{n}] {t}", file=sys.stderr))
    code = sup.run(duration)
    if code != 0:
        raise RuntimeError(f"graph {path} failed (exit {code})")
    return {nid: {"latency": p.latency, "stats": p.stats} for nid, p in sup.procs.items()}


def chain_run(relays: int, rate: float, channels: int, samples: int, count: int,
              fuse: bool = False, transport: str = "ipc") -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    """One emgflow chain: the sink's end-to-end latencies, messages lost or dropped, per-hop values."""
    with tempfile.TemporaryDirectory(prefix="emgflow-bench-") as tmp:
        path = Path(tmp) / "chain.yaml"
        path.write_text(chain_graph(relays, rate, channels, samples, count, transport))
        nodes = run_graph_latency(path, fuse=fuse)
    sink = nodes["sink"]
    lost = (count - sink["stats"]["in"]["in"]["received"]) + sum(v["dropped"] for n in nodes.values()
                                                                  for v in n["stats"]["in"].values())
    hops = {k[4:]: np.asarray(v)[WARMUP:] for k, v in sink["latency"].items() if k.startswith("hop ")}
    return np.asarray(sink["latency"].get("e2e_us", []))[WARMUP:], lost, hops


def bench_chain(relays: int, rate: float, channels: int, samples: int, duration: float,
                rounds: int = 1, fused: bool = False) -> dict[str, Any]:
    """Floor and emgflow chains, same shape, alternating ``rounds`` times (``duration`` seconds of
    traffic each, split across the rounds); figures and ratios over the pooled samples. Alternating
    keeps a change in machine load from landing on one side only. ``fused`` adds the same chain with
    every node in one process (in-process edges) to each round."""
    per_round = int(rate * duration / rounds) + WARMUP
    e2e, floor, fused_e2e, hop_values, dropped = [], [], [], {}, 0
    for _ in range(rounds):
        floor.append(run_floor(relays, rate, channels, samples, per_round))
        values, lost, hops = chain_run(relays, rate, channels, samples, per_round, fuse=False)
        e2e.append(values)
        dropped += lost
        for k, v in hops.items():
            hop_values.setdefault(k, []).append(v)
        if fused:
            values, lost, _ = chain_run(relays, rate, channels, samples, per_round, fuse=True)
            fused_e2e.append(values)
            dropped += lost
    e2e_all, floor_all = np.concatenate(e2e), np.concatenate(floor)
    hops = {k: percentiles(np.concatenate(v)) for k, v in hop_values.items()}
    ef, ff = percentiles(e2e_all), percentiles(floor_all)
    extra: dict[str, Any] = {}
    if fused:
        fu = percentiles(np.concatenate(fused_e2e))
        extra = {"fused_p50_us": fu["p50_us"], "fused_p99_us": fu["p99_us"], "fused_max_us": fu["max_us"],
                 "fused_ratio_p50": fu["p50_us"] / ff["p50_us"], "fused_ratio_p99": fu["p99_us"] / ff["p99_us"]}
    return {**extra,
        "relays": relays, "rate_hz": rate, "channels": channels, "samples": samples,
        "messages": per_round * rounds, "rounds": rounds,
        "p50_us": ef["p50_us"], "p99_us": ef["p99_us"], "max_us": ef["max_us"],
        "floor_p50_us": ff["p50_us"], "floor_p99_us": ff["p99_us"], "floor_max_us": ff["max_us"],
        "ratio_p50": ef["p50_us"] / ff["p50_us"], "ratio_p99": ef["p99_us"] / ff["p99_us"],
        "round_ratios_p50": [float(np.median(a) / np.median(b)) for a, b in zip(e2e, floor)],
        "dropped": int(dropped), "hops": hops,
        "_samples": {"emgflow": e2e_all.tolist(), "floor": floor_all.tolist(),
                     **({"emgflow fused": np.concatenate(fused_e2e).tolist()} if fused else {})},
    }


def bench_codec(channels: int = 8, samples: int = 1, n: int = 20000) -> dict[str, float]:
    """Per-message header encode + decode cost, in us (p50/p99 over batches of 100)."""
    msg = Msg(data=np.zeros((samples, channels), np.float32), rate=200.0, start=0, t_acq=1,
              trace=[["source", 1, 2], ["relay0", 3, 4]])
    costs = []
    for _ in range(n // 100):
        t = time.perf_counter_ns()
        for _ in range(100):
            frames = encode(b"source.out", msg)
            decode([frames[0], frames[1], memoryview(frames[2]).cast("B")])
        costs.append((time.perf_counter_ns() - t) / 100 / 1000)
    p = percentiles(costs)
    return {"encode_decode_p50_us": p["p50_us"], "encode_decode_p99_us": p["p99_us"]}


def plot_cdf(series: dict[str, list[float]], path: str | Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, values in series.items():
        v = np.sort(np.asarray(values)) / 1000
        if v.size:
            ax.plot(v, np.arange(1, v.size + 1) / v.size, label=f"{label} (p50 {np.median(v):.2f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency (ms, log scale)")
    ax.set_ylabel("fraction of messages")
    ax.axhline(0.99, color="grey", lw=0.6, ls=":")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
