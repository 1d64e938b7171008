"""Process helpers for end-to-end tests: run the real CLI, find descendants through /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from emgflow.emgrec import MAGIC


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def flushed(npz: Path) -> bool:
    """Whether an npz recorder has flushed rows to its take so far (``<path>.emgrec``; the .npz comes
    when it stops)."""
    take = Path(f"{npz}.emgrec")
    return take.exists() and take.stat().st_size > len(MAGIC)


def wait_for(cond, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


STARTED: list[subprocess.Popen] = []


def kill_started() -> None:
    """Kill every process group a test started (after a failed or timed-out test)."""
    while STARTED:
        proc = STARTED.pop()
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait()


def start_run(graph: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`emgflow run GRAPH` as a real process (its own session, so signals reach only it)."""
    proc = subprocess.Popen([sys.executable, "-m", "emgflow.cli.app", "run", str(graph), "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    STARTED.append(proc)
    return proc
