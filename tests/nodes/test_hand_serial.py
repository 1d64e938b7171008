"""hand_serial on a pseudo-terminal: the far end decodes and checks every byte the node writes.

The decoders below are written from the protocol descriptions (Beetroot's serial codes; PSYONIC's
PPP-stuffed position frame), independently of the encoder in nodes/hand_serial.py.
"""

from __future__ import annotations

import os
import re
import select
import struct

import numpy as np
import pytest

from emgflow import Msg, ParamError
from emgflow.hand.models import MODELS
from emgflow.nodes.hand_serial import HandSerial, ability_position_frame, ppp_stuff

from .fake_clock import MS, FakeClock


# --- far-end decoders ---------------------------------------------------------------------------

def unstuff_frames(stream: bytes) -> list[bytes]:
    """Split a byte stream on 0x7E and undo the 0x7D escapes; reject any malformed escape."""
    frames = []
    for chunk in stream.split(b"\x7e"):
        if not chunk:
            continue
        out, i = bytearray(), 0
        while i < len(chunk):
            if chunk[i] == 0x7D:
                assert i + 1 < len(chunk), "escape at the end of a frame"
                assert chunk[i + 1] in (0x5E, 0x5D), f"escape followed by {chunk[i + 1]:#x}"
                out.append(chunk[i + 1] ^ 0x20)
                i += 2
            else:
                out.append(chunk[i])
                i += 1
        frames.append(bytes(out))
    return frames


def decode_ability(frame: bytes, address: int = 0x50) -> np.ndarray:
    """Check one unstuffed position frame (length, header, checksum, ranges); return degrees."""
    assert len(frame) == 15, f"frame of {len(frame)} bytes"
    assert frame[0] == address and frame[1] in (0x10, 0x11, 0x12), frame[:2].hex()
    assert sum(frame) & 0xFF == 0, "checksum"
    deg = np.array(struct.unpack("<6h", frame[2:14])) * 150 / 32767
    assert np.all(deg[:5] >= -0.01) and np.all(deg[:5] <= 100.01), deg
    assert -100.01 <= deg[5] <= 0.01, deg
    return deg


BRUNEL_LINE = re.compile(rb"F(\d) P(\d{1,3}) S(\d{1,3})")


def decode_brunel(stream: bytes, fingers: int) -> list[tuple[int, int, int]]:
    """Every CR-terminated line must be ``F<n> P<0-100> S<0-255>`` with n < fingers."""
    assert stream.endswith(b"\r"), "unterminated line"
    out = []
    for line in stream[:-1].split(b"\r"):
        m = BRUNEL_LINE.fullmatch(line)
        assert m, f"bad line {line!r}"
        f, p, s = map(int, m.groups())
        assert f < fingers and 0 <= p <= 100 and 0 <= s <= 255, line
        out.append((f, p, s))
    return out


def read_all(fd: int, wait_s: float = 0.0) -> bytes:
    """Everything the node has written so far (pty writes are readable at once)."""
    data = b""
    while select.select([fd], [], [], wait_s)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def pty():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def run_node(node: HandSerial, clock: FakeClock, master: int, commands: list[np.ndarray | int],
             ticks_between: int = 5) -> bytes:
    """Feed commands 50 ms apart (ticks every 10 ms), draining the pty as we go."""
    node.clock = clock
    node.sleep = lambda s: clock.advance(s * 1000)
    node.setup()
    stream = read_all(master)
    try:
        for k, c in enumerate(commands):
            data = np.array([[c]]) if np.isscalar(c) else np.asarray(c, dtype=float)[None, :]
            node.process(Msg(data=data, start=k, t_acq=clock() - 5 * MS))
            for _ in range(ticks_between):
                clock.advance(10)
                node.tick()
            stream += read_all(master)
        node.finish()
        stream += read_all(master, wait_s=0.05)
    finally:
        node.teardown()
    return stream


# --- tests ----------------------------------------------------------------------------------------

