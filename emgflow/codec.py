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

from .message import Msg, StreamInfo

SCHEMA_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
"""The whole msgpack header (meta and trace included); the first message of a stream carries the most meta."""
MAX_PAYLOAD_BYTES = 64 << 20
"""Payload limit of an edge whose producer declares no row width (and the most any edge allows)."""
MESSAGE_S = 10.0
MESSAGE_ROWS = 4096
"""A message carries at most ``MESSAGE_S`` of its stream or ``MESSAGE_ROWS`` rows, whichever is more
(an LSL pull, a stream without a rate): the rows of an edge's payload limit."""
VALUE_BYTES = 16
"""Bytes per value in an edge's payload limit: the widest number a payload may hold (complex128)."""
MAX_TRACE_HOPS = 64
MAX_HOP_NAME = 128
MAX_NDIM = 8
_MAX_INDEX = 1 << 62
"""Largest sample index, sequence or clock value accepted: far beyond any real stream, well inside int64."""
_REQUIRED = ("v", "q", "d", "s", "r", "st", "t", "m", "tr")
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


def max_rows(rate: float | None) -> int:
    """The most rows one message of a stream at ``rate`` may carry (``MESSAGE_S``, ``MESSAGE_ROWS``)."""
    return max(MESSAGE_ROWS, math.ceil(rate * MESSAGE_S)) if rate and math.isfinite(rate) else MESSAGE_ROWS


def payload_limit(info: StreamInfo) -> int:
    """An edge's payload limit from what its producer declared: ``max_rows`` rows of ``row_values``
    (else ``channels``) values of ``VALUE_BYTES``, at most ``MAX_PAYLOAD_BYTES``; that when the
    producer declares no width. A frame over it is refused before use, so a consumer's memory is
    bounded by its stream, not by what a stranger or a broken producer sends."""
    values = info.row_values or info.channels
    if not values:
        return MAX_PAYLOAD_BYTES
    return min(MAX_PAYLOAD_BYTES, max_rows(info.rate) * values * VALUE_BYTES)


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
    raw, payload = frames[1], frames[2]  # bytes-like: len() is the size in bytes
    if len(raw) > MAX_HEADER_BYTES:
        raise MalformedFrame("size", f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    if len(payload) > max_payload:
        raise MalformedFrame("size", f"payload of {len(payload)} bytes exceeds this edge's {max_payload}")
    try:
        header = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise MalformedFrame("header", f"not msgpack: {exc}") from None
    if type(header) is not dict or header.get("v") != SCHEMA_VERSION:
        raise MalformedFrame("header", "not an emgflow v1 header")
    eos = header.get("e", False)
    try:
        if len(header) != len(_REQUIRED) + ("e" in header):
            raise KeyError("unknown")
        dtype, shape, rate, start, t_acq, seq, meta, trace = (
            header["d"], header["s"], header["r"], header["st"], header["t"], header["q"], header["m"], header["tr"])
    except KeyError:
        raise MalformedFrame("header", f"fields {sorted(map(str, header))}, expected {sorted(_REQUIRED)} (+ 'e')") from None
    data = _array(dtype, shape, payload, max_payload)
    if type(rate) not in (int, float) or not (math.isfinite(rate) and rate >= 0):
        raise MalformedFrame("numbers", f"rate must be a finite number >= 0, got {rate!r}")
    if (type(start) is not int or type(t_acq) is not int or type(seq) is not int
            or not (0 <= start < _MAX_INDEX and 0 <= t_acq < _MAX_INDEX and 0 <= seq < _MAX_INDEX)):
        raise MalformedFrame("numbers", f"start, t and q must be integers in [0, 2**62), got {start!r}, {t_acq!r}, {seq!r}")
    if type(meta) is not dict:
        raise MalformedFrame("meta", f"meta must be a map, got {type(meta).__name__}")
    _check_trace(trace)
    if type(eos) is not bool:
        raise MalformedFrame("header", f"end-of-stream flag must be a bool, got {eos!r}")
    return Msg(data, rate, start, t_acq, seq, meta, trace), eos


def _array(dtype_text: Any, shape: Any, payload: Any, max_payload: int) -> np.ndarray:
    """The payload viewed as ``shape`` of ``dtype``, which must account for every byte (numpy checks
    the dimensions and never allocates here). An empty array's other dimensions must still fit the
    edge's limit: (0, 2**40) would hold no bytes yet make a consumer allocate for 2**40 columns."""
    if type(dtype_text) is not str or len(dtype_text) > 8:
        raise MalformedFrame("dtype", f"expected a numpy type string, got {dtype_text!r:.40}")
    dtype = _dtype(dtype_text)
    if type(shape) is not list or len(shape) > MAX_NDIM:
        raise MalformedFrame("shape", f"expected a list of up to {MAX_NDIM} dimensions, got {shape!r:.80}")
    try:
        data = np.ndarray(shape, dtype, payload)
    except (TypeError, ValueError, OverflowError) as exc:
        short = all(type(n) is int and 0 <= n for n in shape) and dtype.itemsize * math.prod(shape) > len(payload)
        raise MalformedFrame("payload" if short else "shape", f"{shape!r:.80} of {dtype}: {exc}") from None
    if data.nbytes != len(payload):
        raise MalformedFrame("payload", f"{len(payload)} bytes, header says {data.nbytes}")
    if not data.size and dtype.itemsize * math.prod(n or 1 for n in shape) > max_payload:
        raise MalformedFrame("shape", f"{shape!r:.80} of {dtype} is larger than this edge's {max_payload} bytes")
    return data


def _check_trace(trace: Any) -> None:
    if type(trace) is not list or len(trace) > MAX_TRACE_HOPS:
        raise MalformedFrame("trace", f"expected a list of at most {MAX_TRACE_HOPS} hops")
    for hop in trace:
        if type(hop) is not list or len(hop) != 3:
            raise MalformedFrame("trace", f"each hop must be [name, int, int], got {hop!r:.80}")
        name, rx, tx = hop
        if type(name) is not str or len(name) > MAX_HOP_NAME or type(rx) is not int or type(tx) is not int:
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
