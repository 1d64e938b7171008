"""Taps on a real lossless XPUB: the producer never waits for a view that does not read, what the
view falls behind on is dropped oldest-first and counted, and a tapped stream decodes to exactly
what was sent (garbage counted as bad, never unpickled)."""

from __future__ import annotations

import threading
import time

import numpy as np
import zmq

from emgflow.codec import decode
from emgflow.testing import chunk
from emgflow.transport import OutputSpec, Publisher
from emgflow.view.scope import display_step
from emgflow.view.streams import Streams
from emgflow.view.tap import Tap

from ..e2e.procs import wait_for


def _publisher(ctx: zmq.Context, tmp_path, hwm: int = 10) -> Publisher:
    return Publisher(ctx, OutputSpec(endpoint=f"ipc://{tmp_path}/out", topic="x.out", subscribers=1,
                                     lossless=True, hwm=hwm))


def test_a_tap_nobody_drains_never_blocks_a_lossless_producer(tmp_path):
    ctx = zmq.Context()
    pub = _publisher(ctx, tmp_path)
    tap = Tap(ctx, pub.spec.endpoint, "x.out", queue=50)
    try:
        assert pub.wait_subscribers(time.monotonic() + 10)
        msgs = chunk(np.arange(6000, dtype=np.float32).reshape(-1, 2), [2], rate=200.0)
        for i, m in enumerate(msgs):
            m.seq = i  # the runtime numbers what a Publisher sends
        sender = threading.Thread(target=lambda: [pub.send(m) for m in msgs])
        sender.start()
        sender.join(timeout=120)  # with a SUB that stopped reading, this send loop would hang at hwm
        assert not sender.is_alive(), "the producer was blocked by the tap"
        assert wait_for(lambda: tap.received == len(msgs), 30)
        kept = tap.drain()
        assert len(kept) == 50 and tap.dropped == len(msgs) - 50
        assert [decode(f)[0].seq for f, _ in kept] == list(range(len(msgs) - 50, len(msgs)))  # the newest
    finally:
        tap.close()
        pub.close()
        ctx.term()


def test_a_tapped_stream_equals_what_was_sent_and_garbage_is_counted(tmp_path, recording_file):
    from emgflow.recordings import load

    x = load(recording_file("ninapro-db5-e1/s1/S1_E1_A1.mat")).emg[:6000]
    ctx = zmq.Context()
    pub = _publisher(ctx, tmp_path, hwm=1000)
    streams = Streams({"x.out": (pub.spec.endpoint, "x.out")})
    try:
        streams.keep({"x.out", "no.such"})
        assert set(streams.open) == {"x.out"}
        assert pub.wait_subscribers(time.monotonic() + 10)
        msgs = chunk(x, np.random.default_rng(1), rate=2048.0, max_size=40)
        for i, m in enumerate(msgs):
            m.trace, m.seq = [["source", 0, 1_000]], i
            if i == 5:
                pub.sock.send_multipart([b"x.out", b"\xc1garbage", b"123"])  # not an emgflow message
            pub.send(m)
        pub.send(msgs[0].replace(data=np.zeros((0,), np.float32), seq=len(msgs)), eos=True)
        w = streams.open["x.out"]
        assert wait_for(lambda: (streams.poll(), w.eos)[1], 30)
        _, t, y = w.scope.since(0)
        step = display_step(2048.0)
        np.testing.assert_array_equal(y, x[::step])
        assert w.counts() == {"received": len(msgs) + 2, "dropped": 0, "gaps": 0, "bad": 1, "eos": True}
        streams.keep(set())
        assert not streams.open
    finally:
        streams.close()
        pub.close()
        ctx.term()
