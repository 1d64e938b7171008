"""The only data-path ZeroMQ code: one XPUB per output, one SUB per input, a readiness check, and the
poller that waits on them. A second kind of edge (in-process, between hosts) plugs in here."""

from __future__ import annotations

import time
from dataclasses import dataclass

import zmq

from .codec import MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES, encode
from .keys import Curve, Plain
from .message import Msg

LINGER_MS = 2000  # long enough to flush end-of-stream on exit, short enough never to hang
_SNDMORE = int(zmq.SNDMORE)  # plain ints: pyzmq's enum flag arithmetic costs ~10 us per message
_COPY_THRESHOLD = 65536      # below this libzmq copies anyway; zero-copy only pays for big arrays


@dataclass(frozen=True)
class OutputSpec:
    endpoint: str
    topic: str
    subscribers: int      # consumers that must subscribe before a source may start
    lossless: bool        # some consumer uses policy "all": the publisher waits instead of dropping
    hwm: int = 1000
    curve: Curve | None = None  # tcp: a CURVE server (keys.py)
    plain: Plain | None = None  # ipc: a PLAIN server, admitting the run's own inputs only (keys.py)


@dataclass(frozen=True)
class InputSpec:
    endpoint: str
    topic: str
    policy: str           # "all" | "latest"
    queue: int
    curve: Curve | None = None  # tcp: a CURVE client (keys.py)
    host: str = ""              # the producer's host when not ours: its stamps are mapped (clocksync)
    plain: Plain | None = None  # ipc: a PLAIN client with the run's password (keys.py)
    max_payload: int = MAX_PAYLOAD_BYTES  # from the producer's stream (codec.payload_limit)


class Publisher:
    """An output port. XPUB so we can see subscriptions arrive (no slow-joiner loss)."""

    def __init__(self, ctx: zmq.Context, spec: OutputSpec) -> None:
        self.spec = spec
        self.topic = spec.topic.encode()
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, LINGER_MS)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.setsockopt(zmq.SNDHWM, spec.hwm)
        if spec.lossless:
            self.sock.setsockopt(zmq.XPUB_NODROP, 1)
        if spec.curve is not None:
            spec.curve.server(self.sock)
        if spec.plain is not None:
            spec.plain.server(self.sock)
        try:
            self.sock.bind(spec.endpoint)
        except zmq.ZMQError as exc:
            raise OSError(f"cannot bind {spec.endpoint}: {exc}") from None
        self.subscribed = 0

    def wait_subscribers(self, deadline: float) -> bool:
        """Block until the expected number of subscriptions arrived, or the deadline passes."""
        while self.subscribed < self.spec.subscribers:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.sock.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                return False
            self._read_subscriptions()
        return True

    def _read_subscriptions(self) -> None:
        while True:
            try:
                frame = self.sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if not self._from_graph(frame):
                continue
            event = frame.bytes
            if event[:1] == b"\x01":
                self.subscribed += 1
            elif event[:1] == b"\x00":
                self.subscribed -= 1

    def _from_graph(self, frame: zmq.Frame) -> bool:
        """A subscription from one of the graph's consumers (tcp: a key of the run's hosts), which the start
        waits for; one from a peer that ``keys:`` admits must not stand in for a consumer."""
        if self.spec.curve is None:
            return True
        try:
            return self.spec.curve.member(frame.get("User-Id"))
        except zmq.ZMQError:
            return False  # no peer metadata: the end of a connection (its unsubscription) is not counted

    def send(self, msg: Msg, *, eos: bool = False) -> None:
        """Send ``msg`` as it is (the caller numbers it: ``msg.seq``)."""
        topic, header, data = encode(self.topic, msg, eos=eos)
        send = self.sock.send
        send(topic, _SNDMORE)
        send(header, _SNDMORE)
        send(data, 0, copy=data.nbytes < _COPY_THRESHOLD)

    def close(self) -> None:
        self.sock.close()


class Subscriber:
    """An input port: a SUB socket connected to the producer's endpoint."""

    def __init__(self, ctx: zmq.Context, spec: InputSpec) -> None:
        self.spec = spec
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        # "all": the zmq pipe is the bounded queue (the lossless publisher waits when it is full).
        # "latest": read everything promptly and keep the newest `queue` messages ourselves.
        self.sock.setsockopt(zmq.RCVHWM, spec.queue if spec.policy == "all" else 1000)
        # a frame larger than any edge allows is refused by libzmq before it is held in memory; not the
        # edge's own limit: libzmq 4.3 then ends the connection for good (no reconnect), so decode()
        # refuses and counts (bad: size) a frame over the edge's limit
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_PAYLOAD_BYTES + MAX_HEADER_BYTES)
        self.sock.setsockopt(zmq.SUBSCRIBE, spec.topic.encode())
        if spec.curve is not None:
            spec.curve.client(self.sock)
        if spec.plain is not None:
            spec.plain.client(self.sock)
        self.sock.connect(spec.endpoint)

    def recv(self, block: bool = False) -> list[bytes] | None:
        """The next message's frames, or None when none is waiting (``block``: up to the timeout)."""
        try:
            return self.sock.recv_multipart(0 if block else zmq.NOBLOCK)
        except zmq.Again:
            return None

    def block_for(self, timeout_ms: int) -> None:
        """Make ``recv(block=True)`` return None after ``timeout_ms`` without a message."""
        self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)

    def close(self) -> None:
        self.sock.close()


class Poller:
    """Waits on the control socket and any number of subscribers; says which are readable."""

    def __init__(self, control: zmq.Socket, subscribers: list[tuple[Subscriber, object]]) -> None:
        self.control = control
        self._poller = zmq.Poller()
        self._poller.register(control, zmq.POLLIN)
        self._owner: dict[zmq.Socket, object] = {}
        for sub, owner in subscribers:
            self._poller.register(sub.sock, zmq.POLLIN)
            self._owner[sub.sock] = owner

    def poll(self, timeout_ms: int) -> tuple[bool, list[object]]:
        """(control readable, owners of the readable subscribers)."""
        control, ready = False, []
        for sock, _ in self._poller.poll(timeout_ms):
            if sock is self.control:
                control = True
            else:
                ready.append(self._owner[sock])
        return control, ready
