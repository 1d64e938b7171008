"""hand_udp to a localhost UDP socket: msgpack poses and LibEMG's text, parsed the way their
consumers parse them."""

from __future__ import annotations

import re
import socket

import msgpack
import numpy as np
import pytest

from emgflow import Msg
from emgflow.hand.models import MODELS
from emgflow.nodes.hand_udp import HandUdp

from .fake_clock import MS, FakeClock


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    yield sock
    sock.close()


def drain(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    out = []
    try:
        while True:
            out.append(sock.recv(65536))
    except BlockingIOError:
        return out
    finally:
        sock.settimeout(1.0)


def start(receiver: socket.socket, clock: FakeClock, **params) -> HandUdp:
    node = HandUdp(host="127.0.0.1", port=receiver.getsockname()[1], **params)
    node.clock = clock
    node.sleep = lambda s: clock.advance(s * 1000)
    node.setup()
    return node


def test_msgpack_pose_stream(receiver):
    clock = FakeClock()
    node = start(receiver, clock, model="glove10", gestures={0: "power"})
    node.process(Msg(data=np.array([[0]]), t_acq=clock() - 5 * MS))
    for _ in range(40):  # 400 ms: active, then the watchdog engages at 260 ms
        clock.advance(10)
        node.tick()
    node.teardown()  # no end of stream: the safe stop steps the hand the rest of the way to safe
    packets = [msgpack.unpackb(d) for d in drain(receiver)]
    assert len(packets) == node.counters["writes"] > 42  # setup + command + 40 ticks + the safe stop
    model = MODELS["glove10"]
    assert [p["seq"] for p in packets] == list(range(len(packets)))
    np.testing.assert_allclose(list(packets[-1]["joints"].values()), node.safety.safe_pose)
    for p in packets:
        assert list(p["joints"]) == list(model.names)
        values = np.array(list(p["joints"].values()))
        assert np.all(values >= model.lo) and np.all(values <= model.hi)
    states = [p["state"] for p in packets]
    assert states[0] == "safe" and states[1] == "active" and states[-1] == "safe"
    active = [p for p in packets if p["state"] == "active"]
    assert all(p["class"] == 0 and p["gesture"] == "power" and p["t_acq"] > 0 for p in active)
    assert len(active) == 26  # the command + 25 ticks up to 250 ms; the 260 ms tick is safe
    assert all(p["state"] == "safe" for p in packets[42:])


def test_libemg_class_text(receiver):
    clock = FakeClock()
    node = start(receiver, clock, format="libemg", gestures="ninapro-e1")
    for k, cls in enumerate([3, 3, -1, 12, 99]):
        node.process(Msg(data=np.array([[cls]]), start=k, t_acq=clock() - 5 * MS))
        for _ in range(5):
            clock.advance(10)
            node.tick()
    node.process(Msg(data=np.array([[4]]), start=5, t_acq=clock() - 500 * MS))  # stale: refused
    for _ in range(30):
        clock.advance(10)
        node.tick()
    node.teardown()
    texts = [d.decode("ascii") for d in drain(receiver)]
    # LibEMG OnlineEMGClassifier (predictions) sends "<class>\n"; ClassifierController reads
    # float(text.split(' ')[0]). One datagram per accepted decision, -1 when the safe pose engages;
    # the unknown class 99 and the stale 4 are never sent.
    assert texts == ["3\n", "3\n", "-1\n", "12\n", "-1\n"]
    assert [float(t.split(" ")[0]) for t in texts] == [3, 3, -1, 12, -1]
    assert node.counters["unknown_class"] == 1 and node.counters["stale"] == 1


def test_libemg_regressor_text(receiver):
    clock = FakeClock()
    node = start(receiver, clock, format="libemg", model="ability", input="joints")
    node.process(Msg(data=np.array([[10.5, 20, 30, 40, 150, -20]]), t_acq=clock() - 5 * MS))
    node.teardown()  # the safe stop sends one more datagram: the safe pose
    text, safe = [d.decode("ascii") for d in drain(receiver)]
    # RegressorController: every number in the text, the last one being the timestamp.
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", text)]
    assert numbers[:-1] == [10.5, 20, 30, 40, 100, -20]  # clamped to the thumb flexor limit
    assert numbers[-1] > 1e9 and text.endswith("\n")
    safe_numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", safe)]
    np.testing.assert_allclose(safe_numbers[:-1], node.safety.safe_pose)
