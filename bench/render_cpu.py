"""CPU share of every process of a running graph (from /proc), e.g. the hand renderer of the demo.

    python bench/render_cpu.py graphs/demo-db5.yaml --set source.speed=1 --seconds 45 --window 5 38 --out FILE.json

Runs ``emgflow run`` on the graph and samples /proc every 0.5 s; the share of a process is the CPU
time (user + system) it used between its first and last sample inside ``--window`` (seconds after
the start; default: its whole life, start-up and end-of-stream work included) over that wall
time (1.0 = one core). Node processes are named by their node (``"name"`` in the runtime spec on their command
line); any other descendant (a private child) by its command line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root`` (from /proc/*/stat parent links)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def label(pid: int) -> str | None:
    """The node name of a node process, else its command line (None when it has gone)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    node = re.search(r'"name": "([^"]+)"', cmd)
    return f"node {node.group(1)}" if node else cmd[:120]


def cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("graph")
    ap.add_argument("--set", action="append", default=[], help="NODE.PARAM=VALUE, passed to emgflow run")
    ap.add_argument("--seconds", type=float, default=40.0, help="run time (emgflow run --duration)")
    ap.add_argument("--window", type=float, nargs=2, default=(0.0, float("inf")), metavar=("FROM", "TO"),
                    help="count only this span, seconds after the start (steady state: skip start-up and end)")
    ap.add_argument("--out", type=Path, help="JSON with the share of every process")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "emgflow.cli.app", "run", args.graph, "--quiet", "--duration", str(args.seconds),
           *(f"--set={s}" for s in args.set)]
    proc = subprocess.Popen(cmd)
    start = time.monotonic()
    first: dict[int, tuple[float, float, str]] = {}
    last: dict[int, tuple[float, float]] = {}
    while proc.poll() is None:
        now = time.monotonic()
        if not args.window[0] <= now - start <= args.window[1]:
            time.sleep(0.5)
            continue
        for pid in descendants(proc.pid):
            used, name = cpu_s(pid), label(pid)
            if used is None or name is None:
                continue
            first.setdefault(pid, (now, used, name))
            last[pid] = (now, used)
        time.sleep(0.5)
    shares = {}
    for pid, (t0, c0, name) in first.items():
        t1, c1 = last[pid]
        if t1 - t0 >= 1.0:
            shares[f"{name} [{pid}]"] = {"cpu_s": round(c1 - c0, 2), "wall_s": round(t1 - t0, 2),
                                         "share": round((c1 - c0) / (t1 - t0), 3)}
    for name, s in sorted(shares.items(), key=lambda kv: -kv[1]["share"]):
        print(f"{s['share']:6.3f}  {s['cpu_s']:7.2f} s over {s['wall_s']:6.2f} s  {name}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"graph": args.graph, "sets": args.set, "seconds": args.seconds,
                                        "window_s": args.window, "processes": shares}, indent=1))


if __name__ == "__main__":
    main()
