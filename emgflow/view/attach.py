"""Attach a view to a graph that `emgflow run` runs in another process on this machine.

Its Supervisor replaces ``RUNDIR/status.json`` four times a second (``Supervisor.write_status``):
the wiring, each node's state and figures, and where each output listens. ``AttachedRun`` rebuilds
from it what the view reads of a Supervisor (``graph``, ``procs``, ``request_stop``); stopping
sends the run SIGTERM, as Ctrl-C in its terminal would.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

from ..graph import Edge, Graph, NodeSpec
from ..registry import resolve
from ..supervisor import NodeProc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def running_runs() -> dict[int, Path]:
    """PID -> status file of every `emgflow run` on this machine that is still alive."""
    out = {}
    for path in Path(tempfile.gettempdir()).glob("emgflow-*/status.json"):
        try:
            pid = json.loads(path.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            continue  # being replaced, or not ours
        if _alive(pid):
            out[pid] = path
    return out


class AttachedRun:
    """A running graph seen through its status file, with the Supervisor's surface the view uses."""

    def __init__(self, status_path: Path) -> None:
        self.path = status_path
        st = json.loads(status_path.read_text())
        self.pid: int = st["pid"]
        nodes = {}
        for nid, n in st["nodes"].items():
            inputs = {port: Edge(nid, port, source, output, policy, queue)
                      for port, (source, output, policy, queue) in n["inputs"].items()}
            nodes[nid] = NodeSpec(nid, n["type"], resolve(n["type"]), n["params"], inputs)
        self.graph = Graph(st["name"], st["file"], nodes, list(nodes), st["transport"], st["description"])
        self.procs = {nid: NodeProc(nodes[nid], n["process"]) for nid, n in st["nodes"].items()}
        self._endpoints = {stream: (ep, topic) for stream, (ep, topic) in st["endpoints"].items()}
        self._update(st)

    def endpoints(self) -> dict[str, tuple[str, str]]:
        return self._endpoints

    def _update(self, st: dict[str, Any]) -> None:
        for nid, n in st["nodes"].items():
            p = self.procs[nid]
            p.state, p.stats, p.restarts = n["state"], n["stats"], n["restarts"]

    def refresh(self) -> bool:
        """Read the newest status; False once the run has ended (its run dir is gone)."""
        try:
            self._update(json.loads(self.path.read_text()))  # replaced atomically: never half written
        except FileNotFoundError:
            return False
        return _alive(self.pid)

    def request_stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
