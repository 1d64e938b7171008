"""How much of a hop is ZeroMQ's wake-up on sparse traffic (libzmq #4673), and what buys it back.

One hop, source -> sink, 1x8 float32 messages at 200 msg/s over ipc (as the Myo chain), measured
with the receiver in four modes, in alternating rounds so load drift hits every mode alike:

- ``block``: ``recv_multipart()`` sleeps in the kernel until the message is there (the floor and
  emgflow both do this): the receiving application thread and both I/O threads must wake.
- ``spin``: the receiver never sleeps (``NOBLOCK`` receive in a loop): no application-thread wake-up,
  at the price of a full core.
- ``predict``: sleep until ~``--guard`` us before the next message is due (the period is known for a
  paced stream), then spin: most of ``spin``'s gain for a small share of a core.
- ``inproc``: both ends as threads of one process over ``inproc://`` (no I/O threads, no socket):
  what is left without the I/O-thread wake-ups (a dataflow of threads, not of processes).

    python bench/wakeup.py --seconds 8 --rounds 3 --out bench/results/wakeup.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time

import msgpack
import numpy as np
import zmq
from rich.console import Console
from rich.table import Table

from emgflow.clock import sleep_until
from emgflow.trace import percentiles

WARMUP = 20


def _source(ctx: zmq.Context, endpoint: str, rate: float, count: int, t0: int) -> None:
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_NODROP, 1)
    pub.bind(endpoint)
    pub.recv()  # the sink's subscription
    data = np.zeros((1, 8), np.float32)
    period = int(1e9 / rate)
    for seq in range(count):
        sleep_until(t0 + seq * period)
        pub.send_multipart([b"x", msgpack.packb({"q": seq, "t": time.monotonic_ns()}), data])
    pub.send_multipart([b"x", msgpack.packb({"q": -1, "t": 0}), b""])
    pub.close()


def _sink(ctx: zmq.Context, endpoint: str, mode: str, rate: float, t0: int, guard_us: float) -> list[float]:
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    period = int(1e9 / rate)
    out: list[float] = []
    seq = 0
    while True:
        if mode in ("spin", "predict"):
            if mode == "predict":  # sleep until just before the next message is due, then spin
                sleep_until(t0 + seq * period - int(guard_us * 1000))
            while True:
                try:
                    frames = sub.recv_multipart(zmq.NOBLOCK)
                    break
                except zmq.Again:
                    pass
        else:
            frames = sub.recv_multipart()
        rx = time.monotonic_ns()
        header = msgpack.unpackb(frames[1])
        if header["q"] < 0:
            break
        out.append((rx - header["t"]) / 1000)
        seq = header["q"] + 1
    sub.close()
    return out


def _source_process(endpoint: str, rate: float, count: int, t0: int) -> None:
    ctx = zmq.Context()
    _source(ctx, endpoint, rate, count, t0)
    ctx.term()


def run(mode: str, rate: float, count: int, guard_us: float) -> np.ndarray:
    """One round in one mode: latencies in us, warm-up dropped."""
    t0 = time.monotonic_ns() + 300_000_000  # time for the sink to subscribe
    if mode == "inproc":
        ctx = zmq.Context()
        endpoint = "inproc://wakeup"
        result: list[float] = []
        sink = threading.Thread(target=lambda: result.extend(_sink(ctx, endpoint, "block", rate, t0, 0)))
        src = threading.Thread(target=_source, args=(ctx, endpoint, rate, count, t0))
        src.start()
        time.sleep(0.05)  # inproc: bind before connect
        sink.start()
        src.join()
        sink.join()
        ctx.term()
        return np.asarray(result[WARMUP:])
    with tempfile.TemporaryDirectory(prefix="emgflow-wakeup-") as tmp:
        endpoint = f"ipc://{tmp}/hop"
        proc = mp.get_context("spawn").Process(target=_source_process, args=(endpoint, rate, count, t0))
        proc.start()
        ctx = zmq.Context()
        try:
            lat = _sink(ctx, endpoint, mode, rate, t0, guard_us)
        finally:
            proc.join(timeout=30)
            ctx.term()
        return np.asarray(lat[WARMUP:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200.0, help="messages per second")
    ap.add_argument("--seconds", type=float, default=8.0, help="traffic per mode and round")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds over all modes")
    ap.add_argument("--guard", type=float, default=300.0, help="predict: wake this many us before the due time")
    ap.add_argument("--out", default="", help="JSON result file")
    args = ap.parse_args()
    modes = ("block", "spin", "predict", "inproc")
    count = int(args.rate * args.seconds) + WARMUP
    samples: dict[str, list[np.ndarray]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            samples[mode].append(run(mode, args.rate, count, args.guard))
    results = {m: percentiles(np.concatenate(v)) for m, v in samples.items()}
    table = Table(title=f"one ipc hop, 1x8 float32 at {args.rate:g} msg/s, {args.rounds} rounds x {args.seconds:g} s",
                  header_style="bold")
    for col in ("receiver", "p50 us", "p99 us", "max us", "p50 vs block"):
        table.add_column(col, justify="right")
    base = results["block"]["p50_us"]
    for m, r in results.items():
        table.add_row(m, f"{r['p50_us']:.0f}", f"{r['p99_us']:.0f}", f"{r['max_us']:.0f}", f"{r['p50_us'] / base:.2f}")
    Console().print(table)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"rate_hz": args.rate, "seconds": args.seconds, "rounds": args.rounds, "guard_us": args.guard,
                       "modes": results}, f, indent=2)


if __name__ == "__main__":
    main()
