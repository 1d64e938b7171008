"""One node inside a node process: its ports, its counters, and how a message reaches it.

An edge between two nodes of the same process is a function call: the producer's output is handed to
the consumer's handler with no socket and no serialisation, yet with every promise of a socket edge
(per-output sequence numbers and gap counts, end of stream, a trace entry per node with its own compute
time, read-only arrays). Nothing queues on such an edge, so nothing is dropped; a slow consumer holds
up its producer, which is why renderers and other slow consumers belong in a process of their own.
"""

from __future__ import annotations

import importlib
import math
import traceback
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .clocksync import now_ns  # bound to time.monotonic_ns itself: this path runs on cold caches
from .codec import MalformedFrame, decode
from .contract import NodeRuntime
from .message import Msg
from .node import Node
from .trace import LatencyLog
from .transport import Publisher, Subscriber

_EMPTY = np.zeros((0,), np.float32)  # the end-of-stream marker's payload


class NodeFailed(Exception):
    """A hosted node raised: carries its name and traceback to the supervisor."""

    def __init__(self, node: str, tb: str, error: str) -> None:
        super().__init__(error)
        self.node, self.tb, self.error = node, tb, error


def load_class(path: str) -> type[Node]:
    """``module:Qualname`` -> the class (the supervisor validated it; no registry needed here)."""
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class InputState:
    policy: str
    queue: int
    sub: Subscriber | None = None   # None: fed by a node of the same process
    last_seq: int | None = None
    received: int = 0
    dropped: int = 0
    gaps: int = 0
    nonfinite: int = 0
    epochs: int = 0                 # times the producer restarted (its sequence began again at 0)
    lost_rows: int = 0              # rows the producer's downtime cost, as its rate and clock say
    shift: int = 0                  # added to the producer's `start` since its last restart
    last_end: int = 0
    last_t_acq: int = 0
    eos: bool = False
    host: str = ""                  # the producer's host when not ours (InputSpec.host)
    offset: int | None = None       # that host's clock minus ours (a ``clock`` control message)
    unmapped: int = 0               # messages from that host taken before its offset was known
    pending: deque = field(default_factory=deque)


@dataclass
class OutPort:
    """One output: a publisher when another process consumes it, and the in-process consumers."""

    pub: Publisher | None
    local: list[tuple["Hosted", str]] = field(default_factory=list)
    seq: int = 0


