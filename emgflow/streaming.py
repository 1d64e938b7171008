"""Streaming primitives every stock node shares: sliding windows, input checks, node bases.

Window ``k`` covers input samples ``[k*step, k*step + window)`` and is emitted as soon as its
last sample arrives. ``sliding_windows`` is the offline definition; ``SlidingWindows`` gives
exactly the same windows from a stream cut into arbitrary chunks. Both return arrays shaped
``(n_windows, window, channels)``; ``TrailingWindows`` is the causal step-1 case, one window per
input sample. ``StreamGuard`` holds the input checks every stock node shares, ``WindowedInput``
a guarded input cut into windows. Bases: ``WindowedNode`` for the nodes that reduce each window
to one output row (rms, mav, features, proportional, ...), ``RowwiseNode`` for those that map
rows to rows (select, rectify, ...). Core module: imports nothing heavier than numpy.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .message import Msg, StreamInfo
from .node import Node
from .params import Param
from .ports import In, Out


def sliding_windows(x: np.ndarray, window: int, step: int) -> np.ndarray:
    """All complete windows of ``x`` (samples x channels): ``(n_windows, window, channels)`` view."""
    x = np.asarray(x)
    if len(x) < window:
        return np.empty((0, window) + x.shape[1:], dtype=x.dtype)
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)[::step]
    return np.moveaxis(view, -1, 1)


class SlidingWindows:
    """Stateful twin of ``sliding_windows``: feed chunks, get each window once, when it completes.

    Keeps only the samples that a future window still needs, indexed by absolute sample
    number, so no window is dropped or repeated whatever the chunk sizes (including a
    ``step`` larger than ``window``, where samples between windows are skipped).
    """

    def __init__(self, window: int, step: int) -> None:
        if window < 1 or step < 1:
            raise ValueError(f"window and step must be >= 1 (got window={window}, step={step})")
        self.window, self.step = window, step
        self.next_window = 0
        """Index of the next window to complete."""
        self.samples_seen = 0
        self._tail: np.ndarray | None = None  # the newest samples a future window still needs

    def push(self, x: np.ndarray) -> np.ndarray:
        """Append ``x`` (samples x channels); return the windows it completes, oldest first.

        The first returned window has index ``next_window`` as it was before the call. The
        result may be a view of ``x`` or of internal memory: copy it to keep it past the next push.
        """
        x = np.asarray(x)
        buf = x if self._tail is None else np.concatenate([self._tail, x], axis=0)
        self.samples_seen += len(x)
        buf_start = self.samples_seen - len(buf)  # absolute index of buf[0]
        # Window k is complete once k*step + window <= samples_seen.
        n_ready = max(0, (self.samples_seen - self.window) // self.step + 1 - self.next_window)
        first = self.next_window * self.step - buf_start
        if n_ready:
            out = sliding_windows(buf[first:first + (n_ready - 1) * self.step + self.window],
                                  self.window, self.step)
        else:
            out = np.empty((0, self.window) + buf.shape[1:], dtype=buf.dtype)
        self.next_window += n_ready
        keep = min(self.next_window * self.step - buf_start, len(buf))  # beyond len: skipped samples
        self._tail = buf[keep:].copy()
        return out


class TrailingWindows:
    """The ``window`` newest samples at every input sample: one window per input row, samples
    before the stream's start counting as zero (a causal filter's zero initial state)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._windows = SlidingWindows(window, 1)
        self._primed = False

    def push(self, x: np.ndarray) -> np.ndarray:
        """``(len(x), window, channels)`` float64 windows, the k-th ending at row k of ``x``."""
        x = np.asarray(x, dtype=np.float64)
        if not self._primed:
            self._windows.push(np.zeros((self.window - 1,) + x.shape[1:]))
            self._primed = True
        return self._windows.push(x)


class StreamGuard:
    """Per-input sanity checks shared by the stock nodes: drop what cannot be processed, count why.

    Accepts 2-D numeric data (``ndim=2``, rows = samples) of a constant width. A message that
    starts before the expected index repeats rows already seen: those rows are cut (counted
    ``overlap``; a full repeat is ``duplicate``). One that starts later means rows were lost
    upstream: counted ``gap`` (in rows) and processed as if contiguous, because a node cannot
    invent the missing samples.
    """

    def __init__(self, node: Node, port: str = "in", ndim: int = 2) -> None:
        self.node, self.port, self.ndim = node, port, ndim
        self.width: int | None = None
        self.expected: int | None = None

    def accept(self, msg: Msg) -> tuple[np.ndarray, int] | None:
        """``(data, start)`` ready to process, or None when the message was dropped (and counted)."""
        data = msg.data
        if not isinstance(data, np.ndarray) or data.ndim != self.ndim or data.dtype.kind not in "biuf":
            shape = getattr(data, "shape", type(data).__name__)
            self._drop("malformed", f"expected {self.ndim}-D numeric data, got {shape}")
            return None
        if self.width is None:
            self.width = data.shape[-1]
        elif data.shape[-1] != self.width:
            self._drop("malformed", f"width changed from {self.width} to {data.shape[-1]}")
            return None
        start = msg.start
        if self.expected is not None and start != self.expected:
            if start > self.expected:
                self.node.count(f"{self.port}.gap", start - self.expected)
            else:
                seen = min(self.expected - start, len(data))
                data, start = data[seen:], start + seen
                if not len(data):
                    self.node.count(f"{self.port}.duplicate")
                    return None
                self.node.count(f"{self.port}.overlap", seen)
        self.expected = start + len(data)
        return data, start

    def _drop(self, why: str, detail: str) -> None:
        self.node.count(f"{self.port}.{why}")
        self.node.log.debug("dropped a message on %r: %s", self.port, detail)