def test_stuffing_escapes_frame_and_escape_bytes():
    payload = bytes([0x50, 0x7E, 0x01, 0x7D, 0x20])
    stuffed = ppp_stuff(payload)
    assert stuffed == bytes([0x7E, 0x50, 0x7D, 0x5E, 0x01, 0x7D, 0x5D, 0x20, 0x7E])
    assert unstuff_frames(stuffed) == [payload]


def test_ability_frame_layout():
    frame = unstuff_frames(ability_position_frame(np.array([30, 30, 30, 30, 30, -30]), reply_mode=1))
    assert len(frame) == 1 and frame[0][:2] == bytes([0x50, 0x11])
    assert np.allclose(decode_ability(frame[0]), [30, 30, 30, 30, 30, -30], atol=150 / 32767)


def test_ability_hand_frames_on_a_pty(pty):
    master, port = pty
    # 12.296 deg -> 2686 = 0x0A7E and 19.3228 deg -> 4221 = 0x107D: the frame must stuff them.
    target = np.array([12.296, 19.3228, 45.0, 60.0, 30.0, -50.0])
    commands = [target] * 20 + [np.array([200.0, -5, 50, 50, 50, 20])] * 10  # then out of range
    clock = FakeClock()
    node = HandSerial(port=port, protocol="ability", input="joints")
    stream = run_node(node, clock, master, commands)
    assert b"\x7d\x5e" in stream and b"\x7d\x5d" in stream  # stuffing really happened
    poses = np.array([decode_ability(f) for f in unstuff_frames(stream)])  # every frame checked
    assert len(poses) == node.counters["writes"]  # one frame per write, none lost or merged
    step = MODELS["ability"].max_speed * 0.010 + 2 * 150 / 32767
    assert np.abs(np.diff(poses, axis=0)).max() <= step  # rate-limited on the wire
    at_target = np.abs(poses - target).max(axis=1) < 150 / 32767
    assert at_target.any()  # the hand reached the commanded pose...
    clamped = np.array([100.0, 0, 50, 50, 50, 0])
    assert (np.abs(poses - clamped).max(axis=1) < 150 / 32767).any()  # ...and the clamped one
    safe = MODELS["ability"].grip("rest")
    assert np.abs(poses[-1] - safe).max() < 150 / 32767  # finish() settled on the safe pose
    assert node.counters["clamped"] == 10


def test_brunel_lines_on_a_pty(pty):
    master, port = pty
    labels = [1] * 20 + [0] * 20  # power, then open
    clock = FakeClock()
    node = HandSerial(port=port, protocol="brunel", gestures={0: "open", 1: "power"}, speed=200)
    assert node.hand_model.name == "brunel" and node.baud == 115200 and node.period_ms == 40
    stream = run_node(node, clock, master, labels)
    lines = decode_brunel(stream, fingers=5)
    assert {s for _, _, s in lines} == {200}
    state: dict[int, list[int]] = {f: [] for f in range(5)}
    for f, p, _ in lines:
        state[f].append(p)
    power = np.round(MODELS["brunel"].grip("power") * 100).astype(int)
    rest = np.round(MODELS["brunel"].grip("rest") * 100).astype(int)
    for f in range(5):
        assert power[f] in state[f] and 0 in state[f]  # reached power, then open
        assert state[f][-1] == rest[f]  # finish() settled on the safe pose
        # 40 ms between writes at 2.0/s: at most 8 % per line, plus 1 % rounding
        assert np.abs(np.diff(state[f])).max() <= 9


def test_brunel4_drives_four_motors(pty):
    master, port = pty
    node = HandSerial(port=port, protocol="brunel", model="brunel4", gestures={0: "power"})
    lines = decode_brunel(run_node(node, FakeClock(), master, [0] * 5), fingers=4)
    assert {f for f, _, _ in lines} == {0, 1, 2, 3}


def test_protocol_and_model_must_match():
    with pytest.raises(ParamError) as err:
        HandSerial(port="/dev/null", protocol="ability", model="brunel")
    assert err.value.param == "model"
    assert HandSerial(port="/dev/null", protocol="ability").baud == 460800
