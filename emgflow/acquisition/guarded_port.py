"""A pyserial port whose every read ends, for drivers that read byte by byte without a timeout."""

from __future__ import annotations

import threading
import time
from typing import Any

from .reader import LinkStopped


class GuardedPort:
    """Wraps the read of the pyserial port pyomyo reads byte by byte.

    Reads what is waiting in one call and serves it byte by byte (25x fewer system calls). A
    wait ends: while streaming (``deadline`` None) with ``b""`` after ``poll_s`` so the driver's
    read loop returns; while a command runs, with ``TimeoutError`` past ``deadline`` (a driver
    would otherwise crash on ``None`` or wait forever); on ``stop``, with :class:`LinkStopped`.
    """

    def __init__(self, ser: Any, stop: threading.Event, poll_s: float = 0.02) -> None:
        self.ser, self.stop = ser, stop
        self.deadline: float | None = None
        self.honour_stop = True
        self.last_rx = time.monotonic()
        self._raw_read = ser.read
        self._buf = b""
        ser.timeout = poll_s
        ser.read = self.read

    def next_byte(self) -> int | None:
        """The first byte read but not yet handed to pyomyo, if any."""
        return self._buf[0] if self._buf else None

    def read(self, size: int = 1) -> bytes:
        while True:
            if self.honour_stop and self.stop.is_set():
                raise LinkStopped()
            if not self._buf:
                waiting = self.ser.in_waiting
                self._buf = self._raw_read(waiting or 1)
                if self._buf and not waiting:  # woken by the first byte: take the rest of its burst
                    self._buf += self._raw_read(self.ser.in_waiting)
                if self._buf:
                    self.last_rx = time.monotonic()
            if self._buf:
                out, self._buf = self._buf[:size], self._buf[size:]
                return out
            if self.deadline is None:
                return b""
            if time.monotonic() > self.deadline:
                raise TimeoutError("the dongle or the armband stopped answering")
