"""Inference latency of the seed models on one CPU thread, batch 1: p50 / p99 per call.

    nice -n 10 python bench/bench_models.py [--n 2000] [--out runs/bench_models.json]

Model A is timed per window (one image -> class logits), model B per output (one exposure
-> joint angles, state carried), with each serving engine (``emgflow.ml.serving``: ONNX Runtime,
TorchScript, eager PyTorch; numpy row in, numpy out), plus the ``classify`` / ``regress`` nodes'
``process()`` on a one-row message (what the graph pays, with the nodes' default engine, onnx). Targets:
model A <= 1 ms p99, model B <= 10 ms p99. Weights are untrained: latency does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from emgflow.message import Msg
from emgflow.ml import checkpoint
from emgflow.ml.models import build, model_config
from emgflow.ml.serving import ENGINES, compile_net

CASES: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
    ("A lstm_cnn h32 (ours DB1, 2x15x20: 1 Hz + 0.2 Hz envelopes)",
     model_config("lstm_cnn", n_outputs=13, channels=20, frames=15, planes=2, hidden=32), (2, 15, 20)),
    ("A lstm_cnn h32 attentional state (DB1, 2x15x20)",
     model_config("lstm_cnn", n_outputs=13, channels=20, frames=15, planes=2, hidden=32, attention="attentional"),
     (2, 15, 20)),
    ("A lstm_cnn h32 (ours DB1, 2x15x20), 3 seeds averaged",
     model_config("lstm_cnn", n_outputs=13, channels=20, frames=15, planes=2, hidden=32, members=3), (2, 15, 20)),
    ("A lstm_cnn h32 (ours Myo, 2x15x16)", model_config("lstm_cnn", n_outputs=13, channels=16, frames=15, planes=2,
                                                          hidden=32), (2, 15, 16)),
    ("A lstm_cnn h32 (2x15x10)", model_config("lstm_cnn", n_outputs=13, channels=10, frames=15, planes=2,
                                               hidden=32), (2, 15, 10)),
    ("A lstm_cnn h10 (paper, 2x15x10)", model_config("lstm_cnn", n_outputs=13, channels=10, frames=15, planes=2,
                                                       hidden=10), (2, 15, 10)),
    ("A cnn (1x15x10)", model_config("cnn", n_outputs=13, channels=10, frames=15, planes=1), (1, 15, 10)),
    ("B convlstm channels 128,64 dense readout @16x20 (ours)",
     model_config("convlstm", n_outputs=10, channels=16, frames=20, hidden=[128, 64], layout="channels",
                  readout="dense"), (16, 20)),
    ("B convlstm channels 128,64 dense readout @16x20, 3 seeds averaged",
     model_config("convlstm", n_outputs=10, channels=16, frames=20, hidden=[128, 64], layout="channels",
                  readout="dense", members=3), (16, 20)),
    ("B convlstm channels 128,64,10 @16x20 (joint maps)", model_config("convlstm", n_outputs=10, channels=16,
                                                                         frames=20, hidden=[128, 64],
                                                                         layout="channels"), (16, 20)),
    ("B convlstm image 32,16,10 @16x20", model_config("convlstm", n_outputs=10, channels=16, frames=20,
                                                        hidden=[32, 16]), (16, 20)),
    ("B convlstm image 64,32,10 @16x20", model_config("convlstm", n_outputs=10, channels=16, frames=20,
                                                        hidden=[64, 32]), (16, 20)),
    ("B convlstm image 64,32,10 @16x200 (paper geometry)",
     model_config("convlstm", n_outputs=10, channels=16, frames=200, hidden=[64, 32]), (16, 200)),
    ("B lstm 128x2 baseline", model_config("lstm", n_outputs=10, channels=16, frames=20, step=1, hidden=128),
     (16, 20)),
]


def timeit(fn: Callable[[], Any], n: int, warmup: int = 20) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    t = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn()
        t[i] = time.perf_counter_ns() - t0
    t /= 1e6
    return {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)),
            "mean_ms": float(t.mean()), "n": n}


def bench_case(cfg: dict[str, Any], shape: tuple[int, ...], n: int, folder: Path) -> dict[str, Any]:
    recurrent = cfg["model"] in ("convlstm", "lstm")
    net = build(cfg).eval()
    x = np.abs(np.random.default_rng(0).standard_normal((1,) + shape)).astype(np.float32)
    out: dict[str, Any] = {"params": sum(p.numel() for p in net.parameters())}
    for engine in ENGINES:
        run = compile_net(net, shape, recurrent, engine)
        if recurrent:
            state = None

            def step() -> None:
                nonlocal state
                _, state = run(x, state)

            out[engine] = timeit(step, n)
        else:
            out[engine] = timeit(lambda: run(x), n)
    out["node_process"] = bench_node(cfg, net, shape, n, folder)
    return out


def bench_node(cfg: dict[str, Any], net: torch.nn.Module, shape: tuple[int, ...], n: int, folder: Path) -> dict:
    """The serving node's process() on one-row messages (a hand-made checkpoint of this architecture)."""
    from emgflow.nodes.classify import Classify
    from emgflow.nodes.regress import Regress

    task = "regress" if cfg["model"] in ("convlstm", "lstm") else "classify"
    rate = 20.0
    ckpt = {"task": task, "config": cfg, "state_dict": net.state_dict(), "input": {"rate": 200.0, "channels": shape[-1]},
            "pipeline": [], "stream": {"rate": rate, "shape": list(shape), "channels": shape[0] if task == "regress"
                                       else shape[-1]},
            "outputs": [f"o{i}" for i in range(cfg["n_outputs"])], "data": {"dataset": "bench"},
            "target_mean": [0.0] * cfg["n_outputs"], "target_std": [1.0] * cfg["n_outputs"], "history": []}
    path = checkpoint.save(ckpt, folder / f"{cfg['model']}.pt")
    node = (Regress if task == "regress" else Classify)(model=str(path), threads=1)
    node.setup()
    row = np.abs(np.random.default_rng(0).standard_normal((1,) + shape)).astype(np.float32)
    k = 0

    def step() -> None:
        nonlocal k
        node.process(Msg(data=row, rate=rate, start=k))
        k += 1

    result = timeit(step, n)
    node.teardown()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="timed calls per case")
    ap.add_argument("--out", default="runs/bench_models.json", help="JSON results file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import onnxruntime

    results: dict[str, Any] = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                               "machine": platform.processor() or platform.machine(),
                               "threads": 1, "batch": 1, "cases": {}}
    cols = [*ENGINES, "node_process"]
    print(f"{'case':62s} {'params':>8s} " + " ".join(f"{c[:6] + ' p50/p99':>16s}" for c in cols) + "  (ms)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg, shape in CASES:
            n = args.n if shape[-1] < 200 else max(100, args.n // 10)
            r = bench_case(cfg, shape, n, Path(tmp))
            results["cases"][name] = r
            cell = lambda k: f"{r[k]['p50_ms']:7.3f}/{r[k]['p99_ms']:7.3f}"  # noqa: E731
            print(f"{name:62s} {r['params']:8d} " + " ".join(f"{cell(c):>16s}" for c in cols), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
