"""``emgflow agent``: runs a host's share of graphs whose supervisor sits on another host.

It binds a CURVE-server ROUTER on its address and admits only the listed public keys (a ``Gate``: an
unlisted peer is refused and counted, it never launches anything). An admitted supervisor says
``hello`` (the agent makes a run folder for its ipc sockets), asks for ``port``s (reserved on this
host's address: the supervisor cannot reserve one here), ``launch``es processes (a
``contract.ProcessSpec``, started exactly as the supervisor starts a local one, with this host's own
key file filled in: a secret never leaves its host), sends ``signal``s, and pings with ``clock``
requests, answered with the clock stamps, the processes still running and the refused count. The
agent reports each ``exit``, and answers ``unknown`` to a supervisor it has no session for (it restarted). Its runners die with it (PR_SET_PDEATHSIG and a parent-pid check), and a
supervisor silent for ``orphan_s`` has its processes stopped (their teardown: a hand's safe pose).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from . import clocksync, control
from .contract import ProcessSpec, spawn
from .graph import RUNDIR_PREFIX
from .keys import Curve, Gate, Plain, public_keys
from .plan import free_port

TO_AGENT = frozenset({"hello", "port", "launch", "signal", "clock", "end"})
FROM_AGENT = frozenset({"hello", "port", "exit", "clock", "error", "unknown"})
ORPHAN_S = 30.0
SIGNALS = {int(signal.SIGTERM), int(signal.SIGKILL)}


def log(text: str) -> None:
    print(f"emgflow agent: {text}", file=sys.stderr, flush=True)


@dataclass
class Session:
    """One supervisor's share of this host: its run folder and its processes."""

    rundir: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    last_seen: float = 0.0


class Agent:
    def __init__(self, address: str, port: int, key_file: str, admit: str, orphan_s: float = ORPHAN_S) -> None:
        self.address, self.key_file, self.orphan_s = address, key_file, orphan_s
        allowed = public_keys(admit)
        self.admitted = len(allowed)
        self.ctx = zmq.Context()
        self.gate = Gate(self.ctx, Curve("", key_file, allowed))
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        try:
            Curve("", key_file, []).server(self.sock)
            self.sock.bind(f"tcp://{address}:{port}")
        except (OSError, ValueError, zmq.ZMQError):
            self.close()
            raise
        self.sessions: dict[bytes, Session] = {}
        self.stopping = False
        self.bad = 0
        self._refused = 0

    def serve(self) -> int:
        """Until SIGTERM / SIGINT / SIGHUP; then every process it runs is stopped. Returns the exit code."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._stop)
        log(f"listening on {self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()}, admitting {self.admitted} key(s)")
        try:
            while not self.stopping:
                if self.sock.poll(50, zmq.POLLIN):
                    self._read()
                self._reap()
                self._orphans()
                if self.gate.refused > self._refused:
                    log(f"refused {self.gate.refused - self._refused} peer(s) whose CURVE key is not listed")
                    self._refused = self.gate.refused
        finally:
            for peer in list(self.sessions):
                self._end(peer, "the agent stops")
            self.close()
        return 0

    def _stop(self, *_: Any) -> None:
        self.stopping = True

    def _reply(self, peer: bytes, kind: str, **body: Any) -> None:
        try:
            self.sock.send_multipart([peer, control.pack(kind, **body)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the supervisor is gone or unreachable: its liveness check notices

    def _read(self) -> None:
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                if len(frames) != 2:
                    raise control.ControlError("not one message")
                self._on(frames[0], control.unpack(frames[1], TO_AGENT))
            except (control.ControlError, KeyError, TypeError, ValueError) as exc:
                self.bad += 1
                log(f"malformed request refused ({self.bad} so far): {exc}")
                self._reply(frames[0], "error", error=f"malformed request: {exc}")
            except OSError as exc:  # a launch this host cannot make: said, and the agent serves on
                log(f"request failed: {exc}")
                self._reply(frames[0], "error", error=f"on this host: {exc}")

    def _on(self, peer: bytes, msg: dict[str, Any]) -> None:
        kind, session = msg["t"], self.sessions.get(peer)
        if kind == "hello" and session is None:
            session = self.sessions[peer] = Session(tempfile.mkdtemp(prefix=RUNDIR_PREFIX))
            Plain.for_run(session.rundir)  # the password this host's ipc edges log in with (0600, never sent)
            log(f"supervisor {peer.hex()} connected (run folder {session.rundir})")
        if session is None:  # never said hello, or said it to an agent that has since restarted
            self._reply(peer, "unknown")
            return
        session.last_seen = time.monotonic()
        if kind == "hello":
            self._reply(peer, "hello", rundir=session.rundir)
        elif kind == "port":
            self._reply(peer, "port", port=free_port(self.address))
        elif kind == "launch":
            self._launch(peer, session, ProcessSpec.from_json(str(msg["spec"])))
        elif kind == "signal":
            proc, sig = session.procs.get(str(msg["name"])), int(msg["sig"])
            if sig not in SIGNALS:
                raise control.ControlError(f"signal {sig} is not SIGTERM or SIGKILL")
            if proc is not None and proc.poll() is None:
                proc.send_signal(sig)
        elif kind == "clock":
            stamps = {k: v for k, v in clocksync.answer(msg).items() if k != "t"}
            self._reply(peer, "clock", **stamps, n=int(msg["n"]), running=sorted(session.procs), refused=self.gate.refused)
        elif kind == "end":
            self._end(peer, "its supervisor ended the run")

    def _launch(self, peer: bytes, session: Session, spec: ProcessSpec) -> None:
        if spec.name in session.procs:
            self._reply(peer, "error", error=f"{spec.name!r} is already running here")
            return
        session.procs[spec.name] = spawn(spec.on_host(self.key_file, os.getpid()))
        log(f"started {spec.name!r} (pid {session.procs[spec.name].pid})")

    def _reap(self) -> None:
        for peer, session in self.sessions.items():
            for name, proc in list(session.procs.items()):
                code = proc.poll()
                if code is not None:
                    del session.procs[name]
                    log(f"{name!r} exited with code {code}")
                    self._reply(peer, "exit", name=name, code=code)

    def _orphans(self) -> None:
        now = time.monotonic()
        for peer, session in list(self.sessions.items()):
            if now - session.last_seen > self.orphan_s:
                self._end(peer, f"its supervisor has been silent for {self.orphan_s:g} s")

    def _end(self, peer: bytes, why: str) -> None:
        """Stop a supervisor's processes (SIGTERM: their teardown runs; SIGKILL after 2 s), drop its folder."""
        session = self.sessions.pop(peer)
        if session.procs:
            log(f"stopping {len(session.procs)} process(es): {why}")
        for proc in session.procs.values():
            proc.terminate()
        deadline = time.monotonic() + 2.0
        for proc in session.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(session.rundir, ignore_errors=True)

    def close(self) -> None:
        self.sock.close()
        self.gate.stop()
        self.ctx.term()