class Hosted:
    def __init__(self, rt: NodeRuntime, ctx: Any, on_finished: Callable[["Hosted"], None]) -> None:
        self.name = rt.name
        self.node: Node = load_class(rt.cls)(name=rt.name, **rt.params)
        self.outputs = {p: OutPort(Publisher(ctx, o)) for p, o in rt.outputs.items()}
        self.inputs = {p: InputState(i.policy, i.queue, Subscriber(ctx, i), host=i.host) for p, i in rt.inputs.items()}
        self.inputs.update({p: InputState(self.node.inputs[p].policy, self.node.inputs[p].queue)
                            for p in rt.local_inputs})
        self.handlers = {p: self.node.handler(p) for p in self.inputs}
        self.is_source = not self.inputs and type(self.node).generate is not Node.generate
        self.on_finished = on_finished
        self.malformed = 0
        self.bad_reasons: Counter[str] = Counter()  # malformed frames by MalformedFrame.reason
        self.sent = 0
        self.latency = LatencyLog()
        self.first_rx_ns = 0  # when the first message arrived (start-up figures)
        self.sending: str | None = None
        self.finished = False

    def wire(self, port: str, consumer: "Hosted", consumer_port: str) -> None:
        """Feed ``consumer_port`` of a node in this process from our output ``port``."""
        self.outputs.setdefault(port, OutPort(None)).local.append((consumer, consumer_port))

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run node code; an exception becomes NodeFailed with this node's name."""
        try:
            return fn(*args)
        except NodeFailed:
            raise
        except Exception as exc:
            raise NodeFailed(self.name, traceback.format_exc(), f"{type(exc).__name__}: {exc}") from None

    # --- sending ---------------------------------------------------------------------------------
    def publish(self, outputs: dict[str, Msg], rx_ns: int) -> None:
        for port, msg in outputs.items():
            out = self.outputs.get(port)
            if out is None:
                continue  # no consumer wired to this output
            tx = now_ns()
            msg.trace = [*msg.trace, [self.name, rx_ns or tx, tx]]
            msg.seq = out.seq
            out.seq += 1
            if out.pub is not None:
                self.sending = port  # seen by the heartbeat: a send that does not return is a stall
                out.pub.send(msg)
                self.sending = None
            self.sent += 1
            for consumer, cport in out.local:
                consumer.take(cport, msg)

    def emit(self, result: Any) -> None:
        """Publish what ``generate`` / ``tick`` / ``finish`` returned (no receive time)."""
        self.publish(self.call(self.node.normalize, result), 0)

    # --- receiving -------------------------------------------------------------------------------
    def take(self, port: str, msg: Msg) -> None:
        """An in-process delivery: the consumer's own header copy and a read-only view of the array."""
        rx = now_ns()
        data = msg.data.view()
        data.flags.writeable = False
        mine = Msg(data, msg.rate, msg.start, msg.t_acq, msg.seq, dict(msg.meta), msg.trace)
        if self._valid(port, mine):
            self.publish(self.call(self.handlers[port], mine), rx)
        self._account(self.inputs[port], msg.seq, msg.end, msg.t_acq, msg.trace, rx)

    def receive(self, port: str, block: bool = False) -> None:
        """Handle what is waiting on one socket input: for "all", one message, processed and sent
        before any bookkeeping (latency first); for "latest", everything, keeping only the newest
        ``queue``. ``block`` waits for the first message (up to the socket's receive timeout)."""
        st = self.inputs[port]
        latest = st.policy == "latest"
        ended = False
        while True:
            frames = st.sub.recv(block)
            if frames is None:
                break
            block = False
            rx = now_ns()
            try:
                msg, ended = decode(frames, st.sub.spec.max_payload)
            except MalformedFrame as exc:
                self.malformed += 1
                self.bad_reasons[exc.reason] += 1
                self.node.log.debug("dropped malformed frame on %s: %s", port, exc)
                continue
            if ended:
                break  # nothing follows an end of stream; what is pending is handled first
            if st.host:
                self._onto_our_clock(st, msg)
            if msg.seq == 0 and st.last_seq is not None:
                self._new_epoch(st, msg)
            msg.start += st.shift
            if not self._plausible(st, msg):
                self.malformed += 1
                self.bad_reasons["start"] += 1
                continue
            # the header as received: a pass-through node may send this very message on, renumbered
            seq, end, t_acq, trace = msg.seq, msg.end, msg.t_acq, msg.trace
            if not self._valid(port, msg):
                self._account(st, seq, end, t_acq, trace, rx)
                continue
            if not latest:  # latency first: bookkeeping after the node's outputs are sent
                self.publish(self.call(self.handlers[port], msg), rx)
                self._account(st, seq, end, t_acq, trace, rx)
                return
            self._account(st, seq, end, t_acq, trace, rx)
            st.pending.append((msg, rx))
            if len(st.pending) > st.queue:
                st.pending.popleft()
                st.dropped += 1
        while st.pending:
            msg, rx = st.pending.popleft()
            self.publish(self.call(self.handlers[port], msg), rx)
        if ended:
            self.end(port)

    @staticmethod
    def _onto_our_clock(st: InputState, msg: Msg) -> None:
        """A message from another host: its trace stamps and ``t_acq`` (all on its host's clock, as
        every hop maps what it receives) onto this host's clock. A ``t_acq`` from before our clock's
        zero reads 0, unknown; before the offset is known, stamps pass as they are and are counted."""
        if st.offset is None:
            st.unmapped += 1
            return
        off = st.offset
        msg.t_acq = max(0, msg.t_acq - off) if msg.t_acq else 0
        msg.trace = [[name, rx - off, tx - off] for name, rx, tx in msg.trace]

    @staticmethod
    def _new_epoch(st: InputState, msg: Msg) -> None:
        """The producer restarted and numbers from scratch: continue its stream where it stopped,
        plus the rows its downtime cost (its rate times the gap in acquisition time), so a consumer
        sees one gap, counted in rows, instead of a replay of indices it has already seen."""
        st.epochs += 1
        st.last_seq = None  # a new sequence: not a gap
        if msg.start >= st.last_end:  # its numbering already went on (e.g. derived from its input)
            st.shift = 0
            return
        lost = 0
        if msg.rate > 0 and msg.t_acq and st.last_t_acq:
            lost = max(0, round((msg.t_acq - st.last_t_acq) / 1e9 * msg.rate) - (msg.end - msg.start))
        st.lost_rows += lost
        st.shift = st.last_end + lost - msg.start

    @staticmethod
    def _plausible(st: InputState, msg: Msg) -> bool:
        """A jump ahead no clock explains (twice the rows the producer's rate allows for the time
        since the last message, plus a second) is a bad frame, not a gap: taken as a gap, one
        ``start = 10**12`` would make every later good frame look like a repeat."""
        if st.last_seq is None or msg.start <= st.last_end or not (msg.rate > 0 and msg.t_acq and st.last_t_acq):
            return True
        elapsed = max(0.0, (msg.t_acq - st.last_t_acq) / 1e9)
        return msg.start - st.last_end <= msg.rate * (2 * elapsed + 1) + 10 * (msg.end - msg.start)

    def _valid(self, port: str, msg: Msg) -> bool:
        """NaN or infinity in a float payload (or the rate) never reaches a node that did not ask for
        it: one would poison a filter's state or a model's memory for good. Dropped and counted."""
        if self.node.accepts_nonfinite or (msg.data.dtype.kind not in "fc" and math.isfinite(msg.rate)):
            return True
        if math.isfinite(msg.rate) and np.isfinite(msg.data).all():
            return True
        st = self.inputs[port]
        st.nonfinite += 1
        if st.nonfinite == 1:
            self.node.log.warning("%s.%s: dropped a message holding NaN or infinity (counted as nonfinite)",
                                  self.name, port)
        return False

    def _account(self, st: InputState, seq: int, end: int, t_acq: int, trace: list, rx: int) -> None:
        """Counts and latency of one received message, from its header as it arrived."""
        self.first_rx_ns = self.first_rx_ns or rx
        st.received += 1
        if st.last_seq is not None and seq != st.last_seq + 1:
            st.gaps += 1
        st.last_seq = seq
        st.last_end, st.last_t_acq = end, t_acq
        if trace:
            self.latency.add(trace, rx)

    # --- end of stream ---------------------------------------------------------------------------
    def end(self, port: str) -> None:
        """End of stream on one input; the node finishes once every input has ended."""
        self.inputs[port].eos = True
        if all(st.eos for st in self.inputs.values()):
            self.finish()

    def finish(self) -> None:
        """Flush the node (``finish()``), then end every output's stream, in process and on the wire."""
        if self.finished:
            return
        self.finished = True
        self.emit(self.call(self.node.finish))
        for out in self.outputs.values():
            if out.pub is not None:
                out.pub.send(Msg(data=_EMPTY, seq=out.seq), eos=True)
            for consumer, cport in out.local:
                consumer.end(cport)
        self.on_finished(self)

    def stats(self) -> dict[str, Any]:
        return {
            "in": {p: {"received": s.received, "dropped": s.dropped, "gaps": s.gaps, "nonfinite": s.nonfinite,
                       "restarts": s.epochs, "lost_rows": s.lost_rows, "unmapped": s.unmapped}
                   for p, s in self.inputs.items()},
            "sent": self.sent,
            "malformed": self.malformed,
            "malformed_reasons": dict(self.bad_reasons),
            "counters": dict(self.node.counters),
            "latency": self.latency.summary(),
            "trace_overflow": self.latency.overflow,
            "first_rx_ns": self.first_rx_ns,
        }

    def close(self) -> None:
        for out in self.outputs.values():
            if out.pub is not None:
                out.pub.close()
        for st in self.inputs.values():
            if st.sub is not None:
                st.sub.close()

