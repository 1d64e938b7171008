"""Wire format: ``[topic, msgpack header, raw array buffer]``. No zmq here, no array copy into msgpack.

``decode`` trusts nothing it receives: every header field is checked for type and range before use,
and sizes are bounded (header, trace, payload), so a stranger's frame costs a refusal, not a crash or
unbounded memory. Refusals raise :class:`MalformedFrame` with a short ``reason`` the runner counts by.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

import msgpack
import numpy as np

from .message import Msg

SCHEMA_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
"""The whole msgpack header (meta and trace included); the first message of a stream carries the most meta."""
MAX_PAYLOAD_BYTES = 64 << 20
"""Default payload limit when the caller knows no tighter one for the edge."""
MAX_TRACE_HOPS = 64
MAX_HOP_NAME = 128
MAX_NDIM = 8
_MAX_INDEX = 1 << 62
"""Largest sample index, sequence or clock value accepted: far beyond any real stream, well inside int64."""
_REQUIRED = frozenset(("v", "q", "d", "s", "r", "st", "t", "m", "tr"))
_KEYS = _REQUIRED | {"e"}
_KINDS = "biufcSU"
"""dtype kinds a payload may have: numbers, bools and fixed-width strings (never objects or records)."""

_pack = msgpack.Packer(use_bin_type=True).pack  # one reused packer: packb builds a new one per call


class MalformedFrame(ValueError):
    """A received frame set is not a valid emgflow message (dropped and counted by the runner).

    ``reason`` is one word from a small fixed set (frames, size, header, dtype, shape, payload,
    numbers, meta, trace), so counts per reason stay bounded whatever arrives.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def encode(topic: bytes, msg: Msg, *, eos: bool = False) -> list[Any]:
    """Frames for one message. The array goes out as its own buffer (made contiguous if needed)."""
    data = msg.data if msg.data.flags.c_contiguous else np.ascontiguousarray(msg.data)
    header = {
        "v": SCHEMA_VERSION,
        "q": msg.seq,
        "d": data.dtype.str,
        "s": data.shape,
        "r": msg.rate,
        "st": msg.start,
        "t": msg.t_acq,
        "m": msg.meta,
        "tr": msg.trace,
    }
    if eos:
        header["e"] = True
    return [topic, _pack(header), data]


def decode(frames: Sequence[Any], max_payload: int = MAX_PAYLOAD_BYTES) -> tuple[Msg, bool]:
    """Rebuild a Msg (array viewing the received buffer, read-only) and its end-of-stream flag.

    Raises MalformedFrame for anything that is not exactly what ``encode`` produces, or whose
    payload exceeds ``max_payload`` bytes (the caller's limit for this edge).
    """
    if len(frames) != 3:
        raise MalformedFrame("frames", f"expected 3 frames, got {len(frames)}")
    raw, payload = frames[1], memoryview(frames[2])  # any buffer: bytes, a zmq frame, an array
    if len(raw) > MAX_HEADER_BYTES:
        raise MalformedFrame("size", f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    if payload.nbytes > max_payload:
        raise MalformedFrame("size", f"payload of {payload.nbytes} bytes exceeds this edge's {max_payload}")
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise MalformedFrame("header", f"not msgpack: {exc}") from None
    if type(header) is not dict or header.get("v") != SCHEMA_VERSION:
        raise MalformedFrame("header", "not an emgflow v1 header")
    if not _REQUIRED <= header.keys() <= _KEYS:
        raise MalformedFrame("header", f"fields {sorted(map(str, header))}, expected {sorted(_REQUIRED)} (+ 'e')")
    data = _array(header["d"], header["s"], payload, max_payload)
    rate, start, t_acq, seq, meta, trace = (header[k] for k in ("r", "st", "t", "q", "m", "tr"))
    if type(rate) not in (int, float) or not (math.isfinite(rate) and rate >= 0):
        raise MalformedFrame("numbers", f"rate must be a finite number >= 0, got {rate!r}")
    for name, value in (("start", start), ("t", t_acq), ("q", seq)):
        if type(value) is not int or not 0 <= value < _MAX_INDEX:
            raise MalformedFrame("numbers", f"{name} must be an integer in [0, 2**62), got {value!r}")
    if type(meta) is not dict:
        raise MalformedFrame("meta", f"meta must be a map, got {type(meta).__name__}")
    _check_trace(trace)
    eos = header.get("e", False)
    if type(eos) is not bool:
        raise MalformedFrame("header", f"end-of-stream flag must be a bool, got {eos!r}")
    return Msg(data, rate, start, t_acq, seq, meta, trace), eos


def _array(dtype_text: Any, shape: Any, payload: memoryview, max_payload: int) -> np.ndarray:
    """The payload viewed as ``shape`` of ``dtype``, which must account for every byte. A zero
    dimension does not license huge others: each dimension must fit the edge's limit on its own."""
    if type(dtype_text) is not str or len(dtype_text) > 8:
        raise MalformedFrame("dtype", f"expected a numpy type string, got {dtype_text!r:.40}")
    dtype = _dtype(dtype_text)
    if type(shape) is not list or len(shape) > MAX_NDIM or any(type(n) is not int or n < 0 for n in shape):
        raise MalformedFrame("shape", f"expected up to {MAX_NDIM} non-negative integers, got {shape!r:.80}")
    if dtype.itemsize * math.prod(max(n, 1) for n in shape) > max_payload:
        raise MalformedFrame("shape", f"{shape!r:.80} of {dtype} is larger than this edge's {max_payload} bytes")
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes != payload.nbytes:
        raise MalformedFrame("payload", f"{payload.nbytes} bytes, header says {nbytes}")
    return np.ndarray(shape, dtype, payload)


def _check_trace(trace: Any) -> None:
    if type(trace) is not list or len(trace) > MAX_TRACE_HOPS:
        raise MalformedFrame("trace", f"expected a list of at most {MAX_TRACE_HOPS} hops")
    for hop in trace:
        if (type(hop) is not list or len(hop) != 3 or type(hop[0]) is not str or len(hop[0]) > MAX_HOP_NAME
                or type(hop[1]) is not int or type(hop[2]) is not int):
            raise MalformedFrame("trace", f"each hop must be [name (<= {MAX_HOP_NAME} chars), int, int], got {hop!r:.80}")


@lru_cache(maxsize=64)
def _dtype(text: str) -> np.dtype:
    try:
        dtype = np.dtype(text)
    except TypeError as exc:
        raise MalformedFrame("dtype", f"{text!r}: {exc}") from None
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise MalformedFrame("dtype", f"{text!r}: only fixed-size numbers, bools and strings are allowed")
    return dtype
