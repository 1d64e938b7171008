"""Send hand commands as UDP datagrams: msgpack poses for robot hands and simulators, or
LibEMG's text so existing LibEMG consumers (``SocketController`` and friends) work unchanged."""

from __future__ import annotations

import socket
import time
from typing import Any

from emgflow import Param
from emgflow.hand.output import HandCommand, HandOutput


def msgpack_payload(cmd: HandCommand, names: tuple[str, ...], seq: int) -> dict[str, Any]:
    """The msgpack datagram: wall time ``t`` (s), the pose by joint name, and its context."""
    return {"t": time.time(), "t_acq": cmd.t_acq, "seq": seq, "state": "safe" if cmd.safe else "active",
            "class": cmd.cls, "gesture": cmd.gesture,
            "joints": {n: float(v) for n, v in zip(names, cmd.pose)}}


def libemg_text(cmd: HandCommand, input_kind: str) -> str:
    """LibEMG's UDP text for one command.

    Class input: ``"<class>\\n"``, what ``OnlineEMGClassifier`` sends with
    ``output_format="predictions"`` and no velocity; -1 (LibEMG's "no decision") while the safe
    pose is engaged. Joint input: ``"[v0 v1 ...] <time.time()>\\n"``, the layout of
    ``OnlineEMGRegressor`` that ``RegressorController`` parses (numbers, timestamp last).
    """
    if input_kind == "class":
        return f"{-1 if cmd.safe or cmd.cls is None else cmd.cls}\n"
    values = " ".join(repr(float(v)) for v in cmd.target)
    return f"[{values}] {time.time()}\n"


class HandUdp(HandOutput):
    """Hand output as UDP datagrams to a robot hand, a simulator or a LibEMG consumer.

    ``msgpack``: ``{t, t_acq, seq, state, class, gesture, joints: {name: value}}`` every step
    (every ``tick_ms``): the rate-limited, clamped pose, a stream the receiver can also use as a
    heartbeat. ``libemg``: one text datagram per accepted command, plus one when the safe pose
    engages, because LibEMG consumers treat every datagram as one action (no rate limiting
    applies to class ids; joint values are the clamped targets).
    """

    kind = "hand_udp"

    host = Param(str, "127.0.0.1", help="destination address")
    port = Param(int, 12346, ge=1, le=65535, help="destination UDP port (12346 is LibEMG's default)")
    format = Param(str, "msgpack", choices=("msgpack", "libemg"), help="datagram format")

    def open_device(self) -> None:
        import msgpack

        self._pack = msgpack.packb
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self._seq = 0

    def write(self, cmd: HandCommand) -> bool:
        if self.format == "msgpack":
            data = self._pack(msgpack_payload(cmd, self.hand_model.names, self._seq))
        elif cmd.fresh or (cmd.event is not None and cmd.event.kind == "safe"):
            data = libemg_text(cmd, self.input).encode("ascii")
        else:
            return False
        try:
            self.sock.sendto(data, (self.host, self.port))
        except OSError as exc:  # unreachable host, full buffer: count, never block the control loop
            self._bad("send_errors", f"UDP send to {self.host}:{self.port} failed: {exc}")
            return False
        self._seq += 1
        return True

    def close_device(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()
