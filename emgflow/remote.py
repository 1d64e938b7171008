"""The supervisor's side of a graph across hosts: a link to each host's agent, and a proxy that makes
a process an agent runs look like a local ``subprocess.Popen`` (poll/terminate/kill/wait), so restart
policies, hang detection, the stop order and the live table work unchanged.

A link pings its agent every ``PING_S`` with a clock request (the ping IS the clock exchange);
``DOWN_AFTER_S`` without a reply and the host is reported unreachable by name. Its processes are then
neither killed nor restarted (they cannot be reached: a hand there reaches its safe pose through its
own watchdog), and when the agent answers again the gap is reported and counted.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import replace
from typing import Any, Callable

import zmq

from . import clocksync, control
from .agent import FROM_AGENT
from .contract import ProcessSpec
from .graph import Graph
from .hosts import HostSpec
from .keys import RUN_PASSWORD, Curve, Plain, public_keys
from .plan import Endpoints

PING_S = 0.25
DOWN_AFTER_S = 0.8   # with pings every 0.25 s: a cut is reported 0.55-0.8 s after it
CONNECT_S = 10.0


class AgentError(RuntimeError):
    """An agent that does not answer, or refuses what the supervisor asked."""


class RemoteProcess:
    """The ``Popen`` subset the supervisor uses, for a process that ``link``'s agent runs."""

    def __init__(self, link: "AgentLink", name: str, since: int) -> None:
        self.link, self.name, self.since = link, name, since  # since: pings sent before the launch
        self.returncode: int | None = None

    def poll(self) -> int | None:
        self.link.tick()
        return self.returncode

    def terminate(self) -> None:
        self.link.send("signal", name=self.name, sig=int(signal.SIGTERM))

    def kill(self) -> None:
        self.link.send("signal", name=self.name, sig=int(signal.SIGKILL))

    def wait(self, timeout: float = 2.0) -> int | None:
        """Its exit code, or None when its agent cannot be reached (then it is left to the agent)."""
        deadline = time.monotonic() + timeout
        while self.poll() is None and self.link.up and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.returncode


class AgentLink:
    """One agent: its run folder, its reserved ports, its processes, its clock and its liveness."""

    def __init__(self, ctx: zmq.Context, host: HostSpec, curve: Curve, on_event: Callable[[str, str], None]) -> None:
        self.host, self.on_event = host, on_event
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        curve.client(self.sock)
        self.sock.connect(f"tcp://{host.address}:{host.agent}")
        self.tracker = clocksync.Tracker()
        self.procs: dict[str, RemoteProcess] = {}
        self.rundir = ""
        self.up = False
        self.pings = 0
        self.last_ping = self.last_reply = self.down_since = 0.0
        self.drops, self.down_s, self.refused, self.bad = 0, 0.0, 0, 0

    def send(self, kind: str, **body: Any) -> None:
        try:
            self.sock.send(control.pack(kind, **body), zmq.NOBLOCK)
        except zmq.Again:
            pass  # no connection yet or a full queue: the liveness check reports a silent agent

    def connect(self) -> None:
        self.send("hello")
        self.rundir = str(self._await("hello")["rundir"])

    def reserve(self) -> int:
        """A free tcp port on the agent's address (it reserves it; a node there binds it a moment later)."""
        self.send("port")
        return int(self._await("port")["port"])

    def launch(self, spec: ProcessSpec) -> RemoteProcess:
        proc = self.procs[spec.name] = RemoteProcess(self, spec.name, self.pings)
        self.send("launch", spec=spec.to_json())
        return proc

    def tick(self) -> None:
        """Read what the agent said, ping it when due, report it silent after DOWN_AFTER_S."""
        self._pump(0)
        now = time.monotonic()
        if now - self.last_ping >= PING_S:
            self.pings += 1
            self.send("clock", n=self.pings, **self.tracker.request())
            self.last_ping = now
        if self.up and now - self.last_reply > DOWN_AFTER_S:
            self.up, self.down_since = False, self.last_reply
            self.drops += 1
            left = sum(p.returncode is None for p in self.procs.values())
            self.on_event(self.host.name, f"agent silent for {DOWN_AFTER_S:g} s (link down or agent dead): its "
                                          f"{left} process(es) are left to it, neither killed nor restarted")

    def _pump(self, timeout_ms: int) -> list[dict[str, Any]]:
        """Handle every waiting reply (waiting up to ``timeout_ms`` for the first); returns them."""
        got = []
        while self.sock.poll(timeout_ms, zmq.POLLIN):
            timeout_ms = 0
            try:
                got.append(control.unpack(self.sock.recv(), FROM_AGENT))
                self._on(got[-1])
            except (control.ControlError, KeyError, TypeError, ValueError):
                self.bad += 1
        return got

    def _await(self, kind: str) -> dict[str, Any]:
        deadline = time.monotonic() + CONNECT_S
        while time.monotonic() < deadline:
            for msg in self._pump(50):
                if msg["t"] == kind:
                    return msg
        raise AgentError(f"host {self.host.name!r}: the agent at {self.host.address}:{self.host.agent} did not answer "
                         f"{kind!r} within {CONNECT_S:.0f} s (is `emgflow agent` running there, admitting this host's key?)")

    def _on(self, msg: dict[str, Any]) -> None:
        now = time.monotonic()
        if not self.up and self.rundir:
            gap = now - self.down_since
            self.down_s += gap
            self.on_event(self.host.name, f"agent answers again after {gap:.1f} s of silence")
        self.up, self.last_reply = True, now
        kind = msg["t"]
        if kind == "clock":
            self.tracker.add(msg, clocksync.now_ns())
            running = set(msg["running"])
            for p in self.procs.values():
                if p.returncode is None and p.since < int(msg["n"]) and p.name not in running:
                    p.returncode = -int(signal.SIGKILL)
                    self.on_event(p.name, "is gone from its agent, which never reported its exit")
            if int(msg["refused"]) > self.refused:
                self.on_event(self.host.name, f"agent refused {int(msg['refused']) - self.refused} peer(s) whose CURVE key is not listed")
                self.refused = int(msg["refused"])
        elif kind == "exit":
            p = self.procs.get(str(msg["name"]))
            if p is not None and p.returncode is None:
                p.returncode = int(msg["code"])
        elif kind == "unknown":  # the agent restarted: what it ran for us died with it
            for p in self.procs.values():
                if p.returncode is None:
                    p.returncode = -int(signal.SIGKILL)
                    self.on_event(p.name, f"is gone: host {self.host.name!r}'s agent no longer knows this run (it restarted)")
        elif kind == "error":
            self.on_event(self.host.name, f"agent: {msg['error']}")

    def close(self) -> None:
        self.send("end")
        self.sock.close(linger=500)  # let "end" leave: the agent then stops what is left and drops the run folder


