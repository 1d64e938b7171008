"""decode() refuses every frame that is not what encode() produces, with a reason, in bounded memory."""

from __future__ import annotations

import tracemalloc

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emgflow.codec import MAX_HOP_NAME, MAX_TRACE_HOPS, MalformedFrame, decode, encode
from emgflow.message import Msg

GOOD = Msg(data=np.arange(16, dtype=np.float32).reshape(2, 8), rate=200.0, start=4, t_acq=7, seq=3,
           meta={"channel_names": [f"ch{i}" for i in range(8)]}, trace=[["source", 1, 2], ["rms", 3, 4]])


def frames_with(**changes) -> list:
    topic, header, data = encode(b"source.out", GOOD)
    fields = msgpack.unpackb(header)
    fields.update(changes)
    return [topic, msgpack.packb({k: v for k, v in fields.items() if v is not _DROP}), bytes(data)]


_DROP = object()


def test_a_valid_frame_round_trips():
    msg, eos = decode(frames_with())
    np.testing.assert_array_equal(msg.data, GOOD.data)
    assert (msg.rate, msg.start, msg.t_acq, msg.seq, msg.meta, msg.trace) == \
        (GOOD.rate, GOOD.start, GOOD.t_acq, GOOD.seq, GOOD.meta, GOOD.trace)
    topic, header, data = encode(b"t", GOOD, eos=True)
    assert not eos and decode([topic, header, memoryview(data).cast("B")])[1]


@pytest.mark.parametrize("changes, reason", [
    ({"tr": 5}, "trace"), ({"tr": ["a"]}, "trace"), ({"tr": [["a", 1, "x"]]}, "trace"),
    ({"tr": [[[1], 1, 2]]}, "trace"), ({"tr": [["a", 1]]}, "trace"),
    ({"tr": [[f"hop{i}", 1, 2] for i in range(MAX_TRACE_HOPS + 1)]}, "trace"),
    ({"tr": [["x" * (MAX_HOP_NAME + 1), 1, 2]]}, "trace"),
    ({"st": -1}, "numbers"), ({"st": 1.5}, "numbers"), ({"st": 2**63}, "numbers"), ({"st": True}, "numbers"),
    ({"r": float("nan")}, "numbers"), ({"r": float("inf")}, "numbers"), ({"r": -1.0}, "numbers"),
    ({"r": "200"}, "numbers"), ({"q": None}, "numbers"), ({"t": -5}, "numbers"),
    ({"m": [1]}, "meta"), ({"e": 1}, "header"), ({"x": 1}, "header"), ({"st": _DROP}, "header"),
    ({"v": 2}, "header"), ({"d": "|O"}, "dtype"), ({"d": "V8"}, "dtype"), ({"d": "f4,i4"}, "dtype"),
    ({"d": "(2,)f4"}, "dtype"), ({"d": "U0"}, "dtype"), ({"d": 5}, "dtype"), ({"d": "nonsense"}, "dtype"),
    ({"s": [2, 9]}, "payload"), ({"s": [-2, -8]}, "shape"), ({"s": [2.0, 8]}, "shape"), ({"s": 16}, "shape"),
    ({"s": [1] * 9 + [16]}, "shape"), ({"s": [0, 2**64 - 1]}, "shape"), ({"s": [0, 2**31] * 4}, "shape"),
])
def test_bad_header_fields_are_refused_with_a_reason(changes, reason):
    with pytest.raises(MalformedFrame) as exc:
        decode(frames_with(**changes))
    assert exc.value.reason == reason, str(exc.value)


def test_sizes_are_bounded_by_the_caller_and_the_header_limit():
    topic, header, data = frames_with()
    with pytest.raises(MalformedFrame, match="exceeds this edge's 63") as exc:
        decode([topic, header, data], max_payload=63)
    assert exc.value.reason == "size"
    assert decode([topic, header, data], max_payload=64)[0].data.shape == (2, 8)
    with pytest.raises(MalformedFrame) as exc:
        decode(frames_with(m={"blob": b"x" * (2 << 20)}))
    assert exc.value.reason == "size"
    for frames in ([topic, header], [topic, header, data, data], [topic, b"\xc1", data], [topic, header, data[:10]]):
        with pytest.raises(MalformedFrame):
            decode(frames)


# --- fuzz: valid frames, mutated by the thousand ---------------------------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12)


@st.composite
def valid_frames(draw) -> list:
    dtype = draw(st.sampled_from(["<f4", "<f8", "<i2", "<i4", "|u1", "|b1"]))
    shape = draw(st.lists(st.integers(0, 6), min_size=0, max_size=3))
    trace = draw(st.lists(st.tuples(st.text(max_size=12), st.integers(0, 2**62), st.integers(0, 2**62)).map(list),
                          max_size=4))
    msg = Msg(np.zeros(shape, dtype), rate=draw(st.floats(0, 1e5)), start=draw(st.integers(0, 2**40)),
              t_acq=draw(st.integers(0, 2**62)), seq=draw(st.integers(0, 2**40)), trace=trace,
              meta=draw(st.dictionaries(st.text(max_size=5), st.integers(-2**63, 2**63) | st.text(max_size=5), max_size=3)))
    topic, header, data = encode(b"a.out", msg, eos=draw(st.booleans()))
    return [topic, header, bytes(data)]


@st.composite
def mutated_frames(draw) -> list:
    frames = draw(valid_frames())
    how = draw(st.sampled_from(["field", "drop", "bytes", "payload", "count"]))
    if how in ("field", "drop"):
        header = msgpack.unpackb(frames[1])
        key = draw(st.sampled_from(sorted(header) + ["e", "zz"]))
        if how == "drop":
            header.pop(key, None)
        else:
            header[key] = draw(_values)
        frames[1] = msgpack.packb(header, use_bin_type=True)
    elif how in ("bytes", "payload"):
        i = 1 if how == "bytes" else 2
        raw = bytearray(frames[i])
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "cut", "grow"]))
            pos = draw(st.integers(0, max(len(raw) - 1, 0)))
            if op == "flip" and raw:
                raw[pos] = draw(st.integers(0, 255))
            elif op == "cut":
                del raw[pos:]
            else:
                raw[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        frames[i] = bytes(raw)
    else:
        frames = frames[:draw(st.integers(0, 2))] + [b""] * draw(st.integers(0, 2))
    return frames


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_frames())
def test_mutated_frames_decode_or_are_refused_in_bounded_memory(frames):
    tracemalloc.start()
    try:
        msg, eos = decode(frames, max_payload=1 << 16)
    except MalformedFrame as exc:
        assert exc.reason in {"frames", "size", "header", "dtype", "shape", "payload", "numbers", "meta", "trace"}
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < sum(len(f) for f in frames) + (64 << 10)  # a view on the payload, never a copy of it
    assert msg.data.nbytes == len(frames[2]) and isinstance(eos, bool)
    assert msg.start >= 0 and msg.rate >= 0 and isinstance(msg.meta, dict)
    assert all(isinstance(h[0], str) and isinstance(h[1], int) and isinstance(h[2], int) for h in msg.trace)
