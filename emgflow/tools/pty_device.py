"""An emulated serial device on a pseudo-terminal: the thread, the pty, timers and buffered output
any device emulator needs, so that an emulator holds only its protocol."""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import queue
import select
import threading
import time
import tty
from pathlib import Path
from typing import Callable

log = logging.getLogger("emgflow.pty_device")

OUTBUF_LIMIT = 1 << 16
"""Bytes the device holds back when nobody reads the pty; beyond this it drops output (counted)."""


class PtyDevice:
    """A device on a pty, served by one thread. ``start()`` returns the device path to open.

    The thread waits for bytes from the host, for calls from other threads (``_call``: faults,
    replugs) and for the next due time: a one-shot timer (``_later``) or one of the device's
    periodic streams (``_streams``), which run in time order. Subclasses implement ``_received``
    (parse ``_inbuf``) and ``_streams``, and write with ``_write``. ``link``: also expose the
    device at this path (a symlink that ``replug`` re-points, like a udev name).
    """

    def __init__(self, link: str | Path | None, name: str) -> None:
        self.link = Path(link) if link is not None else None
        self.name = name
        self.dropped_output = 0
        """Bytes thrown away because nobody read the pty (beyond ``OUTBUF_LIMIT``)."""
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._inbuf = b""
        self._outbuf = b""
        self._timers: list[tuple[int, int, Callable[[], None]]] = []
        self._order = itertools.count()

    # --- hooks ------------------------------------------------------------------------------------
    def _received(self) -> None:
        """Bytes from the host were appended to ``_inbuf``: consume what is complete."""
        raise NotImplementedError

    def _streams(self) -> list[tuple[int, Callable[[], None]]]:
        """The device's periodic sends: (next due time in ``monotonic_ns``, send it), in priority order."""
        return []

    # --- control ----------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The device path to open: ``link`` when given, else the pty slave."""
        return str(self.link) if self.link is not None else self._slave_path

    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        """Stop the thread and close the pty (idempotent)."""
        if self._wake_w < 0:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> "PtyDevice":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def vanish(self) -> None:
        """The device is unplugged: the pty closes and the device path disappears."""
        self._call(self._vanish)

    def replug(self) -> None:
        """The device comes back: a fresh pty behind ``link`` (required, as pty names change)."""
        if self.link is None:
            raise RuntimeError("replug needs link=: a new pty gets a new /dev/pts name")
        self._call(lambda: None if self._master is not None else self._open_pty())

    def _call(self, fn: Callable[[], None]) -> None:
        self._calls.put(fn)
        os.write(self._wake_w, b"x")

    # --- pty ------------------------------------------------------------------------------------
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing before pyserial configures the port
        os.set_blocking(master, False)
        self._master, self._slave, self._slave_path = master, slave, os.ttyname(slave)
        self._inbuf = self._outbuf = b""
        if self.link is not None:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(self._slave_path)
        log.info("%s on %s", self.name, self.path)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()

    def _vanish(self) -> None:
        self._close_pty()
        self._timers.clear()
        log.info("%s vanished", self.name)

    # --- main loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic_ns()
            wait_ns = min([self._next_due(), 50_000_000 + now]) - now
            rlist = [self._wake_r] + ([self._master] if self._master is not None else [])
            wlist = [self._master] if self._master is not None and self._outbuf else []
            readable, writable, _ = select.select(rlist, wlist, [], max(0.0, wait_ns / 1e9))
            if self._wake_r in readable:
                os.read(self._wake_r, 4096)
                while not self._calls.empty():
                    self._calls.get()()
            if self._master is not None and self._master in readable:
                try:
                    self._inbuf += os.read(self._master, 4096)
                except OSError:  # EIO: no slave open (cannot happen while we hold one), or closed
                    pass
                self._received()
            self._fire_due(time.monotonic_ns())
            self._flush()

    def _next_due(self) -> int:
        dues = [self._timers[0][0]] if self._timers else []
        dues += [due for due, _ in self._streams()]
        return min(dues, default=time.monotonic_ns() + 50_000_000)

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic_ns() + int(delay_s * 1e9), next(self._order), fn))

    def _fire_due(self, now: int) -> None:
        """Run due timers and streams, in time order (a timer first at equal times, then the streams
        in their order)."""
        while True:
            candidates = [(due, rank + 1, send) for rank, (due, send) in enumerate(self._streams()) if due <= now]
            if self._timers and self._timers[0][0] <= now:
                candidates.append((self._timers[0][0], 0, lambda: heapq.heappop(self._timers)[2]()))
            if not candidates:
                return
            min(candidates, key=lambda c: c[:2])[2]()

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        if len(self._outbuf) + len(data) > OUTBUF_LIMIT:
            self.dropped_output += len(data)
            return
        self._outbuf += data
        self._flush()

    def _flush(self) -> None:
        if self._master is None or not self._outbuf:
            return
        try:
            n = os.write(self._master, self._outbuf)
        except BlockingIOError:
            return
        except OSError:  # the pty went away under us
            self._outbuf = b""
            return
        self._outbuf = self._outbuf[n:]
