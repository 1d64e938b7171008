"""A BLED112 dongle with a Myo armband behind it, on a pseudo-terminal: test pyomyo and the
``myo`` node without hardware.

The emulator speaks the BGAPI subset that pyomyo's unmodified driver uses (framing, commands and
handles: emg-ecosystem.md section 2). It answers each command after ``command_latency`` and sends
the event that follows a command (scan responses, connection status, read value, write completed)
one connection interval later, so notifications interleave with commands as they do on a real
radio. Once EMG is enabled, a device clock starts at the first set-mode write: sample ``k`` of the
recording is acquired at ``t0 + k / rate`` and notification ``n`` (samples ``2n`` and ``2n + 1``)
goes out on handle ``EMG_HANDLES[n % 4]`` when its second sample is acquired. The clock keeps
running while the link is down, so the samples of a disconnection are lost, as on the armband.

Faults (call from any thread; they run in the emulator's thread): ``drop_bytes`` (bytes lost on
the serial line), ``disconnect`` (the armband drops the BLE link: event 3/4, which pyomyo ignores),
``vanish`` (the dongle is unplugged: the pty closes) and ``replug`` (a fresh pty behind the same
``link`` path).

Only the EMG is real data. The IMU stream is a constant resting pose unless ``imu`` is given,
and preprocessed mode (50 Hz, handle 0x27) sends the rectified recording decimated by 4, which
has the protocol's shape but is not the armband's own smoothing.
"""

from __future__ import annotations

import logging
import struct
import time
from pathlib import Path
from typing import Callable

import numpy as np

from emgflow.devices.myo import (COMMAND_HANDLE, EMG_HANDLES, FIRMWARE_HANDLE, IMU_HANDLE, MYO_UUID, NAME_HANDLE,
                                 PREPROCESSED_HANDLE, mac_to_wire)

from .pty_device import PtyDevice

log = logging.getLogger("emgflow.myo_emulator")

BATTERY_HANDLE = 0x11
REASON_SUPERVISION_TIMEOUT = 0x0208
REASON_LOCAL_HOST = 0x0216
NOT_CONNECTED = 0x0186

RESTING_IMU = np.array([[16384, 0, 0, 0, 0, 0, 2048, 0, 0, 0]], np.int16)
"""Identity orientation, 1 g on z, no rotation: (quat w x y z, acc x y z, gyro x y z) raw units."""


def bgapi(typ: int, cls: int, cmd: int, payload: bytes = b"") -> bytes:
    """One BGAPI packet: ``[type][len][class][id][payload]`` (payloads here stay under 256 bytes)."""
    return struct.pack("<4B", typ, len(payload), cls, cmd) + payload


def event(cls: int, cmd: int, payload: bytes = b"") -> bytes:
    return bgapi(0x80, cls, cmd, payload)


def response(cls: int, cmd: int, payload: bytes = b"") -> bytes:
    return bgapi(0x00, cls, cmd, payload)


def attribute_value(handle: int, value: bytes, kind: int = 1, conn: int = 0) -> bytes:
    """attclient_attribute_value event (4, 5): kind 0 = read result, 1 = notification."""
    return event(4, 5, struct.pack("<BHBB", conn, handle, kind, len(value)) + value)