class Hosts:
    """Everything a graph with ``hosts:`` adds to a run: the supervisor's key pair, each host's endpoints
    (its agent reserves its ports and makes its run folder) and a link per agent."""

    def __init__(self, graph: Graph, ctx: zmq.Context, rundir: str, on_event: Callable[[str, str], None]) -> None:
        self.local = next(h for h in graph.hosts.values() if not h.agent)
        if not os.path.isfile(self.local.secret_file):
            raise AgentError(f"{self.local.secret_file} is missing: host {self.local.name!r} (no `agent:`) runs "
                             "`emgflow run`, so its secret key must be on this machine")
        with socket.socket() as probe:
            try:
                probe.bind((self.local.address, 0))
            except OSError as exc:
                raise AgentError(f"host {self.local.name!r} (no `agent:`) runs `emgflow run`, but its address "
                                 f"{self.local.address} is not this machine's ({exc.strerror})") from None
        keys = sorted({h.public_key for h in graph.hosts.values()})
        allowed = sorted({*keys, *(public_keys(graph.keys) if graph.keys else [])})
        self.curve = Curve(self.local.public_key, self.local.secret_file, allowed, keys)
        self.endpoints = {self.local.name: Endpoints("ipc", rundir, self.curve, Plain.for_run(rundir), self.local.address)}
        self.links: dict[str, AgentLink] = {}
        try:
            for h in graph.hosts.values():
                if h.agent:
                    link = self.links[h.name] = AgentLink(ctx, h, replace(self.curve, server_key=h.public_key), on_event)
                    link.connect()
                    remote = replace(self.curve, server_key=h.public_key, key_file="")  # the agent fills in its own
                    plain = Plain(f"{link.rundir}/{RUN_PASSWORD}")  # made by the agent: it never leaves that host
                    self.endpoints[h.name] = Endpoints("ipc", link.rundir, remote, plain, h.address, link.reserve)
        except AgentError:
            self.close()
            raise

    def wiring(self) -> tuple[Curve, dict[str, Endpoints]]:
        """The supervisor's CURVE and each host's endpoints, as ``plan`` takes them."""
        return self.curve, self.endpoints

    def control(self) -> str:
        """The supervisor's control socket: tcp+CURVE on its host's address, for every process."""
        return f"tcp://{self.local.address}:0"

    def tick(self) -> None:
        for link in self.links.values():
            link.tick()

    def reachable(self, host: str) -> bool:
        link = self.links.get(host)
        return link is None or link.up

    def heard(self, host: str, since: float) -> bool:
        """``host``'s agent answered at or after ``since`` (time.monotonic); always true for ours."""
        link = self.links.get(host)
        return link is None or link.last_reply >= since

    def offsets(self, host: str) -> dict[str, int]:
        """Every other host's clock offset relative to ``host``'s (ns), as the links estimate them."""
        now = clocksync.now_ns()
        off = {self.local.name: 0, **{name: link.tracker.offset_at(now) for name, link in self.links.items()
                                      if link.tracker.samples}}
        if host not in off:
            return {}  # this host's own clock is not known yet: its inputs wait, counted as unmapped
        return {h: o - off[host] for h, o in off.items() if h != host}

    def figures(self) -> dict[str, dict[str, Any]]:
        """Per remote host: reachable now, link drops and the seconds they lasted, clock, refused peers."""
        return {name: {"up": link.up, "drops": link.drops, "down_s": round(link.down_s, 3), "refused": link.refused,
                       **({"offset_ns": link.tracker.offset_ns, "uncertainty_ns": link.tracker.uncertainty_ns,
                           "drift_ppm": round(link.tracker.drift_ppm, 2)} if link.tracker.samples else {}),
                       "bad_replies": link.bad} for name, link in self.links.items()}

    def close(self) -> None:
        for link in self.links.values():
            link.close()
