"""One node process: hosts one node (or every node of a group), serves the control channel, beats.

Started by the supervisor (or, on another host, its agent) as ``python -m emgflow.runner SPEC_JSON``
(a ``contract.ProcessSpec``). It imports the core and its own nodes' modules, not the node library. It dies with its parent
(PR_SET_PDEATHSIG plus a parent-pid check), ignores Ctrl-C (the supervisor orchestrates the stop) and
reports any exception with the failing node's name and traceback before exiting non-zero.

Sources run in threads of their own; every call into node code holds one process lock, so the nodes
of a group never run concurrently and an in-process edge needs no queue.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

import zmq

from . import control
from .contract import ProcessSpec
from .heartbeat import HEARTBEAT_S, Heartbeat
from .hosted import Hosted, NodeFailed
from .keys import Gate
from .transport import Poller

SOURCE_POLL_S = 0.05   # how soon a process with sources notices one has ended
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # SIGTERM also arrives when the supervisor dies


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGTERM us when the supervisor dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the parent-pid check in the loop still catches it
    if os.getppid() != parent:
        sys.exit(0)


class Runner:
    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.ctx = zmq.Context.instance()
        # the gate admits only the run's own peers on this process's outputs (tcp: listed keys, ipc: the
        # run's password), from their first bind
        auths = [a for a in (spec.curve, spec.plain) if a is not None]
        self.gate = Gate(self.ctx, *auths) if auths else None
        self.control = self.ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.IDENTITY, spec.name.encode())
        self.control.setsockopt(zmq.LINGER, 1000)
        if spec.curve is not None:
            spec.curve.client(self.control)
        self.control.connect(spec.control)
        self.lock = threading.Lock()
        self.just_finished: list[Hosted] = []
        self.hosted: dict[str, Hosted] = {}
        for rt in spec.nodes:  # producers first: a consumer is wired to what already exists
            h = self.hosted[rt.name] = Hosted(rt, self.ctx, self.just_finished.append)
            for port, source in rt.local_inputs.items():
                node, _, output = source.partition(".")
                self.hosted[node].wire(output, h, port)
        self.externals = [(h, port) for h in self.hosted.values() for port, st in h.inputs.items() if st.sub]
        self.poller = Poller(self.control, [(h.inputs[port].sub, (h, port)) for h, port in self.externals])
        self.sources = [h for h in self.hosted.values() if h.is_source]
        self.ticking = [h for h in self.hosted.values() if h.node.tick_ms]
        self.threads: list[threading.Thread] = []
        self.failure: NodeFailed | None = None
        self.stop_sources = threading.Event()
        self.stopping = False
        self.last_hb = 0.0
        self.snapshot: dict[str, Any] = {}
        self.bad_control = 0
        self.beat = Heartbeat(self.ctx, spec.name, spec.control, self.hosted, self.stats,
                              lambda: time.monotonic() - self.last_hb if self.last_hb else 0.0,
                              spec.curve, self.gate)
        self.beat.start()

    # --- control -------------------------------------------------------------------------------
    def tell(self, kind: str, **body: Any) -> None:
        self.control.send(control.pack(kind, **body))

    def read_control(self, timeout_ms: int = 0) -> str | None:
        if not self.control.poll(timeout_ms, zmq.POLLIN):
            return None
        try:
            msg = control.unpack(self.control.recv(), control.TO_PROCESS)
            if msg["t"] == control.CLOCK:
                self.set_offsets(msg.get("offsets"))
        except control.ControlError:
            self.bad_control += 1
            return None
        cmd = msg["t"]
        if cmd == control.STOP:  # the first stop ends the sources, so their end of stream flows down
            if any(t.is_alive() for t in self.threads) and not self.stop_sources.is_set():
                self.stop_sources.set()
            else:
                self.stop_sources.set()
                self.stopping = True
        return cmd

    def set_offsets(self, offsets: Any) -> None:
        """Other hosts' clocks relative to ours (host -> its clock minus ours, ns): from now on the
        stamps of every input from such a host are mapped onto this host's clock as they arrive."""
        if type(offsets) is not dict or not all(type(h) is str and type(ns) is int and abs(ns) < 1 << 62
                                                for h, ns in offsets.items()):
            raise control.ControlError("clock: offsets must map host names to integer ns")
        for h in self.hosted.values():
            for st in h.inputs.values():
                if st.host in offsets:
                    st.offset = offsets[st.host]

    def stats(self) -> dict[str, Any]:
        """Per-node figures (read by the heartbeat thread); the last snapshot while a node holds the
        lock (e.g. waiting to send) or changed a counter mid-copy (one node runs unlocked)."""
        if self.lock.acquire(blocking=False):
            try:
                self.snapshot = {name: h.stats() for name, h in self.hosted.items()}
            except RuntimeError:
                pass  # "dictionary changed size during iteration": the next beat reads it
            finally:
                self.lock.release()
        return self.snapshot

    def heartbeat(self) -> None:
        """The main loop's pulse: how long since it last came round (a long node call shows in the
        beats as ``busy_s``), and a parent check in case PR_SET_PDEATHSIG is not available."""
        self.last_hb = time.monotonic()
        if os.getppid() != self.spec.supervisor_pid:
            raise SystemExit(0)

    def report_finished(self) -> None:
        while self.just_finished:
            h = self.just_finished.pop(0)
            self.tell(control.DONE, node=h.name, stats=h.stats(), latency=h.latency.export())

    # --- sources -------------------------------------------------------------------------------
    def _source(self, h: Hosted) -> None:
        try:
            gen = h.call(h.node.generate)
            while not self.stop_sources.is_set():
                result = h.call(next, gen, StopIteration)
                if result is StopIteration:
                    break
                if result is not None:
                    with self.lock:
                        h.emit(result)
            with self.lock:
                h.finish()
        except NodeFailed as exc:
            self.failure = self.failure or exc

    # --- loops ---------------------------------------------------------------------------------
    def run_single_input(self) -> None:
        """One node, one socket input, no timer: block in the receive itself, with no poller between
        the wake-up and the data (every instruction there runs on cold caches after a sleep); the
        control socket is read between messages and at least every heartbeat."""
        h, port = self.externals[0]
        h.inputs[port].sub.block_for(int(HEARTBEAT_S * 1000))
        while not self.stopping and not h.finished:
            h.receive(port, block=True)
            self.read_control()
            self.heartbeat()

    def run_loop(self) -> None:
        for h in self.sources:
            t = threading.Thread(target=self._source, args=(h,), name=h.name, daemon=True)
            t.start()
            self.threads.append(t)
        ticks = {h.name: (h.node.tick_ms / 1000, time.monotonic() + h.node.tick_ms / 1000) for h in self.ticking}
        while not self.stopping and not all(h.finished for h in self.hosted.values()):
            now = time.monotonic()
            timeout = HEARTBEAT_S
            if self.sources:
                timeout = min(timeout, SOURCE_POLL_S)
            for _, due in ticks.values():
                timeout = min(timeout, due - now)
            readable, ready = self.poller.poll(max(0, int(timeout * 1000)))
            if readable:
                self.read_control()
            for h, port in ready:
                with self.lock:
                    h.receive(port)
            for name, (period, due) in ticks.items():
                if time.monotonic() >= due and not self.hosted[name].finished:
                    late = int((time.monotonic() - due) / period)
                    ticks[name] = (period, due + period * (late + 1))
                    h = self.hosted[name]
                    with self.lock:
                        h.emit(h.call(h.node.tick))
            self._check_failure()
            self.report_finished()
            self.heartbeat()

    def _check_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _finish_all(self) -> None:
        """A stop: end the sources, then flush every node still running, producers first."""
        self.stop_sources.set()
        for t in self.threads:
            t.join(timeout=2.0)
        self._check_failure()
        with self.lock:
            for h in self.hosted.values():
                h.finish()
        self.report_finished()

    def _await_release(self) -> None:
        """Stay until every consumer has finished: closing a socket early loses what is still queued
        (libzmq does not honour LINGER for messages stuck behind a full peer), end-of-stream included."""
        if not any(out.pub for h in self.hosted.values() for out in h.outputs.values()):
            return
        while True:
            cmd = self.read_control(100)
            if cmd in (control.EXIT, control.STOP) or os.getppid() != self.spec.supervisor_pid:
                return

    def run(self) -> int:
        try:
            for h in self.hosted.values():
                h.call(h.node.setup)
            deadline = time.monotonic() + self.spec.connect_timeout_s
            for h in self.hosted.values():
                for port, out in h.outputs.items():
                    if out.pub is not None and not out.pub.wait_subscribers(deadline):
                        raise RuntimeError(f"{h.name}: output {port!r}: only {out.pub.subscribed} of "
                                           f"{out.pub.spec.subscribers} consumers connected in time")
            self.tell(control.READY)
            while self.read_control(100) != control.START:
                if self.stopping:
                    return 0
                self.heartbeat()
            if len(self.hosted) == 1 and len(self.externals) == 1 and not self.ticking:
                self.run_single_input()
            else:
                self.run_loop()
            self._finish_all()
            self._await_release()
            return 0
        except SystemExit:
            raise
        except NodeFailed as exc:
            self.tell(control.ERROR, node=exc.node, tb=exc.tb, error=exc.error)
            return 1
        except BaseException as exc:  # report everything, including KeyboardInterrupt in setup
            self.tell(control.ERROR, node=self.spec.name, tb=traceback.format_exc(), error=f"{type(exc).__name__}: {exc}")
            return 1
        finally:
            self._teardown()

    def _teardown(self) -> None:
        """Every node's ``teardown`` (a hand's safe stop among them), each even if another raised;
        sources are stopped and the lock taken first, so no node runs during it."""
        for sig in STOP_SIGNALS:  # a second signal must not cut a hand's safe stop short
            signal.signal(sig, signal.SIG_IGN)
        self.stop_sources.set()
        self.beat.close()
        locked = self.lock.acquire(timeout=1.0)
        try:
            for h in self.hosted.values():
                try:
                    h.node.teardown()
                except Exception:
                    traceback.print_exc()
        finally:
            if locked:
                self.lock.release()
            for h in self.hosted.values():
                h.close()
            self.control.close()
            if self.gate is not None:
                self.gate.stop()
            self.ctx.term()


def main() -> None:
    spec = ProcessSpec.from_json(sys.argv[1])
    _die_with_parent(spec.supervisor_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops in order
    for sig in STOP_SIGNALS:  # exit through teardown: a hand's last command is its safe pose
        signal.signal(sig, lambda *_: sys.exit(143))
    sys.exit(Runner(spec).run())


if __name__ == "__main__":
    main()
