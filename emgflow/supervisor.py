"""Runs a graph: spawns one process per node (or per group of nodes), holds the start until every
subscriber is connected, watches heartbeats and exits, restarts per policy, stops in order, and leaves
no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, Callable

import zmq

from . import control
from .contract import spawn
from .graph import RUNDIR_PREFIX, Graph
from .keys import Gate
from .plan import RestartPolicy, one_host, plan
from .procs import NodeProc, OsProcess
from .remote import AgentError, Hosts

READY_TIMEOUT_S = 120.0   # model loading and torch import happen before "ready"
HANG_TIMEOUT_S = 1.0      # no heartbeat (a thread of its own, every 250 ms) for this long: hung
STALL_REPORT_S = 2.0      # a send waiting this long on its consumers is reported, naming them
STOP_GRACE_S = 5.0
FINAL = ("done", "stopped", "failed")


class GraphFailed(RuntimeError):
    pass


class Supervisor:
    """``Supervisor(graph).run(duration)`` -> exit code (0 clean, 1 a node failed for good)."""

    def __init__(self, graph: Graph, *, on_event: Callable[[str, str], None] | None = None,
                 on_stats: Callable[[dict[str, NodeProc]], None] | None = None) -> None:
        self.graph = graph
        self.on_event = on_event or (lambda node, text: print(f"[{node}] {text}", file=sys.stderr))
        self.on_stats = on_stats or (lambda procs: None)
        self.rundir = tempfile.mkdtemp(prefix=RUNDIR_PREFIX)  # its length is checked at validation
        self.ctx = zmq.Context()
        try:
            self.hosts = Hosts(graph, self.ctx, self.rundir, self.on_event) if graph.hosts else None
        except AgentError as exc:
            self.ctx.term()
            shutil.rmtree(self.rundir, ignore_errors=True)
            raise GraphFailed(str(exc)) from None
        self.links = self.hosts.links if self.hosts is not None else {}
        curve, endpoints = self.hosts.wiring() if self.hosts is not None else one_host(graph, self.rundir)
        self.gate = Gate(self.ctx, curve) if curve is not None else None
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.server(self.control)
        self.control.bind(self.hosts.control() if self.hosts is not None else endpoints.control())
        control_ep = self.control.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.poller = zmq.Poller()
        for sock in [self.control, *(link.sock for link in self.links.values())]:
            self.poller.register(sock, zmq.POLLIN)
        self.procs = {nid: NodeProc(graph.nodes[nid], graph.nodes[nid].process) for nid in graph.order}
        self.processes = {name: OsProcess(spec, [n.name for n in spec.nodes],
                                          RestartPolicy.of([graph.nodes[n.name] for n in spec.nodes]),
                                          host=graph.nodes[spec.nodes[0].name].host)
                          for name, spec in plan(graph, endpoints, control_ep).items()}
        self.stop_requested = False
        self.started_at = 0.0
        self.bad_control = 0
        self.refused = 0          # peers refused by every gate of the run (not of this run)
        self._control_refused = 0

    def _nodes(self, p: OsProcess) -> list[NodeProc]:
        return [self.procs[n] for n in p.members]

    def _set_state(self, p: OsProcess, state: str) -> None:
        p.state = state
        for n in self._nodes(p):
            if n.state != "done" or state in ("starting", "new"):
                n.state = state

    # --- process control ---------------------------------------------------------------------------
    def _spawn(self, p: OsProcess) -> None:
        p.released = False
        p.failed_node = ""
        p.proc = self.links[p.host].launch(p.spec) if p.host in self.links else spawn(p.spec)
        self._set_state(p, "starting")
        p.last_seen = time.monotonic()
        p.spawned_ns, p.ready_ns = time.monotonic_ns(), 0
        p.refused = 0

    def _send(self, name: str, kind: str, **body: Any) -> None:
        try:
            self.control.send_multipart([name.encode(), control.pack(kind, **body)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the process is gone; its exit is handled by the process watch

    def _send_clocks(self) -> None:
        """Each process: the other hosts' clocks relative to its own, so its cross-host inputs map their
        stamps (before the start, then every 0.25 s as the drift moves them)."""
        for p in self.processes.values() if self.hosts is not None else ():
            self._send(p.spec.name, control.CLOCK, offsets=self.hosts.offsets(p.host))

    def _handle_control(self, timeout_ms: int) -> None:
        ready = dict(self.poller.poll(timeout_ms))  # agents' replies too: a clock reply is read as it lands
        if self.hosts is not None:
            self.hosts.tick()
        if self.control not in ready:
            return
        while True:
            try:
                frames = self.control.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            name = frames[0].decode(errors="replace").removesuffix(control.BEAT)
            p = self.processes.get(name) if len(frames) == 2 else None
            try:
                if p is None:
                    raise control.ControlError("not from a process of this graph")
                msg = control.unpack(frames[1], control.FROM_PROCESS)
                self._on_message(p, msg)
            except (control.ControlError, KeyError, TypeError, AttributeError):
                self.bad_control += 1

    def _on_message(self, p: OsProcess, msg: dict[str, Any]) -> None:
        p.last_seen = time.monotonic()
        kind = msg["t"]
        if kind == control.HB:
            for nid, stats in msg["stats"].items():
                node = self.procs[self._member(p, {"node": nid})]
                if node.state != "done":  # beats use their own socket: one may land after the final figures
                    node.stats = dict(stats)
            self._report_stalls(p, dict(msg.get("stalled", {})))
            p.refused = self._note_refused(p.spec.name, p.refused, int(msg.get("refused", 0)))
        elif kind == control.READY:
            p.ready_ns = time.monotonic_ns()
            self._set_state(p, "ready")
            if self.started_at:  # a restarted process joins a running graph at once
                self._send(p.spec.name, control.START)
                self._set_state(p, "running")
        elif kind == control.DONE:
            node = self.procs[self._member(p, msg)]
            node.stats, node.latency, node.state = dict(msg["stats"]), dict(msg.get("latency", {})), "done"
            if all(n.state == "done" for n in self._nodes(p)):
                p.state = "done"
        elif kind == control.ERROR:
            who = msg["node"] if msg.get("node") in p.members else p.spec.name  # a process-level failure
            p.failed_node = who
            if who in self.procs:
                self.procs[who].error = str(msg["tb"])
            self.on_event(who, f"crashed: {msg['error']}\n{str(msg['tb']).rstrip()}")

    def _report_stalls(self, p: OsProcess, stalled: dict[str, Any]) -> None:
        """Name a consumer that keeps its producer waiting (once per stall)."""
        for nid in stalled:
            self._member(p, {"node": nid})
        for nid in list(p.stalls):
            if nid not in stalled:
                p.stalls.discard(nid)
        for nid, info in stalled.items():
            if nid in p.stalls or float(info["s"]) < STALL_REPORT_S:
                continue
            p.stalls.add(nid)
            port = str(info["port"])
            slow = [e.node for e in self.graph.consumers(nid, port) if self.procs[e.node].process != p.spec.name]
            self.on_event(nid, f"stalled: its output {port!r} has waited {float(info['s']):.1f} s for its consumers "
                               f"({', '.join(slow)}) to read")

    def _note_refused(self, who: str, before: int, now: int) -> int:
        """Say how many peers a gate refused since its last count (none of them reached a node)."""
        if now > before:
            self.refused += now - before
            self.on_event(who, f"refused {now - before} peer(s) not of this run (tcp: an unlisted key; ipc: no run password)")
        return now

    @staticmethod
    def _member(p: OsProcess, msg: dict[str, Any]) -> str:
        node = msg.get("node")
        if not isinstance(node, str) or node not in p.members:
            raise control.ControlError(f"{p.spec.name}: no node {node!r} in this process")
        return node

    def _consumers_of(self, p: OsProcess) -> set[str]:
        return {e.node for n in self.procs.values() for e in n.spec.inputs.values()
                if e.source in p.members and e.node not in p.members}

    def _release_finished(self) -> None:
        """Let a finished process exit once every consumer of its outputs has finished too."""
        for p in self.processes.values():
            if p.state != "done" or p.released or p.proc is None:
                continue
            if all(self.procs[c].state in FINAL for c in self._consumers_of(p)):
                self._send(p.spec.name, control.EXIT)
                p.released = True

    def _watch_processes(self) -> None:
        now = time.monotonic()
        for p in self.processes.values():
            if p.proc is None:
                if p.restart_at is not None and now >= p.restart_at:
                    p.restart_at = None
                    self._spawn(p)
                continue
            code = p.proc.poll()
            if code is None:
                if not self._reachable(p):
                    p.last_seen = now  # its beats cannot arrive: neither hung nor killable from here
                elif p.state == "running" and now - p.last_seen > HANG_TIMEOUT_S and self._heard(p, p.last_seen + HANG_TIMEOUT_S):
                    self.on_event(p.spec.name, f"no heartbeat for {HANG_TIMEOUT_S:.0f} s: killing it")
                    p.proc.kill()
                continue
            p.proc = None
            if p.state == "done" or (self.stop_requested and code in (0, 143, -signal.SIGTERM)):
                self._set_state(p, "done" if p.state == "done" else "stopped")
                if not (p.policy.restart == "always" and not self.stop_requested):
                    continue
            else:
                if not p.failed_node:
                    self.on_event(p.spec.name, f"exited with code {code}")
                self._set_state(p, "failed")
            self._maybe_restart(p)

    def _reachable(self, p: OsProcess) -> bool:
        return self.hosts is None or self.hosts.reachable(p.host)

    def _heard(self, p: OsProcess, since: float) -> bool:
        """Its host answered after ``since``: a silent process there is hung, not cut off by its link."""
        return self.hosts is None or self.hosts.heard(p.host, since)

    def _maybe_restart(self, p: OsProcess) -> None:
        policy = p.policy
        wants = policy.restart == "always" or (policy.restart == "on-failure" and p.state == "failed")
        if self.stop_requested or not wants or p.restarts >= policy.max_restarts:
            if p.state == "failed":
                what = f"node {p.failed_node or p.spec.name!r}" + (f" (group {p.spec.name!r})" if len(p.members) > 1 else "")
                raise GraphFailed(f"{what} failed" + (f" after {p.restarts} restart(s)" if p.restarts else ""))
            return
        delay = policy.restart_delay_s * (2 ** p.restarts)  # exponential backoff
        p.restarts += 1
        for n in self._nodes(p):
            n.restarts, n.error = p.restarts, ""
        p.restart_at = time.monotonic() + delay
        self.on_event(p.spec.name, f"restarting in {delay:.2f} s (restart {p.restarts}/{policy.max_restarts})")

    # --- lifecycle ---------------------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self.stop_requested = True

    def _start_order(self) -> list[OsProcess]:
        """Consumers first, processes hosting a source last (a source's data must find everyone ready)."""
        rank = {nid: i for i, nid in enumerate(self.graph.order)}
        ordered = sorted(self.processes.values(), key=lambda p: -max(rank[m] for m in p.members))
        return sorted(ordered, key=lambda p: any(self.procs[m].is_source for m in p.members))

    def run(self, duration: float | None = None) -> int:
        old = {s: signal.signal(s, self.request_stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            for p in self.processes.values():
                self._spawn(p)
            self._wait_ready()
            if self.stop_requested:
                return 0
            self._send_clocks()
            for p in self._start_order():
                self._send(p.spec.name, control.START)
                self._set_state(p, "running")
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
            if self.hosts is not None:
                self.hosts.close()
            if self.gate is not None:
                self.gate.stop()
            self.ctx.term()
            shutil.rmtree(self.rundir, ignore_errors=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.stop_requested:
            self._handle_control(50)
            self._watch_processes()
            if all(p.state == "ready" for p in self.processes.values()):
                return
            if time.monotonic() > deadline:
                waiting = [n for n, p in self.processes.items() if p.state != "ready"]
                raise GraphFailed(f"processes not ready after {READY_TIMEOUT_S:.0f} s: {waiting}")

    def _loop(self, duration: float | None) -> None:
        last_stats = 0.0
        while True:
            self._handle_control(50)
            self._watch_processes()
            self._release_finished()
            now = time.monotonic()
            if now - last_stats > 0.25:
                last_stats = now
                self._send_clocks()
                if self.gate is not None:
                    self._control_refused = self._note_refused("supervisor", self._control_refused, self.gate.refused)
                self.on_stats(self.procs)
                self.write_status()
            if all(p.state in ("done", "stopped") and p.proc is None and p.restart_at is None
                   for p in self.processes.values()):
                return
            if duration is not None and now - self.started_at >= duration:
                self.stop_requested = True
            if self.stop_requested:
                return

    def _stop_all(self) -> None:
        """Sources first, so end-of-stream flows down and recorders flush; then the rest; then force."""
        self.stop_requested = True
        alive = lambda ps: [p for p in ps if p.proc is not None and p.proc.poll() is None and self._reachable(p)]  # noqa: E731
        with_sources = [p for p in self.processes.values() if any(self.procs[m].is_source for m in p.members)]
        for p in alive(with_sources):
            self._send(p.spec.name, control.STOP)
        self._drain_until(lambda: not alive(self.processes.values()), STOP_GRACE_S)
        for p in alive(self.processes.values()):
            self._send(p.spec.name, control.STOP)
        self._drain_until(lambda: not alive(self.processes.values()), 2.0)
        for p in alive(self.processes.values()):
            p.proc.terminate()
        self._drain_until(lambda: not alive(self.processes.values()), 2.0)
        for p in alive(self.processes.values()):
            p.proc.kill()
            p.proc.wait()
        for p in self.processes.values():
            if p.proc is not None and p.proc.poll() is None:
                self.on_event(p.spec.name, f"left running: host {p.host!r} cannot be reached (its agent stops it "
                                           "once this supervisor stays silent)")
        self.on_stats(self.procs)

    # --- exposure: what `emgflow view` reads to attach to this run -----------------------------------
    def endpoints(self) -> dict[str, tuple[str, str]]:
        """``node.port`` -> (endpoint, topic) of every output bound to a socket (an output whose
        consumers all share its process has none: it cannot be tapped)."""
        return {f"{n.name}.{port}": (o.endpoint, o.topic)
                for p in self.processes.values() for n in p.spec.nodes for port, o in n.outputs.items()}

    def write_status(self) -> None:
        """Replace ``RUNDIR/status.json`` (the wiring, each node's state, figures and output endpoints)
        so a view can attach to this run from another process; SIGTERM to ``pid`` stops it."""
        nodes = {nid: {"type": p.spec.type, "params": p.spec.params, "state": p.state, "restarts": p.restarts,
                       "stats": p.stats, "process": p.process, "host": p.spec.host,
                       "inputs": {port: [e.source, e.output, e.policy, e.queue] for port, e in p.spec.inputs.items()}}
                 for nid, p in self.procs.items()}
        status = {"pid": os.getpid(), "name": self.graph.name, "description": self.graph.description,
                  "file": self.graph.file, "transport": self.graph.transport, "nodes": nodes,
                  "endpoints": self.endpoints()}
        tmp = os.path.join(self.rundir, "status.json.tmp")
        with open(tmp, "w") as f:
            json.dump(status, f, default=str)
        os.replace(tmp, os.path.join(self.rundir, "status.json"))

    def _drain_until(self, cond: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            self._handle_control(20)
            self._release_finished()
