"""Myo armband source through a BLED112 dongle, driven by pyomyo's unmodified driver.

pyomyo has three pitfalls this node guards against (emg-ecosystem.md section 2):

- its integer default ``mode=1`` equals no ``emg_mode`` member, so no EMG is enabled: the
  ``mode`` param maps names to the right ``emg_mode`` member;
- ``run()`` is one blocking read without timeout and ``connect()`` waits forever for a silent
  dongle or an absent armband. A reader thread owns pyomyo and the port (pyomyo is not thread
  safe), and the port's ``read`` is wrapped (:class:`GuardedPort`) so that a wait ends: with
  ``b""`` after ``POLL_S`` while streaming (``run()`` returns, the thread checks stop and
  silence), with an exception past the connect deadline or on stop. A thread rather than a
  short timeout in ``generate()``: scanning and connecting take seconds during which the
  node must keep yielding, and arrival times are stamped as bytes are parsed instead of when
  the runtime gets round to reading (which would add the publish time of every chunk as jitter);
- events that arrive while a command waits for its response are dispatched twice, as the
  same packet object: :class:`NotificationSequencer` drops a repeat of the previous packet.

pyomyo gives no timestamps. :class:`SampleClock` reconstructs each sample's acquisition time
from notification arrival times (lower-envelope fit, robust to latency jitter and following
clock drift); ``t_acq`` is the newest row's time on the ``now_ns()`` clock. Lost notifications
are found from the rotation of the four raw EMG characteristics and, for whole rotations, from
lasting lateness against that clock; the stream's ``start`` then skips the lost samples.

A lost dongle, a disconnect event (which pyomyo ignores) or 2 s of silence is logged and
counted, and the thread reconnects with exponential backoff (0.25 s up to 5 s); the node stays
alive. Counters: ``notifications``, ``duplicates``, ``lost_notifications``, ``lost_samples``,
``rotation_mismatch``, ``reindexed``, ``malformed``, ``connects``, ``reconnects``,
``disconnects``, ``connect_failures``.
"""

from __future__ import annotations

import bisect
import math
import queue
import re
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.node import Node, Output
from emgflow.params import Param
from emgflow.ports import Out

# --- the Myo's GATT layout (value handles; each CCCD is the handle + 1) ----------------------------
MYO_UUID = bytes.fromhex("4248124a7f2c4847b9de04a9010006d5")
"""The Myo control service UUID as advertised (pyomyo matches scan responses ending with it)."""
NAME_HANDLE = 0x03
FIRMWARE_HANDLE = 0x17
COMMAND_HANDLE = 0x19
IMU_HANDLE = 0x1C
PREPROCESSED_HANDLE = 0x27
EMG_HANDLES = (0x2B, 0x2E, 0x31, 0x34)
"""EmgData0..3: raw notifications rotate over these four, two samples each."""

MODES: dict[str, tuple[str, float, int]] = {
    "raw": ("RAW", 200.0, 2),
    "filtered": ("FILTERED", 200.0, 2),
    "preprocessed": ("PREPROCESSED", 50.0, 1),
}
"""mode param -> (pyomyo emg_mode member, sample rate Hz, samples per notification)."""

