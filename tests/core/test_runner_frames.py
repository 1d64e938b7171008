"""A node's runner drops and counts malformed frames and keeps going (real Runner, real sockets, and a
real node process under thousands of mutated frames)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from emgflow.codec import MAX_PAYLOAD_BYTES, MalformedFrame, decode, encode
from emgflow.contract import NodeRuntime, ProcessSpec
from emgflow.message import Msg
from emgflow.runner import Runner
from emgflow.transport import InputSpec, OutputSpec

from .mutate import mutate_bytes


def relay_spec(tmp_path: Path, supervisor_pid: int, queue: int, host: str = "",
               max_payload: int = MAX_PAYLOAD_BYTES) -> str:
    """A `relay` process's spec (JSON, as the supervisor passes it): input from our PUB at src (a
    producer on ``host``), output to our SUB at out, control at ctl."""
    node = NodeRuntime(name="relay0", cls="emgflow.nodes.relay:Relay", params={},
                       outputs={"out": OutputSpec(f"ipc://{tmp_path}/out", "relay0.out", subscribers=1, lossless=False)},
                       inputs={"in": InputSpec(f"ipc://{tmp_path}/src", "source.out", policy="all", queue=queue,
                                               host=host, max_payload=max_payload)})
    return ProcessSpec("relay0", [node], f"ipc://{tmp_path}/ctl", supervisor_pid).to_json()


class InProcessRelay:
    """A real Runner hosting a relay, fed by our plain PUB, read by our SUB (real sockets, our loop)."""

    def __init__(self, tmp_path: Path, host: str = "") -> None:
        ctx = zmq.Context.instance()
        self.control = ctx.socket(zmq.ROUTER)
        self.control.bind(f"ipc://{tmp_path}/ctl")
        self.upstream = ctx.socket(zmq.PUB)
        self.upstream.bind(f"ipc://{tmp_path}/src")
        self.downstream = ctx.socket(zmq.SUB)
        self.downstream.setsockopt(zmq.SUBSCRIBE, b"")
        self.downstream.connect(f"ipc://{tmp_path}/out")
        self.runner = Runner(ProcessSpec.from_json(relay_spec(tmp_path, os.getppid(), queue=64, host=host)))
        self.relay = self.runner.hosted["relay0"]
        assert self.relay.outputs["out"].pub.wait_subscribers(time.monotonic() + 5)
        time.sleep(0.2)  # let the runner's SUB connect to our plain PUB

    def pump(self, received: int) -> None:
        """Run the runner's receive loop until the relay has taken ``received`` messages."""
        deadline = time.monotonic() + 5
        while self.relay.inputs["in"].received < received and time.monotonic() < deadline:
            for hosted, port in self.runner.poller.poll(50)[1]:
                hosted.receive(port)

    def close(self) -> None:
        for sock in (self.upstream, self.downstream, self.control):
            sock.close(0)
        self.relay.close()
        self.runner.beat.close()
        self.runner.control.close(0)


@pytest.fixture
def relay(tmp_path):
    r = InProcessRelay(tmp_path)
    yield r
    r.close()


def test_garbage_frames_are_counted_not_fatal(relay):
    good = Msg(data=np.arange(8, dtype=np.float32).reshape(1, 8), rate=200.0, trace=[["source", 1, 2]])
    topic, header, data = encode(b"source.out", good)
    bad_frames = [
        [topic, b"\xc1garbage", data],                                    # header is not msgpack
        [topic, msgpack.packb({"v": 99}), data],                          # wrong schema
        [topic, header, bytes(data)[:10]],                                # truncated payload
        [topic, header],                                                  # missing frame
        [topic, msgpack.packb({**msgpack.unpackb(header), "d": "|O"}), data],  # object dtype
    ]
    for frames in bad_frames:
        relay.upstream.send_multipart(frames)
    relay.upstream.send_multipart([topic, header, data])
    relay.pump(received=1)
    assert relay.relay.malformed == len(bad_frames)
    assert relay.relay.inputs["in"].received == 1
    assert relay.downstream.poll(2000)
    msg, eos = decode(relay.downstream.recv_multipart())
    np.testing.assert_array_equal(msg.data, good.data)
    assert not eos and [t[0] for t in msg.trace] == ["source", "relay0"]


def test_a_start_no_clock_explains_is_refused_not_taken_as_a_gap(relay):
    """One frame claiming start = 10**12 is refused (reason "start"); the good frames around it all
    pass, none of them taken for a repeat."""
    t0 = time.monotonic_ns()
    starts = [0, 8, 10**12, 16, 24]
    for seq, start in enumerate(starts):
        msg = Msg(np.zeros((8, 2), np.float32), rate=200.0, start=start, t_acq=t0 + seq * 40_000_000,
                  seq=seq, trace=[["source", 1, 2]])
        relay.upstream.send_multipart(encode(b"source.out", msg))
    relay.pump(received=4)
    got = []
    while relay.downstream.poll(500):
        got.append(decode(relay.downstream.recv_multipart())[0].start)
    assert got == [0, 8, 16, 24]
    assert relay.relay.bad_reasons == {"start": 1} and relay.relay.inputs["in"].gaps == 1  # the refused frame's seq


