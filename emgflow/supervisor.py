"""Runs a graph: spawns one process per node, holds the start until every subscriber is connected,
watches heartbeats and exits, restarts per policy, stops in order, and leaves no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import msgpack
import zmq

from .graph import Graph, NodeSpec

READY_TIMEOUT_S = 120.0   # model loading and torch import happen before "ready"
HANG_TIMEOUT_S = 10.0     # no heartbeat for this long: the node is hung, treat it as crashed
STOP_GRACE_S = 5.0


@dataclass
class NodeProc:
    spec: NodeSpec
    runtime: dict[str, Any]
    proc: subprocess.Popen | None = None
    state: str = "new"            # new | starting | running | done | failed | stopped
    restarts: int = 0
    last_seen: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)
    error: str = ""
    restart_at: float | None = None
    released: bool = False        # told it may exit (all its consumers have finished)

    @property
    def is_source(self) -> bool:
        return not self.spec.inputs


class GraphFailed(RuntimeError):
    pass


class Supervisor:
    """``Supervisor(graph).run(duration)`` -> exit code (0 clean, 1 a node failed for good)."""

    def __init__(self, graph: Graph, *, on_event: Callable[[str, str], None] | None = None,
                 on_stats: Callable[[dict[str, NodeProc]], None] | None = None) -> None:
        self.graph = graph
        self.on_event = on_event or (lambda node, text: print(f"[{node}] {text}", file=sys.stderr))
        self.on_stats = on_stats or (lambda procs: None)
        self.rundir = tempfile.mkdtemp(prefix="emgflow-")
        self.ctx = zmq.Context()
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        control_ep = self._endpoint("_control")
        self.control.bind(control_ep)
        if control_ep.endswith(":0"):
            control_ep = self.control.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.procs = {nid: NodeProc(graph.nodes[nid], self._runtime_spec(graph.nodes[nid], control_ep))
                      for nid in graph.order}
        self.stop_requested = False
        self.started_at = 0.0

    # --- wiring ----------------------------------------------------------------------------------
    def _endpoint(self, name: str) -> str:
        if self.graph.transport == "tcp":
            return "tcp://127.0.0.1:0"
        return f"ipc://{self.rundir}/{name}"

    def _runtime_spec(self, spec: NodeSpec, control_ep: str) -> dict[str, Any]:
        outputs = {}
        for port in spec.cls.outputs:
            consumers = self.graph.consumers(spec.id, port)
            if not consumers:
                continue
            outputs[port] = {"endpoint": self._bind_endpoint(f"{spec.id}.{port}"), "topic": f"{spec.id}.{port}",
                             "subscribers": len(consumers), "lossless": any(e.policy == "all" for e in consumers)}
        return {"name": spec.id, "type": spec.type, "params": spec.params, "outputs": outputs,
                "control": control_ep, "supervisor_pid": os.getpid(), "inputs": {}}

    def _bind_endpoint(self, name: str) -> str:
        if self.graph.transport != "tcp":
            return f"ipc://{self.rundir}/{name}"
        import socket
        with socket.socket() as s:  # reserve a free port; the node binds it a moment later
            s.bind(("127.0.0.1", 0))
            return f"tcp://127.0.0.1:{s.getsockname()[1]}"

    def _link_inputs(self) -> None:
        for np_ in self.procs.values():
            for port, edge in np_.spec.inputs.items():
                out = self.procs[edge.source].runtime["outputs"][edge.output]
                np_.runtime["inputs"][port] = {"endpoint": out["endpoint"], "topic": out["topic"],
                                               "policy": edge.policy, "queue": edge.queue}

    # --- process control ---------------------------------------------------------------------------
    def _spawn(self, np_: NodeProc) -> None:
        np_.released = False
        np_.proc = subprocess.Popen([sys.executable, "-m", "emgflow.runner", json.dumps(np_.runtime)],
                                    stdin=subprocess.DEVNULL)
        np_.state = "starting"
        np_.last_seen = time.monotonic()

    def _send(self, node: str, kind: str) -> None:
        try:
            self.control.send_multipart([node.encode(), msgpack.packb({"t": kind})], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the node is gone; its exit is handled by the process watch

    def _handle_control(self, timeout_ms: int) -> None:
        if not self.control.poll(timeout_ms, zmq.POLLIN):
            return
        while True:
            try:
                ident, body = self.control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            np_ = self.procs.get(ident.decode())
            if np_ is None:
                continue
            msg = msgpack.unpackb(body, raw=False)
            np_.last_seen = time.monotonic()
            kind = msg.get("t")
            if kind == "hb":
                np_.stats = msg["stats"]
            elif kind == "ready":
                np_.state = "ready"
                if self.started_at:  # a restarted node joins a running graph at once
                    self._send(np_.spec.id, "start")
                    np_.state = "running"
            elif kind == "done":
                np_.stats, np_.latency = msg["stats"], msg.get("latency", {})
                np_.state = "done"
            elif kind == "error":
                np_.error = msg["tb"]
                self.on_event(np_.spec.id, f"crashed: {msg['error']}\n{msg['tb'].rstrip()}")

    def _release_finished(self) -> None:
        """Let a finished node exit once every consumer of its outputs has finished too."""
        for np_ in self.procs.values():
            if np_.state != "done" or np_.released or np_.proc is None:
                continue
            consumers = {e.node for n in self.procs.values() for e in n.spec.inputs.values() if e.source == np_.spec.id}
            if all(self.procs[c].state in ("done", "stopped", "failed") for c in consumers):
                self._send(np_.spec.id, "exit")
                np_.released = True

    def _watch_processes(self) -> None:
        now = time.monotonic()
        for np_ in self.procs.values():
            if np_.proc is None:
                if np_.restart_at is not None and now >= np_.restart_at:
                    np_.restart_at = None
                    self._spawn(np_)
                continue
            code = np_.proc.poll()
            if code is None:
                if np_.state == "running" and now - np_.last_seen > HANG_TIMEOUT_S:
                    self.on_event(np_.spec.id, f"no heartbeat for {HANG_TIMEOUT_S:.0f} s: killing it")
                    np_.proc.kill()
                continue
            np_.proc = None
            if np_.state == "done" or (self.stop_requested and code in (0, 143, -signal.SIGTERM)):
                np_.state = "done" if np_.state == "done" else "stopped"
                if not (np_.spec.restart == "always" and not self.stop_requested):
                    continue
            else:
                if not np_.error:
                    self.on_event(np_.spec.id, f"exited with code {code}")
                np_.state = "failed"
            self._maybe_restart(np_)

    def _maybe_restart(self, np_: NodeProc) -> None:
        policy = np_.spec.restart
        wants = policy == "always" or (policy == "on-failure" and np_.state == "failed")
        if self.stop_requested or not wants or np_.restarts >= np_.spec.max_restarts:
            if np_.state == "failed":
                raise GraphFailed(f"node {np_.spec.id!r} failed" +
                                  (f" after {np_.restarts} restart(s)" if np_.restarts else ""))
            return
        delay = np_.spec.restart_delay_s * (2 ** np_.restarts)  # exponential backoff
        np_.restarts += 1
        np_.error = ""
        np_.restart_at = time.monotonic() + delay
        self.on_event(np_.spec.id, f"restarting in {delay:.2f} s (restart {np_.restarts}/{np_.spec.max_restarts})")

    # --- lifecycle ---------------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stop_requested = True

    def run(self, duration: float | None = None) -> int:
        old = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._link_inputs()
            for np_ in self.procs.values():
                self._spawn(np_)
            self._wait_ready()
            if self.stop_requested:
                return 0
            for nid in reversed(self.graph.order):  # consumers first, sources last
                self._send(nid, "start")
                self.procs[nid].state = "running"
            self.started_at = time.monotonic()
            self._loop(duration)
            return 0
        except GraphFailed as exc:
            self.on_event("supervisor", str(exc))
            return 1
        finally:
            self._stop_all()
            for s, handler in old.items():
                signal.signal(s, handler)
            self.control.close()
            self.ctx.term()
            shutil.rmtree(self.rundir, ignore_errors=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.stop_requested:
            self._handle_control(50)
            self._watch_processes()
            if all(p.state == "ready" for p in self.procs.values()):
                return
            if time.monotonic() > deadline:
                waiting = [n for n, p in self.procs.items() if p.state != "ready"]
                raise GraphFailed(f"nodes not ready after {READY_TIMEOUT_S:.0f} s: {waiting}")

    def _loop(self, duration: float | None) -> None:
        last_stats = 0.0
        while True:
            self._handle_control(50)
            self._watch_processes()
            self._release_finished()
            now = time.monotonic()
            if now - last_stats > 0.25:
                last_stats = now
                self.on_stats(self.procs)
                self.write_status()
            if all(p.state in ("done", "stopped") and p.proc is None and p.restart_at is None
                   for p in self.procs.values()):
                return
            if duration is not None and now - self.started_at >= duration:
                self.stop_requested = True
            if self.stop_requested:
                return

    def _stop_all(self) -> None:
        """Sources first, so end-of-stream flows down and recorders flush; then the rest; then force."""
        self.stop_requested = True
        alive = lambda ps: [p for p in ps if p.proc is not None and p.proc.poll() is None]  # noqa: E731
        sources = [p for p in self.procs.values() if p.is_source]
        for p in alive(sources):
            self._send(p.spec.id, "stop")
        self._drain_until(lambda: not alive(self.procs.values()), STOP_GRACE_S)
        for p in alive(self.procs.values()):
            self._send(p.spec.id, "stop")
        self._drain_until(lambda: not alive(self.procs.values()), 2.0)
        for p in alive(self.procs.values()):
            p.proc.terminate()
        self._drain_until(lambda: not alive(self.procs.values()), 2.0)
        for p in alive(self.procs.values()):
            p.proc.kill()
            p.proc.wait()
        self.on_stats(self.procs)

    # --- exposure: what `emgflow view` reads to attach to this run -----------------------------------
    def write_status(self) -> None:
        """Replace ``RUNDIR/status.json`` (the wiring, each node's state, figures and output endpoints)
        so a view can attach to this run from another process; SIGTERM to ``pid`` stops it."""
        nodes = {nid: {"type": p.spec.type, "params": p.spec.params, "state": p.state, "restarts": p.restarts,
                       "stats": p.stats, "outputs": p.runtime["outputs"],
                       "inputs": {port: [e.source, e.output, e.policy, e.queue] for port, e in p.spec.inputs.items()}}
                 for nid, p in self.procs.items()}
        status = {"pid": os.getpid(), "name": self.graph.name, "description": self.graph.description,
                  "file": self.graph.file, "transport": self.graph.transport, "nodes": nodes}
        tmp = os.path.join(self.rundir, "status.json.tmp")
        with open(tmp, "w") as f:
            json.dump(status, f, default=str)
        os.replace(tmp, os.path.join(self.rundir, "status.json"))

    def _drain_until(self, cond: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            self._handle_control(20)
            self._release_finished()
