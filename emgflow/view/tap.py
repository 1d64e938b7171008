"""A tap: a subscription to one running output that never makes its producer wait.

Outputs are XPUB sockets with XPUB_NODROP, so a subscriber that stops reading would, once its pipe
is full, block a lossless producer. A tap therefore reads in its own thread all the time, straight
into a bounded deque that drops its oldest frames (counted) when whoever drains it falls behind.
Frames are only decoded when drained, with ``emgflow.codec.decode`` (nothing is unpickled).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import zmq

from ..keys import Plain

QUEUE = 2000          # frames held between drains (about 2 s of a 1 kHz message stream)
RCVHWM = 10_000       # zmq's own slack behind the reading thread, should it ever be descheduled
POLL_MS = 100         # how often the reading thread looks at its stop flag


class Tap:
    """Subscribes to ``topic`` at ``endpoint`` from its own thread; ``drain()`` takes what arrived."""

    def __init__(self, ctx: zmq.Context, endpoint: str, topic: str, queue: int = QUEUE) -> None:
        self.endpoint, self.topic = endpoint, topic
        self.frames: deque[tuple[list[bytes], float]] = deque(maxlen=queue)
        self.received = 0
        self.dropped = 0       # frames pushed out of the full deque before anyone drained them
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(ctx,), name=f"tap {topic}", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def _read(self, ctx: zmq.Context) -> None:
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, RCVHWM)
        sock.setsockopt(zmq.RCVTIMEO, POLL_MS)
        sock.setsockopt(zmq.SUBSCRIBE, self.topic.encode())
        plain = Plain.beside(self.endpoint, "view")  # ipc: the run admits only peers with its password
        if plain is not None:
            plain.client(sock)
        sock.connect(self.endpoint)
        self._ready.set()
        frames, maxlen = self.frames, self.frames.maxlen
        try:
            while not self._stop.is_set():
                try:
                    msg = sock.recv_multipart()
                except zmq.Again:
                    continue
                self.received += 1
                if len(frames) == maxlen:
                    self.dropped += 1
                frames.append((msg, time.monotonic()))
        finally:
            sock.close()  # unsubscribes: the producer forgets this pipe

    def drain(self) -> list[tuple[list[bytes], float]]:
        """Every frame set queued so far, oldest first, with its receive time (monotonic s)."""
        out = []
        frames = self.frames
        while frames:
            out.append(frames.popleft())
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * POLL_MS / 1000 + 1.0)
