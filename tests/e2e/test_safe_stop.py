"""Every way the controller can stop ends with each hand's safe pose, read from what the device got."""

from __future__ import annotations

import os
import select
import signal
import socket
import textwrap
import threading
import time

import msgpack
import numpy as np
import pytest

from emgflow.hand.models import MODELS

from .procs import alive, children_of, start_run, wait_for
from .test_runtime import CRASHY

SAFE = MODELS["brunel"].grip("rest")
SO_RCVBUFFORCE = 33  # Linux: SO_RCVBUF past rmem_max, for root (Python's socket module does not name it)


class UdpHand:
    """The hand device: every datagram the hand_udp node sends, with its arrival time."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:  # room for seconds of datagrams: a listener starved on a busy machine must not lose the last
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        except OSError:  # not root
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.got: list[tuple[float, dict]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _listen(self) -> None:
        while not self.done.is_set():
            try:
                self.got.append((time.monotonic(), msgpack.unpackb(self.sock.recv(65536))))
            except socket.timeout:
                continue

    def close(self) -> list[tuple[float, dict]]:
        time.sleep(0.3)
        self.done.set()
        self.thread.join()
        self.sock.close()
        return self.got


def graph(tmp_path, hand: str, extra: str = "", group: str = "") -> str:
    data = os.environ.get("EMGFLOW_DATA", "")
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(f"""
        nodes:
          source: {{type: replay, params: {{path: {data}/ninapro-db5-e1/s1/S1_E1_A1.mat, start_s: 50.5, speed: 1}}}}
          hand: {{type: {hand}, inputs: {{in: {{from: {"crashy.out" if extra else "source.label"}, policy: latest,
                  queue: 1}}}}{group}}}
        """) + textwrap.indent(textwrap.dedent(extra), "  "))
    return path


def moved(pose: dict) -> bool:
    """The hand holds a grip away from its safe pose (DB5 movement 1 runs 49.9-54.9 s)."""
    return pose["state"] == "active" and float(np.abs(np.array(list(pose["joints"].values())) - SAFE).max()) > 0.1


def assert_ends_safe(got: list[tuple[float, dict]], fault_at: float) -> float:
    """The device saw the hand holding a grip, then its last pose is the safe pose; returns the
    seconds from the fault to the last datagram."""
    assert any(moved(p) for t, p in got if t <= fault_at), "the hand never held a grip before the fault"
    t_last, last = got[-1]
    assert last["state"] == "safe"
    np.testing.assert_allclose(list(last["joints"].values()), SAFE, atol=1e-9)
    return t_last - fault_at


@pytest.fixture
def udp_hand(data_dir, monkeypatch):
    monkeypatch.setenv("EMGFLOW_DATA", str(data_dir))
    hand = UdpHand()
    yield hand
    hand.done.set()


def hand_pid(run) -> int:
    kids = children_of(run.pid)
    pid = [k for k in kids if b'"hand"' in open(f"/proc/{k}/cmdline", "rb").read()]
    assert len(pid) == 1
    return pid[0]


def holding(hand: UdpHand) -> bool:
    return any(moved(p) for _, p in hand.got)


@pytest.mark.parametrize("fault", ["supervisor SIGKILL", "group SIGTERM", "hand SIGHUP", "supervisor SIGHUP"])
def test_hand_udp_ends_safe(tmp_path, udp_hand, fault):
    run = start_run(graph(tmp_path, f"hand_udp, params: {{gestures: ninapro-e1, port: {udp_hand.port}}}"))
    assert wait_for(lambda: holding(udp_hand), 60), "the hand never held a grip"
    kids = children_of(run.pid)
    t = time.monotonic()
    if fault == "supervisor SIGKILL":
        run.kill()
    elif fault == "group SIGTERM":
        os.killpg(run.pid, signal.SIGTERM)
    elif fault == "hand SIGHUP":
        os.kill(hand_pid(run), signal.SIGHUP)
    else:
        run.send_signal(signal.SIGHUP)
    run.wait(timeout=30)
    assert wait_for(lambda: not [k for k in kids if alive(k)], 10), "node processes outlived the fault"
    print(f"\n{fault}: safe pose at the device {assert_ends_safe(udp_hand.close(), t) * 1000:.0f} ms after the fault")


def test_a_crash_in_the_hands_group_ends_safe(tmp_path, udp_hand):
    """The node that crashes shares the hand's process: the hand still stops on its safe pose."""
    (tmp_path / "crashy.py").write_text(CRASHY)
    g = graph(tmp_path, f"hand_udp, params: {{gestures: ninapro-e1, port: {udp_hand.port}}}", group=", group: g",
              extra="""
              crashy: {type: "crashy:Crashy", inputs: {in: source.label}, params: {at: 300}, group: g}
              """)
    run = start_run(g, env={"PYTHONPATH": str(tmp_path)})
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1 and "crashy: crashed: RuntimeError: boom at message 300" in err
    got = udp_hand.close()
    crash = next(t for t, p in reversed(got) if p["state"] == "active")
    print(f"\ncrash in the hand's group: safe pose {assert_ends_safe(got, crash) * 1000:.0f} ms after the last active pose")


def test_hand_serial_ends_safe_when_the_supervisor_is_killed(tmp_path, data_dir, monkeypatch):
    """A serial hand (Brunel protocol on a pty): its last line for every finger is the safe pose."""
    monkeypatch.setenv("EMGFLOW_DATA", str(data_dir))
    master, slave = os.openpty()
    chunks: list[bytes] = []
    done = threading.Event()

    def device() -> None:  # the hand: reads all the time (a pty holds only a few kB; a full one blocks writes)
        while not done.is_set():
            if select.select([master], [], [], 0.1)[0]:
                chunks.append(os.read(master, 4096))

    reader = threading.Thread(target=device, daemon=True)
    reader.start()
    try:
        run = start_run(graph(tmp_path, f"hand_serial, params: {{gestures: ninapro-e1, protocol: brunel, "
                                        f"port: {os.ttyname(slave)}}}"))
        assert wait_for(lambda: b"F0 P" in b"".join(chunks), 60)
        time.sleep(1.5)  # the hand closes on movement 1's grip
        kids = children_of(run.pid)
        run.kill()
        _, err = run.communicate(timeout=30)
        assert wait_for(lambda: not [k for k in kids if alive(k)], 10), "node processes outlived the supervisor"
        time.sleep(0.3)
    finally:
        done.set()
        reader.join()
        os.close(master)
        os.close(slave)
    stream = b"".join(chunks)
    safe = list(np.round(SAFE * 100).astype(int))
    last: dict[int, int] = {}
    away = False
    for line in stream.split(b"\r"):
        if line.startswith(b"F"):
            f, p = line.split()[:2]
            last[int(f[1:])] = int(p[1:])
            away = away or abs(last[int(f[1:])] - safe[int(f[1:])]) > 10
    assert away, "the hand never held a grip"
    assert [last[f] for f in range(5)] == safe, err