class MyoEmulator(PtyDevice):
    """A Myo behind a BLED112 on a pty. ``start()`` returns the device path to give pyomyo.

    ``emg``: (N, 8) int8-range samples (a real recording). ``rate``: the device's sample rate
    (200 Hz nominal; set it off-nominal to emulate crystal drift). ``loop``: start the recording
    again at its end instead of falling silent. ``link``: also expose the device at this path (a
    symlink that ``replug`` re-points, like a udev name). ``address``: the armband's MAC as
    printed (most significant byte first).
    """

    def __init__(self, emg: np.ndarray, *, rate: float = 200.0, loop: bool = False,
                 imu: np.ndarray | None = None, link: str | Path | None = None,
                 address: str = "c8:2f:1b:00:00:01", firmware: tuple[int, int, int, int] = (1, 5, 1970, 2),
                 command_latency: float = 0.001, conn_interval: float = 0.0075) -> None:
        emg = np.asarray(emg)
        if emg.ndim != 2 or emg.shape[1] != 8 or len(emg) < 2:
            raise ValueError(f"emg must be (N >= 2, 8) samples, got shape {emg.shape}")
        if np.any(emg < -128) or np.any(emg > 127) or not np.all(np.mod(emg, 1) == 0):
            raise ValueError("emg must hold int8 values (-128..127): a raw Myo recording")
        self.emg = emg.astype(np.int8)
        self.imu = RESTING_IMU if imu is None else np.asarray(imu).astype(np.int16)
        if self.imu.ndim != 2 or self.imu.shape[1] != 10:
            raise ValueError(f"imu must be (M, 10) int16 rows (quat, acc, gyro), got shape {self.imu.shape}")
        self.address = mac_to_wire(address)
        super().__init__(link, "emulated Myo")
        self.rate = float(rate)
        self.loop = loop
        self.firmware = firmware
        self.command_latency = command_latency
        self.conn_interval = conn_interval

        self.sent: list[int] = []
        """Numbers of the EMG notifications written to the pty (device counter, from 0)."""
        self.damaged: list[int] = []
        """Numbers of the EMG notifications that lost bytes to ``drop_bytes``."""
        self.modes_set: list[int] = []
        """EMG mode of every set-mode write, in order (0 none, 1 preprocessed, 2 filtered, 3 raw)."""
        self.connections = 0
        """BLE connections the host opened."""

        self._reset_link_state()
        self._t0: int | None = None
        self._next_emg = self._next_imu = 0
        self._drop: tuple[int, int] | None = None
        self._scan_at: int | None = None

    # --- ground truth ---------------------------------------------------------------------------
    def acquisition_ns(self, sample: int) -> int:
        """When the device acquired sample ``sample`` (``now_ns`` clock): the ground truth for timestamps."""
        if self._t0 is None:
            raise RuntimeError("EMG streaming has not started")
        return self._t0 + round(sample * 1e9 / self.rate)

    # --- faults ---------------------------------------------------------------------------------
    def drop_bytes(self, count: int = 1, offset: int = 12) -> None:
        """The next EMG notification loses ``count`` bytes from ``offset`` (inside its samples)."""
        self._call(lambda: setattr(self, "_drop", (count, offset)))

    def disconnect(self, reason: int = REASON_SUPERVISION_TIMEOUT) -> None:
        """The armband drops the BLE link (out of range): event 3/4, streaming stops."""
        self._call(lambda: self._drop_link(reason) if self._conn else None)

    def _vanish(self) -> None:
        super()._vanish()
        self._reset_link_state()
        self._scan_at = None

    def _streams(self) -> list[tuple[int, Callable[[], None]]]:
        streams = [] if self._scan_at is None else [(self._scan_at, self._send_scan_responses)]
        if self._t0 is not None and self._conn:
            streams += [(self._emg_due(self._next_emg), self._send_emg), (self._imu_due(self._next_imu), self._send_imu)]
        return streams

    # --- BGAPI commands -------------------------------------------------------------------------
    def _received(self) -> None:
        buf = self._inbuf
        while len(buf) >= 4:
            if buf[0] != 0x00:  # not a command header: resynchronise byte by byte
                buf = buf[1:]
                continue
            size = 4 + buf[1]
            if len(buf) < size:
                break
            cls, cmd, payload = buf[2], buf[3], buf[4:size]
            buf = buf[size:]
            self._command(cls, cmd, payload)
        self._inbuf = buf

    def _command(self, cls: int, cmd: int, payload: bytes) -> None:
        def reply(body: bytes) -> None:
            self._later(self.command_latency, lambda: self._write(response(cls, cmd, body)))

        ok = struct.pack("<H", 0)
        if (cls, cmd) == (0, 6):  # system_get_connections
            reply(b"\x03")
        elif (cls, cmd) == (6, 4):  # gap_end_procedure
            self._scan_at = None
            reply(ok)
        elif (cls, cmd) == (6, 2):  # gap_discover
            self._scan_at = time.monotonic_ns() + 20_000_000
            reply(ok)
        elif (cls, cmd) == (6, 3):  # gap_connect_direct
            reply(ok + b"\x00")
            if payload[:6] == self.address and not self._conn:
                self._later(self.command_latency + 2 * self.conn_interval, self._link_up)
        elif (cls, cmd) == (3, 0):  # connection_disconnect
            conn = payload[0] if payload else 0
            if self._conn and conn == 0:
                reply(struct.pack("<BH", conn, 0))
                self._later(self.command_latency + self.conn_interval,
                            lambda: self._drop_link(REASON_LOCAL_HOST) if self._conn else None)
            else:
                reply(struct.pack("<BH", conn, NOT_CONNECTED))
        elif (cls, cmd) == (4, 4):  # attclient_read_by_handle
            conn, handle = struct.unpack("<BH", payload[:3])
            reply(struct.pack("<BH", conn, 0 if self._conn else NOT_CONNECTED))
            if self._conn:
                value = self._read(handle)
                self._later(self.command_latency + self.conn_interval,
                            lambda: self._write(attribute_value(handle, value, kind=0)))
        elif (cls, cmd) == (4, 5):  # attclient_attribute_write
            conn, handle, size = struct.unpack("<BHB", payload[:4])
            value = payload[4:4 + size]
            reply(struct.pack("<BH", conn, 0 if self._conn else NOT_CONNECTED))
            if self._conn:
                self._later(self.command_latency + self.conn_interval, lambda: self._written(handle, value))
        else:
            log.warning("emulator: unsupported BGAPI command class %d id %d", cls, cmd)
            reply(struct.pack("<H", 0x0180))

    def _read(self, handle: int) -> bytes:
        if handle == FIRMWARE_HANDLE:
            return struct.pack("<4H", *self.firmware)
        if handle == NAME_HANDLE:
            return b"emgflow emulated Myo"
        if handle == BATTERY_HANDLE:
            return b"\x64"
        return b""

    def _written(self, handle: int, value: bytes) -> None:
        """A write reached the armband: apply it, then report the procedure completed."""
        if not self._conn:
            return
        if handle - 1 in (*EMG_HANDLES, IMU_HANDLE, PREPROCESSED_HANDLE, BATTERY_HANDLE, 0x23) and len(value) == 2:
            if value[0] & 0x03:
                self._cccd.add(handle - 1)
            else:
                self._cccd.discard(handle - 1)
        elif handle == COMMAND_HANDLE and value:
            if value[0] == 0x01 and len(value) >= 5:  # set mode: emg, imu, classifier
                self._emg_mode, self._imu_mode = value[2], value[3]
                self.modes_set.append(value[2])
                if self._emg_mode and self._t0 is None:
                    self._t0 = time.monotonic_ns()
                self._resync_counters()
            elif value[0] == 0x04:  # deep sleep: the armband leaves
                self._later(self.conn_interval, lambda: self._drop_link(REASON_LOCAL_HOST) if self._conn else None)
        self._write(event(4, 1, struct.pack("<BHH", 0, 0, handle)))

    # --- link and streaming ---------------------------------------------------------------------
    def _reset_link_state(self) -> None:
        self._conn = False
        self._cccd: set[int] = set()
        self._emg_mode = self._imu_mode = 0

    def _link_up(self) -> None:
        self._reset_link_state()
        self._conn = True
        self.connections += 1
        self._resync_counters()
        self._write(event(3, 0, struct.pack("<BB6sBHHHB", 0, 0x05, self.address, 0, 6, 64, 0, 0xFF)))

    def _drop_link(self, reason: int) -> None:
        self._reset_link_state()
        self._write(event(3, 4, struct.pack("<BH", 0, reason)))

    def _send_scan_responses(self) -> None:
        """One unrelated BLE device and the armband answer each scan round (every 100 ms)."""
        other = b"\x02\x01\x06\x03\x03\x0f\x18"
        myo = b"\x02\x01\x06\x11\x06" + MYO_UUID
        self._write(event(6, 0, struct.pack("<bB6sBBB", -70, 0, bytes(range(6)), 0, 0xFF, len(other)) + other))
        self._write(event(6, 0, struct.pack("<bB6sBBB", -50, 0, self.address, 0, 0xFF, len(myo)) + myo))
        self._scan_at = time.monotonic_ns() + 100_000_000

    def _samples_per_notification(self) -> int:
        return 4 if self._emg_mode == 1 else 2

    def _emg_due(self, n: int) -> int:
        per = self._samples_per_notification()
        return self._t0 + round((per * n + per - 1) * 1e9 / self.rate)

    def _imu_due(self, m: int) -> int:
        return self._t0 + (m + 1) * 20_000_000

    def _resync_counters(self) -> None:
        """Skip what the device clock passed while the link was down: those samples are lost."""
        if self._t0 is None:
            return
        now = time.monotonic_ns()
        per = self._samples_per_notification()
        self._next_emg = max(self._next_emg, int(((now - self._t0) * self.rate / 1e9 - (per - 1)) // per) + 1)
        self._next_imu = max(self._next_imu, int((now - self._t0) // 20_000_000))

    def _send_emg(self) -> None:
        n = self._next_emg
        self._next_emg += 1
        if self._emg_mode in (2, 3):
            rows = np.arange(2 * n, 2 * n + 2)
            handle = EMG_HANDLES[n % 4]
            if not self.loop and rows[-1] >= len(self.emg):
                return
            value = self.emg[rows % len(self.emg)].tobytes()
        elif self._emg_mode == 1:
            row = 4 * n
            handle = PREPROCESSED_HANDLE
            if not self.loop and row >= len(self.emg):
                return
            value = np.abs(self.emg[row % len(self.emg)].astype(np.int16)).astype("<u2").tobytes() + b"\x00"
        else:
            return
        if handle not in self._cccd:
            return
        packet = attribute_value(handle, value)
        if self._drop is not None:
            count, offset = self._drop
            packet = packet[:offset] + packet[offset + count:]
            self._drop = None
            self.damaged.append(n)
        self.sent.append(n)
        self._write(packet)

    def _send_imu(self) -> None:
        m = self._next_imu
        self._next_imu += 1
        if self._imu_mode == 0 or IMU_HANDLE not in self._cccd:
            return
        if not self.loop and len(self.imu) > 1 and m >= len(self.imu):
            return
        self._write(attribute_value(IMU_HANDLE, self.imu[m % len(self.imu)].astype("<i2").tobytes()))


def load_myo_emg(path: str | Path) -> np.ndarray:
    """A Myo recording's EMG as (N, 8) int8, read with ``emgflow.recordings.load``."""
    from emgflow.recordings import load

    rec = load(path)
    if rec.emg.shape[1] != 8:
        raise ValueError(f"{path}: {rec.emg.shape[1]} channels; a Myo recording has 8")
    emg = rec.emg
    if not np.all(np.isfinite(emg)) or emg.min() < -128 or emg.max() > 127 or np.any(np.mod(emg, 1)):
        raise ValueError(f"{path}: values are not int8 counts; the emulator streams raw Myo recordings")
    return emg.astype(np.int8)