# --- a real node process under a stream of mutated frames -------------------------------------------

_HOSTILE = [5, -1, 2**63, 1.5, float("nan"), float("inf"), "x", None, True, [], {}, ["a"], [["a", 1, "x"]],
            [[[1], 1, 2]], b"zz", "x" * 1000, [0, 2**31] * 4, [[f"hop{i}", 1, 2] for i in range(2000)]]


def _mutations(frames: list, n: int, seed: int) -> list[list]:
    """``n`` seeded mutations of one valid frame set: hostile field values, dropped or unknown
    fields, flipped / cut / grown bytes in header or payload, missing or extra frames."""
    rng = random.Random(seed)
    fields = msgpack.unpackb(frames[1])
    out = []
    for _ in range(n):
        how = rng.randrange(5)
        topic, header, payload = frames[0], frames[1], bytes(frames[2])
        if how == 0:
            header = msgpack.packb({**fields, rng.choice(sorted(fields)): rng.choice(_HOSTILE)})
        elif how == 1:
            changed = dict(fields)
            changed.pop(rng.choice(sorted(fields)))
            changed["zz" if rng.random() < 0.5 else "v"] = 1
            header = msgpack.packb(changed)
        elif how == 2:
            header = mutate_bytes(header, rng, cut=len(header), grow=16)
        elif how == 3:
            payload = mutate_bytes(payload, rng, cut=len(payload), grow=16)
        else:
            out.append([topic, header, payload, payload][:rng.choice([1, 2, 4])])
            continue
        out.append([topic, header, payload])
    return out


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def test_a_node_process_survives_and_counts_thousands_of_mutated_frames(tmp_path):
    """A real `relay` process: every frame decode() refuses is counted under malformed, every other
    one is forwarded, the process stays up with flat memory and still relays good data after."""
    ctx = zmq.Context.instance()
    control = ctx.socket(zmq.ROUTER)
    control.bind(f"ipc://{tmp_path}/ctl")
    upstream = ctx.socket(zmq.PUB)
    upstream.setsockopt(zmq.SNDHWM, 0)
    upstream.bind(f"ipc://{tmp_path}/src")
    downstream = ctx.socket(zmq.SUB)
    downstream.setsockopt(zmq.SUBSCRIBE, b"")
    downstream.setsockopt(zmq.RCVHWM, 0)
    downstream.connect(f"ipc://{tmp_path}/out")
    spec = relay_spec(tmp_path, os.getpid(), queue=100_000)  # a queue that holds every frame sent
    proc = subprocess.Popen([sys.executable, "-m", "emgflow.runner", spec])
    try:
        assert _control(control, 60)[1]["t"] == "ready"
        control.send_multipart([b"relay0", msgpack.packb({"t": "start"})])
        time.sleep(0.3)  # the node's SUB connects to our plain PUB
        rss_before = _rss_kb(proc.pid)
        good = Msg(data=np.arange(16, dtype=np.float32).reshape(2, 8), rate=200.0, trace=[["source", 1, 2]])
        valid = encode(b"source.out", good)
        frames = _mutations(valid, 3000, seed=21)
        expected_bad = expected_ok = expected_nonfinite = 0
        for mutated in frames:
            try:
                msg, eos = decode(mutated)
            except MalformedFrame:
                expected_bad += 1
            else:
                if eos:
                    continue  # an accepted end-of-stream would end the node's input: not a fault
                expected_ok += 1
                expected_nonfinite += msg.data.dtype.kind in "fc" and not np.isfinite(msg.data).all()
            upstream.send_multipart(mutated)
        stats = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (stats.get("malformed"), _received(stats)) != (expected_bad, expected_ok):
            kind, body = _control(control, 5)
            if body.get("t") == "hb":
                stats = body["stats"]["relay0"]
        assert (stats["malformed"], _received(stats)) == (expected_bad, expected_ok)
        assert stats["in"]["in"]["nonfinite"] == expected_nonfinite
        assert expected_bad > 2000 and proc.poll() is None
        assert _rss_kb(proc.pid) < rss_before + 20_000  # KiB: nothing a frame says makes the node hold more
        for _ in range(3):
            upstream.send_multipart(encode(b"source.out", good))
        forwarded = 0
        while downstream.poll(5000):
            msg, eos = decode(downstream.recv_multipart())
            forwarded += 1
            if forwarded == expected_ok - expected_nonfinite + 3:
                break
        assert forwarded == expected_ok - expected_nonfinite + 3 and np.array_equal(msg.data, good.data)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        for sock in (upstream, downstream, control):
            sock.close(0)


def _received(stats: dict) -> int | None:
    return stats["in"]["in"]["received"] if stats else None


def _control(sock, timeout_s: float) -> tuple[bytes, dict]:
    assert sock.poll(int(timeout_s * 1000)), "no word from the node process"
    ident, body = sock.recv_multipart()
    return ident, msgpack.unpackb(body)
