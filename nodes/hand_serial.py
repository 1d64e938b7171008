"""Drive a real hand over a serial port: Open Bionics Brunel ASCII or PSYONIC Ability Hand frames.

Both encoders are pure functions (``brunel_line``, ``ability_position_frame``) so they can be
checked without a port; the node only adds the port and the shared safety core (``emgflow.hand``).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from emgflow import Param, ParamError
from emgflow.hand.output import HandCommand, HandOutput

BRUNEL_EOL = b"\r"
"""Beetroot accepts CR or LF; its README sets the serial monitor to carriage return."""

ABILITY_FRAME = 0x7E
ABILITY_ESC = 0x7D
ABILITY_MASK = 0x20
ABILITY_DEG_SCALE = 32767 / 150
"""Position units: int16 = degrees * 32767 / 150 (PSYONIC ``ah_wrapper``)."""

PROTOCOLS = {"brunel": (("brunel", "brunel4"), 115200), "ability": (("ability",), 460800)}
"""protocol -> (models it can drive, default baud rate)."""


def brunel_line(finger: int, position: float, speed: int) -> bytes:
    """One Beetroot finger command, ``F<n> P<0-100> S<0-255>`` + CR, for a position in 0..1."""
    pos = int(round(min(max(position, 0.0), 1.0) * 100))
    return f"F{finger} P{pos} S{int(speed)}".encode("ascii") + BRUNEL_EOL


def ppp_stuff(payload: bytes) -> bytes:
    """PPP-style framing: 0x7E at both ends, 0x7D/0x7E inside escaped as 0x7D, byte ^ 0x20."""
    out = bytearray([ABILITY_FRAME])
    for b in payload:
        if b in (ABILITY_FRAME, ABILITY_ESC):
            out += bytes([ABILITY_ESC, b ^ ABILITY_MASK])
        else:
            out.append(b)
    out.append(ABILITY_FRAME)
    return bytes(out)


def ability_position_frame(degrees: np.ndarray, address: int = 0x50, reply_mode: int = 0) -> bytes:
    """A stuffed Ability Hand position frame.

    Unstuffed layout: ``[address][0x10 + reply_mode][6 x int16 LE, deg * 32767/150][checksum]``
    where checksum = (-sum of the preceding bytes) & 0xFF, so all bytes sum to 0 mod 256.
    Our reading where PSYONIC's code is loose: values are rounded (their API truncates) and
    clamped to +-32767; reply_mode is 0..2 (the variants their API exposes).
    """
    if len(degrees) != 6:
        raise ValueError(f"the Ability Hand takes 6 positions, got {len(degrees)}")
    counts = np.clip(np.rint(np.asarray(degrees, dtype=float) * ABILITY_DEG_SCALE), -32767, 32767)
    body = struct.pack("<BB6h", address, 0x10 + reply_mode, *counts.astype(int).tolist())
    return ppp_stuff(body + bytes([-sum(body) & 0xFF]))


class HandSerial(HandOutput):
    """Hand output over a serial port: Open Bionics Brunel ASCII lines or Ability Hand binary frames.

    ``brunel``: one ``F<n> P<pos> S<speed>`` line per finger whose integer position changed
    (all fingers on the first write and when the safe pose engages), at most every ``period_ms``;
    motor n = joint n of the model (``brunel4`` for a real 4-motor Brunel, ``brunel`` for
    5-motor boards).
    ``ability``: one position frame per step (every ``tick_ms``), which the hand expects as a
    stream; byte stuffing must be enabled on the hand (PSYONIC's ``We46``/``We47``), and its
    replies are discarded. Serial errors are counted and logged, never raised per write.
    """

    kind = "hand_serial"

    port = Param(str, help="serial device, e.g. /dev/ttyACM0")
    protocol = Param(str, "brunel", choices=tuple(PROTOCOLS), help="wire protocol of the hand")
    model = Param(str, None, nullable=True, choices=("brunel", "brunel4", "ability"),
                  help="hand model; null = brunel for protocol brunel, ability for protocol ability")
    baud = Param(int, None, nullable=True, gt=0, unit="baud",
                 help="baud rate; null = 115200 (brunel) or 460800 (ability)")
    speed = Param(int, 255, ge=0, le=255,
                  help="brunel: finger speed S sent with each command (the node already rate-limits)")
    address = Param(int, 0x50, ge=0, le=255, help="ability: hand address byte")
    reply_mode = Param(int, 0, ge=0, le=2, help="ability: reply variant, header byte 0x10 + reply_mode")
    period_ms = Param(float, None, nullable=True, ge=0, unit="ms",
                      help="least time between writes; null = 40 (brunel: Beetroot echoes every command "
                           "verbosely) or 0 (ability: a frame every tick)")
    write_timeout_ms = Param(float, 50.0, gt=0, unit="ms", help="give up a blocked serial write after this")

    def check(self) -> None:
        models, default_baud = PROTOCOLS[self.protocol]
        if self.model is None:
            self.model = models[0]
        elif self.model not in models:
            raise ParamError("model", f"protocol {self.protocol!r} drives models {list(models)}, not {self.model!r}")
        if self.baud is None:
            self.baud = default_baud
        if self.period_ms is None:
            self.period_ms = 40.0 if self.protocol == "brunel" else 0.0
        super().check()

    def open_device(self) -> None:
        import serial

        self._serial_error = serial.SerialException
        self.ser = serial.Serial(self.port, self.baud, timeout=0, write_timeout=self.write_timeout_ms / 1000)
        self._sent: list[int | None] = [None] * len(self.hand_model.joints)
        self._last_write: int | None = None

    def write(self, cmd: HandCommand) -> bool:
        if cmd.event is not None and cmd.event.kind == "safe":
            self._sent = [None] * len(self._sent)  # resend every finger when the safe pose engages
        throttled = self._last_write is not None and cmd.t_ns - self._last_write < self.period_ms * 1e6
        if throttled and not cmd.settled:
            return False
        if self.protocol == "ability":
            data = ability_position_frame(cmd.pose, self.address, self.reply_mode)
        else:
            data = self._brunel_lines(cmd)
        if not data:
            return False
        try:
            self.ser.reset_input_buffer()  # drop replies/echo: we never read them
            self.ser.write(data)
        except self._serial_error as exc:  # includes SerialTimeoutException
            self._bad("write_errors", f"serial write failed: {exc}")
            return False
        self._last_write = cmd.t_ns
        return True

    def _brunel_lines(self, cmd: HandCommand) -> bytes:
        lines = []
        for i, pos in enumerate(cmd.pose):
            p = int(round(pos * 100))
            if p != self._sent[i]:
                lines.append(brunel_line(i, pos, self.speed))
                self._sent[i] = p
        return b"".join(lines)

    def close_device(self) -> None:
        ser: Any = getattr(self, "ser", None)
        if ser is not None:
            ser.close()
