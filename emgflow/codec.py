"""Wire format: ``[topic, msgpack header, raw array buffer]``. No zmq here, no array copy into msgpack."""

from __future__ import annotations

from typing import Any, Sequence

from functools import lru_cache

import msgpack
import numpy as np

from .message import Msg

SCHEMA_VERSION = 1
_MAX_META_BYTES = 1 << 20


_pack = msgpack.Packer(use_bin_type=True).pack  # one reused packer: packb builds a new one per call


class MalformedFrame(ValueError):
    """A received frame set is not a valid emgflow message (dropped and counted by the runner)."""


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


def decode(frames: Sequence[bytes]) -> tuple[Msg, bool]:
    """Rebuild a Msg (array viewing the received buffer, read-only) and its end-of-stream flag.

    Raises MalformedFrame for anything that is not exactly what ``encode`` produces.
    """
    if len(frames) != 3:
        raise MalformedFrame(f"expected 3 frames, got {len(frames)}")
    try:
        header = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise MalformedFrame(f"header is not msgpack: {exc}") from None
    if not isinstance(header, dict) or header.get("v") != SCHEMA_VERSION:
        raise MalformedFrame("header is not an emgflow v1 header")
    try:
        dtype = _dtype(header["d"])
        shape = header["s"]
        payload = frames[2]
        # ndarray() refuses non-integer or negative dimensions and a buffer too small (TypeError /
        # ValueError) without allocating; a payload with bytes to spare is refused just after.
        data = np.ndarray(shape, dtype, payload)
        if data.nbytes != len(payload):
            raise MalformedFrame(f"payload has {len(payload)} bytes, header says {data.nbytes}")
        meta, trace = header["m"], header["tr"]
        if type(meta) is not dict or type(trace) is not list:
            raise MalformedFrame("meta must be a map and trace a list")
        rate, start, t_acq, seq = header["r"], header["st"], header["t"], header["q"]
        if type(start) is not int or type(t_acq) is not int or type(seq) is not int or type(rate) not in (int, float):
            raise MalformedFrame("rate, start, t and q must be numbers")
        msg = Msg(data, rate, start, t_acq, seq, meta, trace)
    except MalformedFrame:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedFrame(f"bad header field: {exc!r}") from None
    return msg, bool(header.get("e", False))


@lru_cache(maxsize=64)
def _dtype(text: str) -> np.dtype:
    dtype = np.dtype(text)
    if dtype.hasobject:
        raise MalformedFrame("object arrays are not allowed")
    return dtype
