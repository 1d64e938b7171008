"""Memory and CPU time of a process tree, from /proc: what bench/footprint.py and bench/soak.py sample."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def descendants(root: int) -> dict[int, tuple[str, int, int]]:
    """pid -> (name, RSS kB, CPU ticks) for every live descendant of ``root``; a node process is
    named after the process in its spec, anything else after its command."""
    parent, info = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        info[pid] = (_label(cmd) or name, int(fields[21]) * PAGE_KB, int(fields[11]) + int(fields[12]))
    out = {}
    for pid in info:
        p = pid
        while p in parent and p != root:
            p = parent[p]
        if p == root and pid != root:
            out[pid] = info[pid]
    return out


def _label(cmd: list[bytes]) -> str:
    """A node process's name from its spec argument (the supervisor passes JSON with "name")."""
    if b"emgflow.runner" in cmd and len(cmd) > 3:
        try:
            return json.loads(cmd[3])["name"]
        except (ValueError, KeyError):
            return ""
    return ""


class Sampler(threading.Thread):
    """Samples this process's descendants every ``period`` seconds until ``done`` is set."""

    def __init__(self, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.period, self.samples, self.done = period, [], threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append((time.monotonic(), descendants(os.getpid())))
            self.done.wait(self.period)
