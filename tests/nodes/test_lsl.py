"""LSL bridge: an lsl_out -> lsl_in round trip on localhost carries a real recording unchanged,
with its acquisition times."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from emgflow.errors import ParamError
from emgflow.message import Msg, now_ns
from emgflow.recordings import load
from emgflow.testing import chunk
from emgflow.nodes.lsl import LslIn, LslOut, clock_offset

pylsl = pytest.importorskip("pylsl")


@pytest.fixture(scope="module")
def recording(data_dir):
    """4 s of the Côté-Allard Male0 hand-close recording (Myo, 8 channels, 200 Hz)."""
    return load(data_dir / "coteallard-myo-armband/PreTrainingDataset/Male0/training0/classe_12.dat").emg[:800]


def test_local_clock_is_the_now_ns_clock():
    # liblsl's local_clock is steady_clock = CLOCK_MONOTONIC on Linux: the offset is ~0 there
    assert abs(clock_offset(pylsl.local_clock)) < 1e-3


def test_round_trip_carries_data_and_acquisition_times(recording):
    name = f"emgflow-test-{uuid.uuid4().hex[:8]}"
    rate = 200.0
    msgs = chunk(recording, np.random.default_rng(0), rate=rate, max_size=12,
                 meta={"channel_names": [f"pod{i}" for i in range(8)]})
    t0 = now_ns()
    msgs = [m.replace(t_acq=t0 + round((m.end - 1) * 1e9 / rate)) for m in msgs]
    sent_time = t0 + np.round(np.arange(len(recording)) * 1e9 / rate)

    out, inlet = LslOut(stream=name, stream_type="EMG"), LslIn(stream=name, stream_type="EMG")
    out.setup()
    out.process(msgs[0])  # creates the outlet; LSL drops what is pushed before a consumer connects
    inlet.setup()
    received: list[Msg] = []
    gen = inlet.generate()
    try:
        deadline = time.monotonic() + 10
        while not inlet.connected and time.monotonic() < deadline:
            assert next(gen) is None
        assert inlet.connected, "the outlet was not resolved on localhost"
        for m in msgs[1:]:
            out.process(m)
        expected = len(recording) - msgs[1].start
        while sum(len(m.data) for m in received) < expected and time.monotonic() < deadline:
            msg = next(gen)
            if msg is not None:
                received.append(msg)
    finally:
        gen.close()
        inlet.teardown()
        out.teardown()

    data = np.concatenate([m.data for m in received])
    np.testing.assert_array_equal(data, recording[msgs[1].start:])  # identical, float32 both ways
    assert [m.start for m in received] == list(np.cumsum([0] + [len(m.data) for m in received[:-1]]))
    assert received[0].rate == rate
    assert received[0].meta["channel_names"] == [f"pod{i}" for i in range(8)]
    assert received[0].meta["lsl_name"] == name
    # the newest row's time survives the trip (time_correction on one host is within ~0.1 ms)
    t_got = np.array([m.t_acq for m in received])
    t_sent = sent_time[msgs[1].start + np.array([m.end - 1 for m in received])]
    assert np.max(np.abs(t_got - t_sent)) < 1e6
    assert out.counters["samples"] == len(recording)


def test_bad_messages_are_counted_not_fatal():
    out = LslOut(stream=f"emgflow-test-{uuid.uuid4().hex[:8]}")
    out.setup()
    try:
        out.process(Msg(data=np.zeros((4, 3), np.float32), rate=100.0))
        out.process(Msg(data=np.zeros((4, 5), np.float32), rate=100.0, start=4))  # width changed
        out.process(Msg(data=np.zeros(4, np.float32), rate=100.0, start=8))  # not (N, C)
        out.process(Msg(data=np.array([["a"] * 3]), rate=100.0, start=8))  # not numbers
    finally:
        out.teardown()
    assert out.counters["malformed"] == 3 and out.counters["samples"] == 4


def test_params():
    with pytest.raises(ParamError, match="stream"):
        LslIn()
    with pytest.raises(ParamError, match="quotes"):
        LslIn(stream="it's")
    assert LslIn(stream="a", stream_type="EMG").query() == "name='a' and type='EMG'"
    with pytest.raises(ParamError, match="stream"):
        LslOut(stream="")