class RowwiseNode(Node):
    """Base of the nodes that turn each checked message of one 2-D stream into as many rows
    (``start`` kept): implement ``rows(data)``; returning None drops the message."""

    in_ = In(help="samples x channels")
    out = Out(help="one row per input row")

    def rows(self, data: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def setup(self) -> None:
        self._guard = StreamGuard(self)

    def process(self, msg: Msg) -> Msg | None:
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        out = self.rows(data)
        return None if out is None else msg.replace(data=out, start=start, trace=list(msg.trace))


class WindowedInput:
    """One input of a windowed node: checked by a :class:`StreamGuard`, cut by a
    :class:`SlidingWindows` sized from the first message's rate (``node.sizes(rate)``).
    ``rows`` turns the accepted rows into the rows that are windowed (default: as they are)."""

    def __init__(self, node: "WindowedNode", port: str,
                 rows: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.node, self.port, self.rows = node, port, rows
        self.guard = StreamGuard(node, port)
        self.windows: SlidingWindows | None = None

    def push(self, msg: Msg) -> tuple[np.ndarray, int, float] | None:
        """``(windows, first_window_index, output_rate)`` completed by ``msg``, or None when the
        message was dropped (counted) or the window size cannot be known (``<port>.no_rate``)."""
        accepted = self.guard.accept(msg)
        if accepted is None:
            return None
        if self.windows is None:
            sizes = self.node.sizes(msg.rate)
            if sizes is None:
                self.node.count(f"{self.port}.no_rate")
                return None
            self.windows = SlidingWindows(*sizes)
        first = self.windows.next_window
        rows = accepted[0] if self.rows is None else self.rows(accepted[0])
        return self.windows.push(rows), first, msg.rate / self.windows.step


class WindowedNode(Node):
    """Base of nodes that turn each sliding window of their input into one output row.

    Subclasses implement ``reduce(windows) -> (n_windows, ...)``. Output ``start`` is the window
    index and the output rate is ``input rate / step``. A window is published in the call that
    delivers its last sample; a trailing incomplete window is never published (as offline).
    """

    in_ = In(help="samples x channels")
    out = Out(help="one row per window")
    window = Param(int, 40, ge=1, unit="samples", help="window length")
    step = Param(int, 8, ge=1, unit="samples", help="hop between consecutive window starts")

    def sizes(self, rate: float) -> tuple[int, int] | None:
        """(window, step) in samples for a stream of this rate; None when it cannot be known."""
        return self.window, self.step

    def out_width(self, channels: int | None) -> int | None:
        """Output columns for this many input channels."""
        return channels

    def out_row_values(self, window: int, channels: int) -> int | None:
        """Values in one output row when it is more than ``out_width`` (a window, an image: the
        edge's payload limit counts them); None: a row is ``out_width`` values."""
        return None

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        sizes = self.sizes(info.rate or 0.0)  # None when a size in ms needs the unknown rate
        rate = info.rate / sizes[1] if sizes and info.rate else None
        values = self.out_row_values(sizes[0], info.channels) if sizes and info.channels else None
        return {name: StreamInfo(rate=rate, channels=self.out_width(info.channels), row_values=values)
                for name in self.outputs}

    def setup(self) -> None:
        self.windowed = WindowedInput(self, "in")

    def windows_of(self, msg: Msg) -> tuple[np.ndarray, int, float] | None:
        """``(windows, first_window_index, output_rate)`` completed by ``msg``, or None."""
        return self.windowed.push(msg)

    def process(self, msg: Msg) -> Msg | None:
        got = self.windows_of(msg)
        if got is None or not len(got[0]):
            return None
        windows, first, rate = got
        return msg.replace(data=self.reduce(windows), rate=rate, start=first,
                           meta=dict(msg.meta), trace=list(msg.trace))


def ms_to_samples(ms: float, rate: float) -> int:
    """Nearest whole number of samples for a duration (at least 1)."""
    return max(1, int(round(ms * rate / 1000.0)))
