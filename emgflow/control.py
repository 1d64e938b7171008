"""The control channel between the supervisor and its node processes: every kind in one place.

Process -> supervisor: ``hb`` (per-node stats and stalls, from a thread of its own), ``ready`` (every hosted node set up, every consumer
connected), ``done`` (one hosted node finished: final stats and latency), ``error`` (a hosted node raised:
its name and traceback). Supervisor -> process: ``start``, ``stop`` (first the sources, then the rest),
``exit`` (every consumer has finished: the process may close its sockets), ``clock`` (``offsets``:
host -> that host's clock minus this one's, in ns, for inputs from other hosts; see clocksync).
Frames are msgpack maps ``{"t": kind, ...}``; anything else is refused with ``ControlError``.
"""

from __future__ import annotations

from typing import Any

import msgpack

HB, READY, DONE, ERROR = "hb", "ready", "done", "error"
START, STOP, EXIT, CLOCK = "start", "stop", "exit", "clock"
FROM_PROCESS = frozenset({HB, READY, DONE, ERROR})
TO_PROCESS = frozenset({START, STOP, EXIT, CLOCK})
MAX_BYTES = 16 << 20  # a heartbeat with a latency export is far smaller; more is not ours
BEAT = ":hb"          # the heartbeat thread's socket: the process name with this suffix


class ControlError(ValueError):
    """A control frame that is not one of ours (counted and dropped by the receiver)."""


def pack(kind: str, **body: Any) -> bytes:
    return msgpack.packb({"t": kind, **body}, use_bin_type=True)


def unpack(frame: bytes, kinds: frozenset[str]) -> dict[str, Any]:
    """The message in ``frame`` if it is a known kind for this direction, else ``ControlError``."""
    if len(frame) > MAX_BYTES:
        raise ControlError(f"control frame of {len(frame)} bytes")
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ControlError(f"not msgpack: {type(exc).__name__}") from None
    if not isinstance(msg, dict) or msg.get("t") not in kinds:
        raise ControlError("not a control message of this channel")
    return msg
