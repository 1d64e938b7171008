"""The npz recorder's memory over a long synthetic take: RSS after every simulated minute, then
after the export at the stop (the old recorder held the whole take: 110 -> 404 MB over 6 minutes).

    python bench/npz_take.py --minutes 30 --channels 16 --rate 2000 --out bench/results/npz-take.json

The node runs in this process on a fake clock (one flush per simulated second, as flush_s = 1 at
real time would), so a 30-minute take takes as long as the disk needs, not 30 minutes."""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import emgflow.nodes.record as record
from emgflow.message import Msg
from emgflow.nodes.record import Npz


def rss_mb() -> float:
    """This process's resident memory now (MB), from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


class FakeTime:
    t = 0.0

    @classmethod
    def monotonic(cls) -> float:
        return cls.t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--rate", type=float, default=2000.0, help="rows per second")
    ap.add_argument("--rows", type=int, default=20, help="rows per message")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    record.time = FakeTime
    block = np.random.default_rng(0).standard_normal((args.rows, args.channels)).astype(np.float32)
    per_s, total_s = int(args.rate) // args.rows, int(args.minutes * 60)
    with tempfile.TemporaryDirectory(prefix="npz-take-") as tmp:
        path = Path(tmp) / "take.npz"
        node = Npz("rec", path=str(path), flush_s=1.0)
        node.setup()
        samples, start, t0 = [("start", 0.0, rss_mb())], 0, time.perf_counter()
        for second in range(1, total_s + 1):
            for _ in range(per_s):
                node.handle("in", Msg(block, args.rate, start))
                start += args.rows
            FakeTime.t = float(second)
            node.tick()
            if second % 60 == 0:
                samples.append((f"minute {second // 60}", time.perf_counter() - t0, rss_mb()))
        node.teardown()
        samples.append(("exported", time.perf_counter() - t0, rss_mb()))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB; before the check loads the take
        size = path.stat().st_size
        with np.load(path) as z:
            assert z["emg"].shape == (start, args.channels)
    for label, t, mb in samples:
        print(f"{label:>10}  {t:7.1f} s  RSS {mb:7.1f} MB")
    print(f"take {start} rows x {args.channels} ch float32 = {size / 1e6:.0f} MB on disk; peak RSS {peak:.1f} MB")
    if args.out:
        args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": start, "npz_bytes": size,
                                        "peak_rss_mb": peak, "rss_mb": samples}, indent=1) + "\n")


if __name__ == "__main__":
    main()
