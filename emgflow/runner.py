"""One node process: receive, decode, call the node, encode, send; heartbeats to the supervisor.

Started by the supervisor as ``python -m emgflow.runner SPEC_JSON``. It dies with its parent
(PR_SET_PDEATHSIG plus a parent-pid check), ignores Ctrl-C (the supervisor orchestrates the stop)
and reports any exception with its traceback before exiting non-zero.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
import zmq

from .codec import MalformedFrame, decode
from .message import Msg
from .node import Node
from .registry import resolve
from .trace import LatencyLog
from .transport import InputSpec, OutputSpec, Publisher, Subscriber

HEARTBEAT_S = 0.25
now_ns = time.monotonic_ns  # message.now_ns without the wrapper call: this path runs on cold caches


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGTERM us when the supervisor dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the parent-pid check in the loop still catches it
    if os.getppid() != parent:
        sys.exit(0)


@dataclass
class InputState:
    sub: Subscriber
    queue: deque = field(default_factory=deque)
    last_seq: int | None = None
    received: int = 0
    dropped: int = 0
    gaps: int = 0
    eos: bool = False


class Runner:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name: str = spec["name"]
        self.ctx = zmq.Context.instance()
        self.control = self.ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.IDENTITY, self.name.encode())
        self.control.setsockopt(zmq.LINGER, 1000)
        self.control.connect(spec["control"])
        cls = resolve(spec["type"])
        self.node: Node = cls(name=self.name, **spec["params"])
        self.outputs = {p: Publisher(self.ctx, OutputSpec(**o)) for p, o in spec["outputs"].items()}
        self.inputs = {p: InputState(Subscriber(self.ctx, InputSpec(**i))) for p, i in spec["inputs"].items()}
        self.by_socket = {st.sub.sock: (p, st) for p, st in self.inputs.items()}
        self.handlers = {p: self.node.handler(p) for p in self.inputs}
        self.poller = zmq.Poller()
        self.poller.register(self.control, zmq.POLLIN)
        for st in self.inputs.values():
            self.poller.register(st.sub.sock, zmq.POLLIN)
        self.malformed = 0
        self.sent = 0
        self.latency = LatencyLog()
        self.stopping = False
        self.last_hb = 0.0

    # --- control -------------------------------------------------------------------------------
    def tell(self, kind: str, **body: Any) -> None:
        self.control.send(msgpack.packb({"t": kind, **body}, use_bin_type=True))

    def read_control(self, timeout_ms: int = 0) -> str | None:
        if not self.control.poll(timeout_ms, zmq.POLLIN):
            return None
        cmd = msgpack.unpackb(self.control.recv(), raw=False)
        if cmd.get("t") == "stop":
            self.stopping = True
        return cmd.get("t")

    def stats(self) -> dict[str, Any]:
        return {
            "in": {p: {"received": s.received, "dropped": s.dropped, "gaps": s.gaps} for p, s in self.inputs.items()},
            "sent": self.sent,
            "malformed": self.malformed,
            "counters": dict(self.node.counters),
            "latency": self.latency.summary(),
        }

    def heartbeat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_hb >= HEARTBEAT_S:
            self.last_hb = now
            self.tell("hb", stats=self.stats())
            if os.getppid() != self.spec["supervisor_pid"]:
                raise SystemExit(0)

    # --- data ----------------------------------------------------------------------------------
    def publish(self, outputs: dict[str, Msg], rx_ns: int) -> None:
        for port, msg in outputs.items():
            pub = self.outputs.get(port)
            if pub is None:
                continue  # no consumer wired to this output
            tx = now_ns()
            msg.trace = [*msg.trace, [self.name, rx_ns or tx, tx]]
            pub.send(msg)
            self.sent += 1

    def receive(self, port: str, st: InputState, flags: int = zmq.NOBLOCK) -> None:
        """Handle what is waiting on one input: for "all", one message, processed and sent before
        any bookkeeping (latency first); for "latest", everything, keeping only the newest `queue`.
        ``flags=0`` blocks for the first message (up to the socket's receive timeout)."""
        latest = st.sub.spec.policy == "latest"
        while True:
            try:
                frames = st.sub.sock.recv_multipart(flags)
            except zmq.Again:
                break
            flags = zmq.NOBLOCK
            rx = now_ns()
            try:
                msg, eos = decode(frames)
            except MalformedFrame as exc:
                self.malformed += 1
                self.node.log.debug("dropped malformed frame on %s: %s", port, exc)
                continue
            if eos:
                st.eos = True
                continue
            if not latest:
                self.publish(self.handlers[port](msg), rx)
            self._account(st, msg, rx)
            if not latest:
                return
            st.queue.append((msg, rx))
            if len(st.queue) > st.sub.spec.queue:
                st.queue.popleft()
                st.dropped += 1
        while st.queue:
            msg, rx = st.queue.popleft()
            self.publish(self.handlers[port](msg), rx)

    def _account(self, st: InputState, msg: Msg, rx: int) -> None:
        st.received += 1
        if st.last_seq is not None and msg.seq != st.last_seq + 1:
            st.gaps += 1
        st.last_seq = msg.seq
        if msg.trace:
            self.latency.add(msg.trace, rx)

    def run_source(self) -> None:
        for result in self.node.generate():
            if result is not None:
                self.publish(self.node.normalize(result), 0)
            self.read_control()
            self.heartbeat()
            if self.stopping:
                break

    def run_single_input(self) -> None:
        """One input and no timer: block in the receive itself, with no poller between the wake-up and
        the data (every instruction there runs on cold caches after a sleep); the control socket is
        read between messages and at least every heartbeat."""
        port, st = next(iter(self.inputs.items()))
        st.sub.sock.setsockopt(zmq.RCVTIMEO, int(HEARTBEAT_S * 1000))
        while not self.stopping and not st.eos:
            self.receive(port, st, flags=0)
            self.read_control()
            self.heartbeat()

    def run_consumer(self) -> None:
        if len(self.inputs) == 1 and not self.node.tick_ms:
            return self.run_single_input()
        tick_s = (self.node.tick_ms or 0) / 1000
        next_tick = time.monotonic() + tick_s if tick_s else float("inf")
        while not self.stopping:
            now = time.monotonic()
            timeout = min(next_tick - now, HEARTBEAT_S - (now - self.last_hb))
            for sock, _ in self.poller.poll(max(0, int(timeout * 1000))):
                if sock is self.control:
                    self.read_control()
                else:
                    self.receive(*self.by_socket[sock])
            if tick_s and time.monotonic() >= next_tick:
                next_tick += tick_s * max(1, int((time.monotonic() - next_tick) / tick_s) + 1)
                self.publish(self.node.normalize(self.node.tick()), 0)
            self.heartbeat()
            if self.inputs and all(st.eos for st in self.inputs.values()):
                break

    def _await_release(self) -> None:
        """Stay until every consumer has finished: closing a socket early loses what is still queued
        (libzmq does not honour LINGER for messages stuck behind a full peer), end-of-stream included."""
        if not self.outputs:
            return
        while True:
            cmd = self.read_control(100)
            if cmd in ("exit", "stop") or os.getppid() != self.spec["supervisor_pid"]:
                return

    def run(self) -> int:
        try:
            self.node.setup()
            deadline = time.monotonic() + self.spec.get("connect_timeout_s", 30.0)
            for port, pub in self.outputs.items():
                if not pub.wait_subscribers(deadline):
                    raise RuntimeError(f"output {port!r}: only {pub.subscribed} of {pub.spec.subscribers} "
                                       "consumers connected in time")
            self.tell("ready")
            while self.read_control(100) != "start":
                if self.stopping:
                    return 0
                self.heartbeat()
            if self.inputs or type(self.node).generate is Node.generate:
                self.run_consumer()  # tick-only nodes (timers, watchdogs) share the consumer loop
            else:
                self.run_source()
            self.publish(self.node.normalize(self.node.finish()), 0)
            for pub in self.outputs.values():
                pub.send(Msg(data=np.zeros((0,), np.float32)), eos=True)
            self.tell("done", stats=self.stats(), latency=self.latency.export())
            self._await_release()
            return 0
        except SystemExit:
            raise
        except BaseException as exc:  # report everything, including KeyboardInterrupt in setup
            self.tell("error", tb=traceback.format_exc(), error=f"{type(exc).__name__}: {exc}")
            return 1
        finally:
            try:
                self.node.teardown()
            finally:
                for pub in self.outputs.values():
                    pub.close()
                for st in self.inputs.values():
                    st.sub.close()
                self.control.close()
                self.ctx.term()


def main() -> None:
    spec = json.loads(sys.argv[1])
    _die_with_parent(spec["supervisor_pid"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(Runner(spec).run())


if __name__ == "__main__":
    main()
