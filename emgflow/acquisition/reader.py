"""A reader thread that keeps a device link up: connect, read, and on any failure reconnect with
exponential backoff, while the node that owns it stays alive and responsive.

A thread rather than a short timeout in the node's ``generate()``: scanning and connecting take
seconds during which the node must keep yielding, and arrival times are stamped as bytes are
parsed instead of when the runtime gets round to reading (which would add the publish time of
every chunk as jitter). The thread never interprets data: it puts items on a queue that the
node's thread drains.
"""

from __future__ import annotations

import queue
import threading


class LinkStopped(Exception):
    """The node asked the reader thread to stop."""


class LinkLost(Exception):
    """The device went away."""


class ReconnectingReader:
    """Owns a device link in a daemon thread: ``connect``, ``stream`` until it fails, ``close``,
    wait, again. The wait starts at ``BACKOFF_S[0]`` and doubles after each failed connect up to
    ``BACKOFF_S[1]``; after a lost link it is the shortest again.

    Puts ``("status", kind, text)`` on ``out`` for ``connected`` and, with the failure as text,
    ``lost`` (once connected) or ``connect_failed``. Subclasses implement the three hooks and
    may put their own items on ``out``.
    """

    BACKOFF_S = (0.25, 5.0)

    def __init__(self, out: "queue.SimpleQueue[tuple]", name: str) -> None:
        self.out = out
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    # --- hooks --------------------------------------------------------------------------------------
    def connect(self) -> str:
        """Open the link (raise on failure); return what the ``connected`` status says."""
        raise NotImplementedError

    def stream(self) -> None:
        """Read until the link fails (raise, e.g. :class:`LinkLost`) or stop (:class:`LinkStopped`)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release whatever ``connect`` opened, even halfway; never raise."""

    # --- the thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self.BACKOFF_S[0]
        while not self.stop_event.is_set():
            connected = False
            try:
                text = self.connect()
                connected = True
                self.out.put(("status", "connected", text))
                self.stream()
            except LinkStopped:
                pass
            except Exception as exc:  # noqa: BLE001 - any failure of the link is reported and retried
                kind = "lost" if connected else "connect_failed"
                self.out.put(("status", kind, f"{type(exc).__name__}: {exc}"))
            finally:
                self.close()
            if self.stop_event.wait(self.BACKOFF_S[0] if connected else backoff):
                break
            backoff = self.BACKOFF_S[0] if connected else min(2 * backoff, self.BACKOFF_S[1])
