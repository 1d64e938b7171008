"""Myo armband source through a BLED112 dongle, driven by pyomyo's unmodified driver.

pyomyo has three pitfalls this node guards against (emg-ecosystem.md section 2):

- its integer default ``mode=1`` equals no ``emg_mode`` member, so no EMG is enabled: the
  ``mode`` param maps names to the right ``emg_mode`` member;
- ``run()`` blocks without timeout and ``connect()`` waits forever: pyomyo runs in a reader
  thread whose every wait ends (``emgflow.devices.myo.MyoLink``);
- events that arrive while a command waits for its response are dispatched twice, as the
  same packet object: the sequencer drops a repeat of the previous packet.

pyomyo gives no timestamps. ``emgflow.acquisition.sample_clock.SampleClock`` reconstructs each
sample's acquisition time from notification arrival times (lower-envelope fit, robust to latency
jitter and following clock drift); ``t_acq`` is the newest row's time on the ``now_ns()`` clock.
Lost notifications are found from the rotation of the four raw EMG characteristics and, for
whole rotations, from lasting lateness against that clock
(``emgflow.acquisition.sequencer.NotificationSequencer``); the stream's ``start`` then skips the
lost samples.

A lost dongle, a disconnect event (which pyomyo ignores) or 2 s of silence is logged and
counted, and the thread reconnects with exponential backoff (0.25 s up to 5 s); the node stays
alive. Counters: ``notifications``, ``duplicates``, ``lost_notifications``, ``lost_samples``,
``rotation_mismatch``, ``reindexed``, ``malformed``, ``connects``, ``reconnects``,
``disconnects``, ``connect_failures``.
"""

from __future__ import annotations

import queue
from typing import Any, Iterator, Mapping

import numpy as np

from emgflow.acquisition.sequencer import NotificationSequencer
from emgflow.devices.myo import EMG_HANDLES, IMU_HANDLE, MAC_PATTERN, PREPROCESSED_HANDLE, MyoLink, mac_to_wire
from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.node import Node, Output
from emgflow.params import Param
from emgflow.ports import Out

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
        if self.mac is not None and not MAC_PATTERN.match(self.mac):
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
                             handles, self._queue, POLL_S)
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
