"""Stamps from another host reach a node on this host's clock: a real Runner hosting a relay whose
producer runs on host "b", told b's offset through its own control socket."""

from __future__ import annotations

import numpy as np

from emgflow import control
from emgflow.clocksync import now_ns
from emgflow.codec import decode, encode
from emgflow.message import Msg

from .test_runner_frames import InProcessRelay

OFF = 3_700_000_000  # host b's clock reads 3.7 s ahead of ours


def send_from_b(relay: InProcessRelay, seq: int) -> int:
    """A message stamped on b's clock (acquired 2 us before b's source sent it); returns that send time."""
    b_now = now_ns() + OFF
    msg = Msg(np.zeros((1, 2), np.float32), rate=200.0, start=seq, t_acq=b_now - 2000, seq=seq,
              trace=[["source", b_now - 2000, b_now]])
    relay.upstream.send_multipart(encode(b"source.out", msg))
    relay.pump(received=seq + 1)
    return b_now


def relayed(relay: InProcessRelay) -> Msg:
    assert relay.downstream.poll(2000)
    return decode(relay.downstream.recv_multipart())[0]


def tell(relay: InProcessRelay, **body) -> str | None:
    relay.control.send_multipart([b"relay0", control.pack(control.CLOCK, **body)])
    return relay.runner.read_control(2000)


def test_stamps_from_another_host_are_mapped_onto_ours(tmp_path):
    relay = InProcessRelay(tmp_path, host="b")
    try:
        b_sent = send_from_b(relay, 0)  # b's offset not known yet: passed as they are, and counted
        out = relayed(relay)
        assert out.t_acq == b_sent - 2000 and out.trace[0] == ["source", b_sent - 2000, b_sent]
        assert relay.relay.inputs["in"].unmapped == 1
        assert relay.relay.latency.e2e[0] < -3.6e6  # us: two clocks in one figure, hence the count

        assert tell(relay, offsets={"b": OFF, "c": 5}) == control.CLOCK
        b_sent = send_from_b(relay, 1)
        out = relayed(relay)
        assert out.t_acq == b_sent - 2000 - OFF
        assert out.trace[0] == ["source", b_sent - 2000 - OFF, b_sent - OFF]
        name, rx, tx = out.trace[1]
        assert name == "relay0" and b_sent - OFF <= rx <= tx <= now_ns()
        # the relay's own figure spans both hosts on one clock: the hop from b, send to receive
        assert relay.relay.latency.e2e[1] == (rx - (b_sent - OFF)) / 1000
        assert relay.relay.inputs["in"].unmapped == 1 and relay.relay.stats()["in"]["in"]["unmapped"] == 1

        # acquired before our clock's zero (b's clock read under 3.7 s): unknown here, not negative
        early = Msg(np.zeros((1, 2), np.float32), rate=200.0, start=2, t_acq=OFF - 5, seq=2, trace=[["source", 1, 2]])
        relay.upstream.send_multipart(encode(b"source.out", early))
        relay.pump(received=3)
        assert relayed(relay).t_acq == 0
    finally:
        relay.close()


def test_bad_offsets_are_refused_and_change_nothing(tmp_path):
    relay = InProcessRelay(tmp_path, host="b")
    try:
        assert tell(relay, offsets={"b": OFF}) == control.CLOCK
        for bad in ({"b": 1.5}, {"b": "3.7 s"}, {"b": 1 << 63}, {1: 5}, ["b", 5], None):
            assert tell(relay, offsets=bad) is None
        assert tell(relay) is None  # no offsets at all
        assert relay.runner.bad_control == 7 and relay.relay.inputs["in"].offset == OFF
    finally:
        relay.close()


def test_an_input_from_this_host_is_never_mapped(tmp_path):
    relay = InProcessRelay(tmp_path)
    try:
        assert tell(relay, offsets={"": 5, "b": OFF}) == control.CLOCK
        b_sent = send_from_b(relay, 0)  # stamps as they come: on this host they are ours already
        out = relayed(relay)
        assert out.t_acq == b_sent - 2000 and out.trace[0] == ["source", b_sent - 2000, b_sent]
        assert relay.relay.inputs["in"].unmapped == 0
    finally:
        relay.close()
