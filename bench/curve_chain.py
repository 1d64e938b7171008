"""What CURVE costs a tcp chain: source -> 3 relays -> sink (4 tcp hops), Myo-like traffic, as

- ``floor``: the raw pyzmq chain (``emgflow/floor.py``) over plain tcp;
- ``emgflow plain``: the emgflow graph over tcp with CURVE taken out (the run's keys patched away
  here: emgflow itself has no switch for that, on purpose);
- ``emgflow curve``: the same graph as ``emgflow run`` runs it (every socket CURVE, a ZAP gate per process),

alternating in rounds in the same run so a change in machine load hits all three alike.

    python bench/curve_chain.py --seconds 24 --rounds 3 --out bench/results/curve-chain.json
"""

from __future__ import annotations

import argparse
import json
from unittest import mock

import numpy as np
from rich.console import Console
from rich.table import Table

from emgflow.benchmark import chain_run, run_floor
from emgflow.trace import percentiles

RELAYS = 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=200.0, help="messages per second")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=24.0, help="traffic per kind, split across the rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    count = int(args.rate * args.seconds / args.rounds)
    runs: dict[str, list[np.ndarray]] = {"floor": [], "emgflow plain": [], "emgflow curve": []}
    lost = 0
    for _ in range(args.rounds):
        runs["floor"].append(run_floor(RELAYS, args.rate, args.channels, 1, count, transport="tcp"))
        with mock.patch("emgflow.keys.Curve.for_run", return_value=None):
            values, n, _ = chain_run(RELAYS, args.rate, args.channels, 1, count, transport="tcp")
        runs["emgflow plain"].append(values)
        values, m, _ = chain_run(RELAYS, args.rate, args.channels, 1, count, transport="tcp")
        runs["emgflow curve"].append(values)
        lost += n + m
    stats = {k: percentiles(np.concatenate(v)) for k, v in runs.items()}
    floor = stats["floor"]
    table = Table(title=f"{RELAYS + 1} tcp hops, {args.rate:.0f} msg/s, 1x{args.channels}, {args.rounds} rounds")
    for col in ("chain", "n", "p50 us", "p99 us", "p50 / floor", "p99 / floor", "round p50 / floor"):
        table.add_column(col, justify="left" if col == "chain" else "right")
    result = {"relays": RELAYS, "rate_hz": args.rate, "channels": args.channels, "rounds": args.rounds,
              "lost": int(lost), "chains": {}}
    for name, s in stats.items():
        rounds = [float(np.median(a) / np.median(b)) for a, b in zip(runs[name], runs["floor"])]
        result["chains"][name] = {**s, "ratio_p50": s["p50_us"] / floor["p50_us"],
                                  "ratio_p99": s["p99_us"] / floor["p99_us"], "round_ratios_p50": rounds}
        table.add_row(name, str(sum(len(a) for a in runs[name])), f"{s['p50_us']:.0f}", f"{s['p99_us']:.0f}",
                      f"{s['p50_us'] / floor['p50_us']:.2f}", f"{s['p99_us'] / floor['p99_us']:.2f}",
                      " ".join(f"{r:.2f}" for r in rounds))
    result["curve_over_plain_p50"] = stats["emgflow curve"]["p50_us"] / stats["emgflow plain"]["p50_us"]
    Console(width=120).print(table)
    print(f"lost or dropped: {lost}; CURVE / plain p50: {result['curve_over_plain_p50']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