IMU_RATE = 50.0
IMU_NAMES = ("quat_w", "quat_x", "quat_y", "quat_z", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
IMU_SCALE = np.array([16384.0] * 4 + [2048.0] * 3 + [16.0] * 3, np.float32)
"""Raw int16 -> unit quaternion, g, deg/s (myohw.h scales)."""
CHANNEL_NAMES = tuple(f"ch{i}" for i in range(8))

POLL_S = 0.02
"""Longest a generate() step or a streaming read waits, so the runtime and the thread stay responsive."""
CONNECT_TIMEOUT_S = 10.0
SILENCE_TIMEOUT_S = 2.0
BACKOFF_S = (0.25, 5.0)

PACKET_STARTS = (0x00, 0x80, 0x08, 0x88)
"""First bytes pyomyo's parser accepts as a packet start (BLE and Wi-Fi responses and events)."""

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def mac_to_wire(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (as printed, most significant byte first) -> the 6 bytes BGAPI sends."""
    if not _MAC.match(mac):
        raise ValueError(f"MAC address must look like aa:bb:cc:dd:ee:ff, got {mac!r}")
    return bytes.fromhex(mac.replace(":", ""))[::-1]


# --- timestamps ----------------------------------------------------------------------------------
class SampleClock:
    """Acquisition time (ns) of every sample index, fitted to notification arrival times.

    A notification arrives some latency after its newest sample was acquired: a floor (radio,
    USB, parsing) plus positive jitter (connection events, scheduling, the GIL). So the points
    (index, arrival) lie on or above a line whose slope is the device's sample period in host
    nanoseconds, and that line is their lower envelope. The fit is the linear program of Moon,
    Skelly & Towsley (1999, "Estimation and removal of clock skew from network delay
    measurements"): the line under every point with the least summed distance to them, which
    is the lower convex hull's edge above the points' mean index. Points are reduced to one
    minimum per ``block`` arrivals and kept for ``window_s`` seconds, so the slope follows
    crystal drift and a refit costs O(window / block). Until they span ``min_span_s`` the slope
    is nominal; a fitted slope is clamped to ``max_skew`` of nominal. Between refits a point
    below the line pulls it down at once, so no sample is ever dated after its arrival.
    Times include the latency floor, which arrival times alone cannot reveal.
    """

    def __init__(self, rate: float, *, block: int = 50, window_s: float = 30.0, min_span_s: float = 2.0,
                 max_skew: float = 0.02) -> None:
        self.nominal = 1e9 / rate
        self.block, self.window = block, window_s * rate
        self.min_span, self.max_skew = min_span_s * rate, max_skew
        self.reset()

    def reset(self) -> None:
        """Forget every point (a new connection may have a new latency floor)."""
        self._origin: tuple[int, int] | None = None
        self._blocks: deque[tuple[float, float]] = deque()
        self._current: tuple[float, float] | None = None
        self._count = 0
        self.slope = self.nominal
        self._offset = 0.0

    @property
    def rate(self) -> float:
        """The fitted sample rate, Hz."""
        return 1e9 / self.slope

    def add(self, index: int, arrival_ns: int) -> None:
        """Sample ``index`` (the newest of a notification) arrived at ``arrival_ns``."""
        if self._origin is None:
            self._origin = (index, arrival_ns)
        x, t = float(index - self._origin[0]), float(arrival_ns - self._origin[1])
        if self._current is None or t - self.nominal * x < self._current[1] - self.nominal * self._current[0]:
            self._current = (x, t)
        self._count += 1
        if self._count >= self.block:
            self._blocks.append(self._current)
            while self._blocks[-1][0] - self._blocks[0][0] > self.window:
                self._blocks.popleft()
            self._current, self._count = None, 0
            self._refit()
        if t < self._offset + self.slope * x:
            self._offset = t - self.slope * x

    def time_ns(self, index: int) -> int:
        """Fitted acquisition time of sample ``index``."""
        if self._origin is None:
            raise RuntimeError("SampleClock has no points yet")
        return self._origin[1] + round(self._offset + self.slope * (index - self._origin[0]))

    def index_at(self, t_ns: int) -> float:
        """The (fractional) sample index the fit says was acquired at ``t_ns``."""
        if self._origin is None:
            raise RuntimeError("SampleClock has no points yet")
        return self._origin[0] + (t_ns - self._origin[1] - self._offset) / self.slope

    def _refit(self) -> None:
        points = list(self._blocks)
        xs = np.array([p[0] for p in points])
        ts = np.array([p[1] for p in points])
        slope = self.nominal
        if xs[-1] - xs[0] >= self.min_span:
            hull = _lower_hull(points)
            k = max(0, min(bisect.bisect_right([p[0] for p in hull], float(xs.mean())) - 1, len(hull) - 2))
            (x1, t1), (x2, t2) = hull[k], hull[k + 1]
            slope = float(np.clip((t2 - t1) / (x2 - x1), self.nominal * (1 - self.max_skew),
                                  self.nominal * (1 + self.max_skew)))
        self.slope = slope
        self._offset = float(np.min(ts - slope * xs))


def _lower_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Lower convex hull of points sorted by x (Andrew's monotone chain)."""
    hull: list[tuple[float, float]] = []
    for p in points:
        while len(hull) >= 2 and ((hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1])
                                  - (hull[-1][1] - hull[-2][1]) * (p[0] - hull[-2][0])) <= 0:
            hull.pop()
        hull.append(p)
    return hull


@dataclass(frozen=True)
class Placement:
    """Where a notification's samples go: ``start`` index of its first sample and ``t_acq``, the
    fitted acquisition time of its newest sample (ns)."""

    start: int
    t_acq: int


class NotificationSequencer:
    """Place each notification on the sample axis, dropping duplicates and skipping lost ones.

    - Duplicate: pyomyo dispatches an event that arrives while a command waits twice, as the
      same packet object, so a ``token`` identical (``is``) to the previous one is dropped.
    - Loss: notifications rotate over ``handles`` (the four raw EMG characteristics), so the
      handle gives the notification number modulo the rotation and a skip of 1 to 3 is exact.
      A skip that the clock says is impossible (the notification would have arrived more than a
      period before its newest sample was acquired) is counted as ``rotation_mismatch`` and the
      rotation is re-anchored instead.
    - Known gap: after ``expect_gap()`` (bytes were lost on the line) or ``new_segment()`` (the
      link was re-established), the next notification is placed by time: the latest number, in
      the rotation, whose newest sample the fitted clock puts no later than its arrival (half a
      period of tolerance). After a new segment the clock fit then restarts.
    - Unnoticed skip of whole rotations (or any skip when there is one handle): the rotation
      stays intact but every later arrival is late against the fitted clock by those rotations.
      Once every arrival for ``late_s`` s is at least one rotation late, and steadily so (the
      least lateness of the window's second half is not below that of its first half), the
      index jumps by the whole rotations of that lateness (``reindexed``). A latency spike is
      not steady: its backlog drains faster than real time and catches up with the clock.
    """

    def __init__(self, rate: float, per_notification: int, handles: tuple[int, ...], *, late_s: float = 0.2,
                 count: Callable[[str, int], None] | None = None) -> None:
        self.per, self.handles, self.late_s = per_notification, handles, late_s
        self.period = 1e9 * per_notification / rate
        self.clock = SampleClock(rate, block=max(1, round(0.5 * rate / per_notification)))
        self._count = count or (lambda key, n=1: None)
        self._last_token: object = None
        self._number: int | None = None
        self._rot0 = 0
        self._resync: str | None = None
        self._late: deque[tuple[int, float]] = deque()

    def new_segment(self) -> None:
        """The link was re-established: place the next notification by time, then refit the clock."""
        if self._number is not None:
            self._resync = "segment"
        self._last_token = None

    def expect_gap(self) -> None:
        """Bytes were lost: place the next notification by time."""
        if self._number is not None and self._resync is None:
            self._resync = "gap"

    def feed(self, token: object, handle: int, arrival_ns: int) -> Placement | None:
        """Place one notification received on ``handle`` at ``arrival_ns``; None for a duplicate."""
        if token is self._last_token:
            self._count("duplicates", 1)
            return None
        self._last_token = token
        rot = self.handles.index(handle)
        if self._number is None:
            number, self._rot0 = 0, rot
        elif self._resync is not None:
            number = self._by_time(rot, arrival_ns)
            if self._resync == "segment":
                self.clock.reset()
            self._resync = None
            self._late.clear()
        else:
            number = self._by_rotation(rot, arrival_ns)
        lost = 0 if self._number is None else number - self._number - 1
        if lost:
            self._count("lost_notifications", lost)
            self._count("lost_samples", lost * self.per)
        self._number = number
        self.clock.add(self._newest(number), arrival_ns)
        return Placement(number * self.per, self.clock.time_ns(self._newest(number)))

    def _newest(self, number: int) -> int:
        return number * self.per + self.per - 1

    def _first_in_rotation(self, rot: int) -> int:
        """The first number after the last one that the handle's rotation slot allows."""
        expected = self._number + 1
        return expected + (rot - self._rot0 - expected) % len(self.handles)

    def _by_time(self, rot: int, arrival_ns: int) -> int:
        first, size = self._first_in_rotation(rot), len(self.handles)
        acquired_now = (self.clock.index_at(arrival_ns) - (self.per - 1)) / self.per
        return first + size * max(0, math.floor((acquired_now + 0.5 - first) / size))

    def _by_rotation(self, rot: int, arrival_ns: int) -> int:
        expected, size = self._number + 1, len(self.handles)
        number = self._first_in_rotation(rot)
        if number != expected and arrival_ns < self.clock.time_ns(self._newest(number)) - self.period:
            self._count("rotation_mismatch", 1)
            self._rot0 = (rot - expected) % size
            number = expected
        late = arrival_ns - self.clock.time_ns(self._newest(number))
        if late < size * self.period - self.period / 2:
            self._late.clear()
            return number
        self._late.append((arrival_ns, late))
        if arrival_ns - self._late[0][0] < self.late_s * 1e9:
            return number
        middle = arrival_ns - self.late_s * 1e9 / 2
        first = min(d for t, d in self._late if t < middle)
        second = min(d for t, d in self._late if t >= middle)
        if second < first - self.period / 2:  # a backlog draining, not a loss: look again later
            while arrival_ns - self._late[0][0] >= self.late_s * 1e9:
                self._late.popleft()
            return number
        self._late.clear()
        self._count("reindexed", 1)
        return number + size * int((second + self.period / 2) // (size * self.period))


# --- the reader thread ---------------------------------------------------------------------------
class LinkStopped(Exception):
    """The node asked the reader thread to stop."""


class LinkLost(Exception):
    """The armband or the dongle went away."""


class GuardedPort:
    """Wraps the read of the pyserial port pyomyo reads byte by byte.

    Reads what is waiting in one call and serves it byte by byte (25x fewer system calls). A
    wait ends: while streaming (``deadline`` None) with ``b""`` after ``POLL_S`` so ``run()``
    returns; while a command runs, with ``TimeoutError`` past ``deadline`` (pyomyo would
    otherwise crash on ``None`` or wait forever); on ``stop``, with :class:`LinkStopped`.
    """

    def __init__(self, ser: Any, stop: threading.Event) -> None:
        self.ser, self.stop = ser, stop
        self.deadline: float | None = None
        self.honour_stop = True
        self.last_rx = time.monotonic()
        self._raw_read = ser.read
        self._buf = b""
        ser.timeout = POLL_S
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


class MyoLink:
    """The reader thread: owns pyomyo and the port, connects, streams, reconnects with backoff.

    It puts ``("data", packet, handle, value, arrival_ns)`` for every notification on
    ``handles`` and ``("status", kind, text)`` for ``connected``, ``lost``, ``connect_failed``
    and ``malformed`` on ``out``; all interpretation happens in the node's thread.
    """

    def __init__(self, pyomyo: Any, tty: str | None, mode: str, mac: bytes | None,
                 handles: Mapping[int, int], out: "queue.SimpleQueue[tuple]") -> None:
        self.pyomyo, self.tty, self.mode, self.mac = pyomyo, tty, mode, mac
        self.handles, self.out = handles, out
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="myo-link", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def _run(self) -> None:
        backoff = BACKOFF_S[0]
        while not self.stop_event.is_set():
            myo, port, connected = None, None, False
            try:
                myo = self.pyomyo.Myo(tty=self.tty, mode=self.pyomyo.emg_mode[self.mode])
                port = GuardedPort(myo.bt.ser, self.stop_event)
                myo.bt.add_handler(lambda p, m=myo, g=port: self._on_packet(m, g, p))
                port.deadline = time.monotonic() + CONNECT_TIMEOUT_S
                self.out.put(("status", "connecting", str(myo.bt.ser.port)))  # data may follow during connect()
                myo.connect(list(self.mac) if self.mac else None)
                port.deadline = None
                connected = True
                self.out.put(("status", "connected", f"connected on {myo.bt.ser.port}"))
                self._stream(myo, port)
            except LinkStopped:
                pass
            except Exception as exc:  # noqa: BLE001 - any failure of the link is reported and retried
                kind = "lost" if connected else "connect_failed"
                self.out.put(("status", kind, f"{type(exc).__name__}: {exc}"))
            finally:
                self._close(myo, port)
            if self.stop_event.wait(BACKOFF_S[0] if connected else backoff):
                break
            backoff = BACKOFF_S[0] if connected else min(2 * backoff, BACKOFF_S[1])

    def _stream(self, myo: Any, port: GuardedPort) -> None:
        while True:
            try:
                myo.run()
            except (struct.error, ValueError, IndexError) as exc:  # pyomyo parsing a mis-framed packet
                self.out.put(("status", "malformed", f"{type(exc).__name__}: {exc}"))
            if time.monotonic() - port.last_rx > SILENCE_TIMEOUT_S:
                raise LinkLost(f"no data for {SILENCE_TIMEOUT_S:.0f} s")

    def _on_packet(self, myo: Any, port: GuardedPort, p: Any) -> None:
        """pyomyo event handler (runs inside run()/connect()): stamp and forward notifications.

        BGAPI has no checksum. When bytes are lost inside a packet, pyomyo completes it with the
        first bytes of the next one, so the byte after it starts no packet: such an event is
        reported as malformed (the node then places the next notification by time) instead of
        being passed on with shifted samples.
        """
        arrival = time.monotonic_ns()
        if p.typ != 0x80 or myo.conn is None:
            return
        if port.next_byte() not in (None, *PACKET_STARTS):
            self.out.put(("status", "malformed", f"event {p.cls}/{p.cmd} not followed by a packet: bytes lost"))
            return
        if (p.cls, p.cmd) == (3, 4) and p.payload[:1] == bytes([myo.conn]):
            reason = struct.unpack_from("<H", p.payload, 1)[0] if len(p.payload) >= 3 else -1
            raise LinkLost(f"the armband disconnected (BLE reason 0x{reason:04x})")
        if (p.cls, p.cmd) != (4, 5) or len(p.payload) < 5:
            return
        conn, handle, kind, size = struct.unpack_from("<BHBB", p.payload)
        if conn != myo.conn or handle not in self.handles or kind != 1:
            return
        value = p.payload[5:]
        if size != len(value) or size != self.handles[handle]:
            self.out.put(("status", "malformed", f"notification on 0x{handle:02x} with {len(value)} bytes"))
            return
        self.out.put(("data", p, handle, value, arrival))

    def _close(self, myo: Any, port: GuardedPort | None) -> None:
        if myo is None:
            return
        ser = myo.bt.ser
        if port is not None and myo.conn is not None and ser.is_open:
            port.honour_stop, port.deadline = False, time.monotonic() + 0.5
            try:
                myo.disconnect()  # politely: a dongle keeps an abandoned link (and the armband awake)
            except Exception:  # noqa: BLE001 - the port may already be gone
                pass
        try:
            ser.close()
        except Exception:  # noqa: BLE001
            pass


# --- the node ------------------------------------------------------------------------------------
class Myo(Node):
    """Thalmic Myo armband over a BLED112 dongle (pyomyo): 8-channel EMG and optional IMU.

    Acquisition times are reconstructed per sample (``t_acq`` = newest row), lost and duplicated
    notifications are counted and skipped (``start`` jumps over lost samples), and a lost dongle
    or armband is reported and reconnected with backoff while the node stays alive.
    """

    kind = "myo"

    tty = Param(str, None, nullable=True,
                help="serial device of the BLED112 dongle (/dev/ttyACM0); null finds it by USB id 2458:0001")
    mode = Param(str, "raw", choices=tuple(MODES),
                 help="EMG stream: raw (200 Hz int8), filtered (200 Hz int8, the armband's filter) or "
                      "preprocessed (50 Hz rectified and smoothed, uint16)")
    with_imu = Param(bool, False, help="also stream the 50 Hz IMU on the imu output")
    mac = Param(str, None, nullable=True,
                help="armband MAC as printed (aa:bb:cc:dd:ee:ff); null connects to the first Myo found")

    emg = Out(help="EMG (N, 8) float32 counts: int8 range (raw, filtered) or uint16 (preprocessed)")
    imu = Out(help="IMU (N, 10) float32 at 50 Hz: quaternion w x y z, acceleration (g), gyroscope (deg/s)")

    def check(self) -> None:
        if self.mac is not None and not _MAC.match(self.mac):
            raise ParamError("mac", f"expected aa:bb:cc:dd:ee:ff, got {self.mac!r}")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        infos = {"emg": StreamInfo(MODES[self.mode][1], 8, CHANNEL_NAMES)}
        if self.with_imu:
            infos["imu"] = StreamInfo(IMU_RATE, 10, IMU_NAMES)
        return infos

    def setup(self) -> None:
        try:
            import pyomyo
            import pyomyo.pyomyo as driver
        except ImportError as exc:
            raise RuntimeError("the myo node needs pyomyo (pip install pyomyo) and pyserial") from exc
        # pyomyo prints every scan response and handshake step; send them to this node's debug log
        driver.print = lambda *args, **kwargs: self.log.debug("pyomyo: %s", " ".join(map(str, args)))
        member, rate, per = MODES[self.mode]
        emg_handles = (PREPROCESSED_HANDLE,) if self.mode == "preprocessed" else EMG_HANDLES
        handles = {h: (17 if self.mode == "preprocessed" else 16) for h in emg_handles}
        self._emg_seq = NotificationSequencer(rate, per, emg_handles, count=self.count)
        self._imu_seq = NotificationSequencer(IMU_RATE, 1, (IMU_HANDLE,), count=self._count_imu)
        if self.with_imu:
            handles[IMU_HANDLE] = 20
        self._rate = rate
        self._queue: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._last_t = {"emg": 0, "imu": 0}
        self._sent = {"emg": 0, "imu": 0}
        self._connected_once = False
        self._link = MyoLink(pyomyo, self.tty, member, mac_to_wire(self.mac) if self.mac else None,
                             handles, self._queue)
        self._link.start()

    def _count_imu(self, key: str, n: int = 1) -> None:
        self.count(f"imu_{key}", n)

    def generate(self) -> Iterator[Output]:
        while True:
            items = []
            try:
                items.append(self._queue.get(timeout=POLL_S))
                while True:
                    items.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            outputs = self._consume(items)
            if not outputs:
                yield None
            for out in outputs:
                yield out

    def teardown(self) -> None:
        link = getattr(self, "_link", None)
        if link is not None:
            link.stop()

    # --- turning link items into messages ----------------------------------------------------------
    def _consume(self, items: list[tuple]) -> list[dict[str, Msg]]:
        runs: dict[str, list[tuple[int, np.ndarray, int]]] = {"emg": [], "imu": []}
        for item in items:
            if item[0] == "status":
                self._status(item[1], item[2])
                continue
            _, token, handle, value, arrival = item
            port = "imu" if handle == IMU_HANDLE else "emg"
            seq = self._imu_seq if port == "imu" else self._emg_seq
            placed = seq.feed(token, handle, arrival)
            if placed is None:
                continue
            self.count("notifications" if port == "emg" else "imu_notifications")
            runs[port].append((placed.start, self._decode(port, value), placed.t_acq))
        messages = {port: self._messages(port, rows) for port, rows in runs.items()}
        return [{port: msgs[i] for port, msgs in messages.items() if i < len(msgs)}
                for i in range(max(map(len, messages.values())))]

    def _decode(self, port: str, value: bytes) -> np.ndarray:
        if port == "imu":
            return np.frombuffer(value, "<i2").reshape(1, 10) / IMU_SCALE
        if self.mode == "preprocessed":
            return np.frombuffer(value[:16], "<u2").reshape(1, 8).astype(np.float32)
        return np.frombuffer(value, np.int8).reshape(2, 8).astype(np.float32)

    def _messages(self, port: str, rows: list[tuple[int, np.ndarray, int]]) -> list[Msg]:
        """Contiguous runs of placed notifications -> one Msg each (a gap starts a new one)."""
        msgs: list[Msg] = []
        rate = IMU_RATE if port == "imu" else self._rate
        i = 0
        while i < len(rows):
            j = i + 1
            while j < len(rows) and rows[j][0] == rows[j - 1][0] + len(rows[j - 1][1]):
                j += 1
            data = np.concatenate([r[1] for r in rows[i:j]]).astype(np.float32)
            t_acq = max(rows[j - 1][2], self._last_t[port])  # a refit never moves time backwards
            self._last_t[port] = t_acq
            meta: dict[str, Any] = {}
            if self._sent[port] == 0:
                names = IMU_NAMES if port == "imu" else CHANNEL_NAMES
                meta = {"device": "Myo armband", "mode": self.mode, "channel_names": list(names)}
            msgs.append(Msg(data=data, rate=rate, start=rows[i][0], t_acq=t_acq, meta=meta))
            self._sent[port] += 1
            i = j
        return msgs

    def _status(self, kind: str, text: str) -> None:
        if kind == "connecting":
            self._emg_seq.new_segment()
            self._imu_seq.new_segment()
        elif kind == "connected":
            self.count("connects")
            if self._connected_once:
                self.count("reconnects")
            self._connected_once = True
            self.log.info("myo: %s (%s mode)", text, self.mode)
        elif kind == "lost":
            self.count("disconnects")
            self.log.warning("myo: link lost (%s); reconnecting", text)
        elif kind == "connect_failed":
            self.count("connect_failures")
            self.log.warning("myo: cannot connect (%s); retrying with backoff", text)
        else:
            self.count("malformed")
            self._emg_seq.expect_gap()
            self._imu_seq.expect_gap()
            self.log.debug("myo: malformed packet dropped (%s)", text)
