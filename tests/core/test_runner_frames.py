"""A node's runner drops and counts malformed frames and keeps going (real Runner, real sockets)."""

from __future__ import annotations

import os
import time

import msgpack
import numpy as np
import zmq

from emgflow.codec import decode, encode
from emgflow.contract import NodeRuntime, ProcessSpec
from emgflow.message import Msg
from emgflow.runner import Runner
from emgflow.transport import InputSpec, OutputSpec


def test_garbage_frames_are_counted_not_fatal(tmp_path):
    ctx = zmq.Context.instance()
    control = ctx.socket(zmq.ROUTER)
    control.bind(f"ipc://{tmp_path}/ctl")
    upstream = ctx.socket(zmq.PUB)
    upstream.bind(f"ipc://{tmp_path}/src")
    downstream = ctx.socket(zmq.SUB)
    downstream.setsockopt(zmq.SUBSCRIBE, b"")
    downstream.connect(f"ipc://{tmp_path}/out")
    node = NodeRuntime(name="relay0", cls="emgflow.nodes.relay:Relay", params={},
                       outputs={"out": OutputSpec(f"ipc://{tmp_path}/out", "relay0.out", subscribers=1, lossless=False)},
                       inputs={"in": InputSpec(f"ipc://{tmp_path}/src", "source.out", policy="all", queue=64)})
    spec = ProcessSpec.from_json(ProcessSpec("relay0", [node], f"ipc://{tmp_path}/ctl", os.getppid()).to_json())
    runner = Runner(spec)
    relay = runner.hosted["relay0"]
    assert relay.outputs["out"].pub.wait_subscribers(time.monotonic() + 5)
    time.sleep(0.2)  # let the runner's SUB connect to our plain PUB
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
        upstream.send_multipart(frames)
    upstream.send_multipart([topic, header, data])
    deadline = time.monotonic() + 5
    while relay.inputs["in"].received < 1 and time.monotonic() < deadline:
        for hosted, port in runner.poller.poll(50)[1]:
            hosted.receive(port)
    assert relay.malformed == len(bad_frames)
    assert relay.inputs["in"].received == 1
    assert downstream.poll(2000)
    msg, eos = decode(downstream.recv_multipart())
    np.testing.assert_array_equal(msg.data, good.data)
    assert not eos and [t[0] for t in msg.trace] == ["source", "relay0"]
    for sock in (upstream, downstream, control):
        sock.close(0)
    relay.close()
    runner.control.close(0)
