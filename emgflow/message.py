"""The unit of data on every edge: one numpy array plus a small header."""

from __future__ import annotations

from dataclasses import dataclass, field, replace as _dc_replace
from typing import Any

import numpy as np

from .clocksync import now_ns  # the runtime clock (clocksync: one clock across hosts)

__all__ = ["Msg", "StreamInfo", "now_ns"]


@dataclass(slots=True)
class Msg:
    """One message: ``data`` rows are samples (or windows), columns are channels.

    ``rate``: rows per second of this stream (0 for irregular event streams).
    ``start``: index of the first row in this stream, counted from the stream's first row;
    consecutive messages satisfy ``next.start == prev.start + len(prev.data)`` unless samples were lost.
    ``t_acq``: acquisition time (``now_ns()`` clock) of the newest row; 0 when unknown.
    ``seq``: per-output sequence number, set by the runtime on send.
    ``meta``: msgpack-able metadata (labels, channel names, ...).
    ``trace``: per-hop ``[node, rx_ns, tx_ns]`` stamps, appended by the runtime.
    """

    data: np.ndarray
    rate: float = 0.0
    start: int = 0
    t_acq: int = 0
    seq: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    trace: list[list[Any]] = field(default_factory=list)

    @property
    def end(self) -> int:
        """Index one past the last row: the next message should start here."""
        return self.start + (len(self.data) if self.data.ndim else 1)

    def replace(self, **changes: Any) -> "Msg":
        """A copy with some fields changed; header fields not named are kept."""
        return _dc_replace(self, **changes)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What validation knows about a stream before anything runs: its row rate and width."""

    rate: float | None = None
    channels: int | None = None
    names: tuple[str, ...] | None = None
    row_values: int | None = None
    """Values in one row when a row is more than its ``channels`` (a window, an image); None: ``channels``."""
