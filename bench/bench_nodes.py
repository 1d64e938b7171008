"""Per-message cost of the stock signal nodes on real recordings (p50 / p99 in microseconds).

Each case feeds one node a real recording cut into fixed-size messages and times
``node.handle()`` (what the runtime calls per message; no transport) for every message.

    python bench/bench_nodes.py --messages 3000 --out bench_nodes.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy
import scipy.io as sio
from rich.console import Console
from rich.table import Table

from emgflow.data import data_path
from emgflow.node import Node
from emgflow.message import Msg
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.envelope import Rms
from emgflow.nodes.features import Features
from emgflow.nodes.filters import Bandpass, Highpass, Notch
from emgflow.nodes.images import EmgImage, LongExposure, WpImage
from emgflow.nodes.resample import Decimate
from emgflow.nodes.vote import Vote
from emgflow.nodes.window import Window


@dataclass
class Case:
    name: str
    make: Callable[[], Node]
    data: np.ndarray
    rate: float
    chunk: int


def hdemg() -> np.ndarray:
    """OTB HD-EMG sample: 64 monopolar channels (uV) at 2048 Hz."""
    return sio.loadmat(data_path("openhdemg-hdemg-sample/otb_testfile.mat"))["Data"][0, 0][:, :64]


def myo() -> np.ndarray:
    """Ninapro DB5 S1: the upper Myo, 8 int8-valued channels at 200 Hz."""
    return sio.loadmat(data_path("ninapro-db5-e1/s1/S1_E1_A1.mat"))["emg"][:, :8]


def db1() -> np.ndarray:
    """Ninapro DB1 S1: 10 Otto Bock envelope channels at 100 Hz, as model A's images see them."""
    return np.abs(sio.loadmat(data_path("ninapro-db1-e1/S1_A1_E1.mat"))["emg"])


def cases(chunk_hd: int) -> list[Case]:
    hd, my, env = hdemg(), myo(), db1()
    db5 = sio.loadmat(data_path("ninapro-db5-e1/s1/S1_E1_A1.mat"))["emg"].astype(np.float64)
    frames = concat(run_node(Rms(window=40, step=10), [Msg(db5, rate=200.0)])["out"])  # 16 ch RMS at 20 Hz
    probs = np.random.default_rng(0).dirichlet(np.ones(13), size=20000)  # 13-class probability rows
    return [
        Case("bandpass 20-450 Hz o4", lambda: Bandpass(low=20, high=450, order=4), hd, 2048.0, chunk_hd),
        Case("highpass 20 Hz o4", lambda: Highpass(cutoff=20, order=4), hd, 2048.0, chunk_hd),
        Case("notch 50 Hz", lambda: Notch(freq=50), hd, 2048.0, chunk_hd),
        Case("decimate x4", lambda: Decimate(factor=4), hd, 2048.0, chunk_hd),
        Case("rms 200/40 samples", lambda: Rms(window=200, step=40), hd, 2048.0, chunk_hd),
        Case("window 200/40 samples", lambda: Window(window=200, step=40), hd, 2048.0, chunk_hd),
        Case("window 40/8 (Myo)", lambda: Window(window=40, step=8), my, 200.0, 8),
        Case("features HTD (Myo)", lambda: Features(features="HTD"), my, 200.0, 8),
        Case("features TDAR (Myo)", lambda: Features(features="TDAR"), my, 200.0, 8),
        Case("features LS4 (Myo)", lambda: Features(features="LS4"), my, 200.0, 8),
        Case("features HJORTH (Myo)", lambda: Features(features="HJORTH"), my, 200.0, 8),
        Case("features all 16 (Myo)", lambda: Features(features=[
            "TDAR", "LS4", "HJORTH", "RMS", "VAR", "IAV", "LD"]), my, 200.0, 8),
        Case("emg_image 15x10 (DB1, one image per message)", lambda: EmgImage(window=15, step=15, norm="log"),
             env, 100.0, 15),
        Case("wp_image tree15 15x10 (DB1, one image per message)",
             lambda: WpImage(window=15, step=15, norm="log", mode="tree15"), env, 100.0, 15),
        Case("wp_image framewise 15x10 (DB1, one image per message)",
             lambda: WpImage(window=15, step=15, norm="log", mode="framewise"), env, 100.0, 15),
        Case("long_exposure 16x20 (DB5 RMS frames, one exposure per frame)",
             lambda: LongExposure(window=20, step=1), frames, 20.0, 1),
        Case("vote 7, hyst. 3 (random 13-class probs)", lambda: Vote(votes=7, hysteresis=3, reject=0.5), probs, 25.0, 1),
    ]


def measure(case: Case, n_messages: int, warmup: int = 50) -> dict:
    msgs = chunk(case.data, [case.chunk], rate=case.rate)
    node = case.make()
    node.setup()
    times = np.empty(n_messages, dtype=np.int64)
    k = 0
    for i in range(warmup + n_messages):
        msg = msgs[i % len(msgs)]
        if i and i % len(msgs) == 0:  # wrapped around the recording: restart the node's state
            node = case.make()
            node.setup()
        t0 = time.perf_counter_ns()
        node.handle("in", msg)
        dt = time.perf_counter_ns() - t0
        if i >= warmup:
            times[k] = dt
            k += 1
    us = times / 1e3
    return {"case": case.name, "channels": int(case.data.shape[1]), "rate_hz": case.rate,
            "chunk_samples": case.chunk, "messages": n_messages,
            "p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean()), "max_us": float(us.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="timed messages per case")
    parser.add_argument("--chunk", type=int, default=64, help="HD-EMG message size in samples (64 = 31 ms)")
    parser.add_argument("--only", default="", help="run only cases whose name contains this text")
    parser.add_argument("--out", default="", help="write the results as JSON here")
    args = parser.parse_args()

    results = [measure(c, args.messages) for c in cases(args.chunk) if args.only in c.name]
    table = Table(title=f"emgflow stock nodes: per-message cost ({args.messages} messages per case)")
    for col in ("case", "input", "chunk", "p50 µs", "p99 µs", "mean µs"):
        table.add_column(col, justify="left" if col in ("case", "input") else "right")
    for r in results:
        table.add_row(r["case"], f"{r['channels']} ch @ {r['rate_hz']:g} Hz", str(r["chunk_samples"]),
                      f"{r['p50_us']:.1f}", f"{r['p99_us']:.1f}", f"{r['mean_us']:.1f}")
    Console().print(table)
    if args.out:
        env = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
               "machine": platform.machine(), "processor": platform.processor()}
        with open(args.out, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
