"""A Myo armband behind a BLED112 dongle: its GATT layout and the pyomyo-driven reader thread.

pyomyo's ``run()`` is one blocking read without timeout and ``connect()`` waits forever for a
silent dongle or an absent armband. :class:`MyoLink` owns pyomyo and the port in a
:class:`~emgflow.acquisition.reader.ReconnectingReader` thread (pyomyo is not thread safe), and
the port is a :class:`~emgflow.acquisition.guarded_port.GuardedPort`, so that a wait ends: with
``b""`` after ``poll_s`` while streaming (``run()`` returns, the thread checks stop and
silence), with an exception past the connect deadline or on stop. A disconnect event (which
pyomyo ignores) or ``SILENCE_TIMEOUT_S`` of silence ends the link; the reader reconnects.
"""

from __future__ import annotations

import queue
import re
import struct
import time
from typing import Any, Mapping

from emgflow.acquisition.guarded_port import GuardedPort
from emgflow.acquisition.reader import LinkLost, ReconnectingReader
from emgflow.clocksync import now_ns

# --- the GATT layout (value handles; each CCCD is the handle + 1) ---------------------------------
MYO_UUID = bytes.fromhex("4248124a7f2c4847b9de04a9010006d5")
"""The Myo control service UUID as advertised (pyomyo matches scan responses ending with it)."""
NAME_HANDLE = 0x03
FIRMWARE_HANDLE = 0x17
COMMAND_HANDLE = 0x19
IMU_HANDLE = 0x1C
PREPROCESSED_HANDLE = 0x27
EMG_HANDLES = (0x2B, 0x2E, 0x31, 0x34)
"""EmgData0..3: raw notifications rotate over these four, two samples each."""

CONNECT_TIMEOUT_S = 10.0
SILENCE_TIMEOUT_S = 2.0

PACKET_STARTS = (0x00, 0x80, 0x08, 0x88)
"""First bytes pyomyo's parser accepts as a packet start (BLE and Wi-Fi responses and events)."""

MAC_PATTERN = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def mac_to_wire(mac: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (as printed, most significant byte first) -> the 6 bytes BGAPI sends."""
    if not MAC_PATTERN.match(mac):
        raise ValueError(f"MAC address must look like aa:bb:cc:dd:ee:ff, got {mac!r}")
    return bytes.fromhex(mac.replace(":", ""))[::-1]


class MyoLink(ReconnectingReader):
    """The Myo's reader thread: owns pyomyo and the port, connects, streams, reconnects with backoff.

    It puts ``("data", packet, handle, value, arrival_ns)`` for every notification on
    ``handles`` and ``("status", kind, text)`` for ``connecting``, ``connected``, ``lost``,
    ``connect_failed`` and ``malformed`` on ``out``; all interpretation happens in the node's thread.
    """

    def __init__(self, pyomyo: Any, tty: str | None, mode: str, mac: bytes | None,
                 handles: Mapping[int, int], out: "queue.SimpleQueue[tuple]", poll_s: float) -> None:
        super().__init__(out, name="myo-link")
        self.pyomyo, self.tty, self.mode, self.mac = pyomyo, tty, mode, mac
        self.handles, self.poll_s = handles, poll_s
        self._myo: Any = None
        self._port: GuardedPort | None = None

    def connect(self) -> str:
        self._myo = myo = self.pyomyo.Myo(tty=self.tty, mode=self.pyomyo.emg_mode[self.mode])
        self._port = port = GuardedPort(myo.bt.ser, self.stop_event, self.poll_s)
        myo.bt.add_handler(lambda p, m=myo, g=port: self._on_packet(m, g, p))
        port.deadline = time.monotonic() + CONNECT_TIMEOUT_S
        self.out.put(("status", "connecting", str(myo.bt.ser.port)))  # data may follow during connect()
        myo.connect(list(self.mac) if self.mac else None)
        port.deadline = None
        return f"connected on {myo.bt.ser.port}"

    def stream(self) -> None:
        while True:
            try:
                self._myo.run()
            except (struct.error, ValueError, IndexError) as exc:  # pyomyo parsing a mis-framed packet
                self.out.put(("status", "malformed", f"{type(exc).__name__}: {exc}"))
            if time.monotonic() - self._port.last_rx > SILENCE_TIMEOUT_S:
                raise LinkLost(f"no data for {SILENCE_TIMEOUT_S:.0f} s")

    def _on_packet(self, myo: Any, port: GuardedPort, p: Any) -> None:
        """pyomyo event handler (runs inside run()/connect()): stamp and forward notifications.

        BGAPI has no checksum. When bytes are lost inside a packet, pyomyo completes it with the
        first bytes of the next one, so the byte after it starts no packet: such an event is
        reported as malformed (the node then places the next notification by time) instead of
        being passed on with shifted samples.
        """
        arrival = now_ns()
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

    def close(self) -> None:
        myo, port, self._myo, self._port = self._myo, self._port, None, None
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
