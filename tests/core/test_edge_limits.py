"""Each edge's payload limit comes from what its producer declared (codec.payload_limit): the plan
hands it to the consumer, every stock windowed node's largest message fits its own declaration, and
a real node process refuses and counts larger frames (bad: size) while valid ones pass."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import msgpack
import numpy as np
import pytest
import zmq

from emgflow.codec import MAX_PAYLOAD_BYTES, VALUE_BYTES, decode, encode, max_rows, payload_limit
from emgflow.errors import GraphErrors
from emgflow.graph import load_graph
from emgflow.message import Msg, StreamInfo
from emgflow.nodes.envelope import Rms
from emgflow.nodes.images import EmgImage, LongExposure, WpImage
from emgflow.nodes.window import Window
from emgflow.plan import Endpoints, plan

from .test_runner_frames import _control, _rss_kb, relay_spec

RATE = 200.0


def graph(tmp_path, text: str):
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text))
    return load_graph(path)


def test_the_plan_gives_each_edge_the_limit_of_its_stream(tmp_path):
    specs = plan(graph(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 200, channels: 8}}
          win: {type: window, inputs: {in: source.out}, params: {window: 40, step: 8}}
          rms: {type: rms, inputs: {in: source.out}, params: {window: 40, step: 8}}
          a: {type: discard, inputs: {in: win.out}}
          b: {type: discard, inputs: {in: rms.out}}
        """), Endpoints("ipc", str(tmp_path)), "ipc://ctl")
    limit = {name: specs[name].nodes[0].inputs["in"].max_payload for name in ("win", "a", "b")}
    assert limit == {"win": 4096 * 8 * VALUE_BYTES,          # 1 x 8 rows at 200 Hz: MESSAGE_ROWS rows
                     "a": 4096 * 40 * 8 * VALUE_BYTES,       # a row is a 40 x 8 window
                     "b": 4096 * 8 * VALUE_BYTES}            # a row is 8 RMS values
    assert payload_limit(StreamInfo(2048.0, 64)) == 20480 * 64 * VALUE_BYTES  # 10 s of HD-EMG
    assert payload_limit(StreamInfo(2048.0, None)) == MAX_PAYLOAD_BYTES       # no declared width
    assert payload_limit(StreamInfo(1e9, 1000)) == MAX_PAYLOAD_BYTES          # never above the cap


@pytest.mark.parametrize("node", [Window("w", window=40, step=8), Rms("r", window=40, step=8),
                                  EmgImage("e", window=15, step=15), WpImage("p"),
                                  WpImage("f", mode="framewise", window=20, step=4),
                                  LongExposure("l", window=20, step=1)], ids=lambda n: n.kind + n.name)
def test_the_largest_message_of_a_windowed_node_fits_the_limit_it_declares(node):
    """The most rows a message may carry in (MESSAGE_S or MESSAGE_ROWS) give an output within the
    declared limit, with room for float64 values where the node sends float32."""
    info = StreamInfo(RATE, 8)
    out_info = node.describe({"in": info})["out"]
    node.setup()
    rows = max_rows(RATE)
    data = np.random.default_rng(0).random((rows, 8)).astype(np.float32) + 1
    out = node.process(Msg(data, RATE, 0))
    assert out.data.nbytes * 2 <= payload_limit(out_info), (out.data.shape, out_info)
    assert len(out.data) <= max_rows(out_info.rate)


def test_a_source_declaring_more_rows_than_an_edge_carries_is_refused(tmp_path):
    with pytest.raises(GraphErrors, match=r"samples: 5000 rows per message exceed the 4096"):
        graph(tmp_path, """
            nodes:
              source: {type: pulse, params: {rate: 0.05, samples: 5000}}
              sink: {type: discard, inputs: {in: source.out}}
            """)


def test_a_node_process_refuses_and_counts_frames_over_its_edge_limit(tmp_path):
    """A real `relay` process whose input carries 1 x 8 rows at 200 Hz (a 512 KiB limit): frames just
    over it and one of 48 MiB are refused and counted (bad: size), valid frames around them pass in
    order, and the process holds no more memory after than before."""
    limit = payload_limit(StreamInfo(RATE, 8))
    ctx = zmq.Context.instance()
    control = ctx.socket(zmq.ROUTER)
    control.bind(f"ipc://{tmp_path}/ctl")
    upstream = ctx.socket(zmq.PUB)
    upstream.bind(f"ipc://{tmp_path}/src")
    downstream = ctx.socket(zmq.SUB)
    downstream.setsockopt(zmq.SUBSCRIBE, b"")
    downstream.connect(f"ipc://{tmp_path}/out")
    proc = subprocess.Popen([sys.executable, "-m", "emgflow.runner",
                             relay_spec(tmp_path, os.getpid(), queue=64, max_payload=limit)])
    try:
        assert _control(control, 60)[1]["t"] == "ready"
        control.send_multipart([b"relay0", msgpack.packb({"t": "start"})])
        time.sleep(0.3)  # the node's SUB connects to our plain PUB
        rss_before = _rss_kb(proc.pid)
        sent = 0

        def send(rows: int, dtype=np.float32) -> None:
            """The next message of the stream (a refused one takes no index from the next)."""
            nonlocal sent
            upstream.send_multipart(encode(b"source.out", Msg(np.full((rows, 8), sent, dtype), RATE, sent, seq=sent,
                                                              t_acq=time.monotonic_ns(), trace=[["source", 1, 2]])))
            sent += rows == 1

        for rows, dtype in ((1, np.float32), (limit // 64 + 1, np.float64), (1, np.float32),
                            (limit // 32 + 1, np.float32), (1, np.float32), (48 << 15, np.float32), (1, np.float32)):
            send(rows, dtype)
        stats = _stats_when(control, lambda s: s["in"]["in"]["received"] == 4)
        assert stats["malformed"] == 3 and stats["malformed_reasons"] == {"size": 3}
        assert stats["in"]["in"]["gaps"] == 0 and proc.poll() is None
        assert _rss_kb(proc.pid) < rss_before + 20_000  # KiB: no refused frame is still held
        got = []
        while len(got) < 4 and downstream.poll(5000):
            msg = decode(downstream.recv_multipart())[0]
            got.append((msg.data.shape, msg.start))
        assert got == [((1, 8), i) for i in range(4)]
    finally:
        proc.kill()
        proc.wait()
        for sock in (upstream, downstream, control):
            sock.close(0)


def _stats_when(control, ready, timeout_s: float = 30) -> dict:
    """The relay's figures from the first heartbeat for which ``ready(stats)`` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _, body = _control(control, 5)
        if body.get("t") == "hb" and ready(body["stats"]["relay0"]):
            return body["stats"]["relay0"]
    raise AssertionError(f"no heartbeat showed the expected figures: {body}")
