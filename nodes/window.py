"""The ``window`` node: publishes the sliding windows themselves (and one label per window).

The windowing mechanism itself lives in ``emgflow.streaming``; this module adds only the node
kind and ``window_labels``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy import stats

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import WindowedInput, WindowedNode, ms_to_samples


class Window(WindowedNode):
    """Sliding windows: each output row is one window, data shaped ``(n_windows, window, channels)``.

    Give the window as ``window`` (samples) or ``window_ms``, and the hop as ``step`` or
    ``step_ms``. With the optional ``labels`` input (per-sample class ids, same sample
    indices as ``in``), the ``label`` output carries one label per window, aligned by window
    index: the label at the window's last sample, or the window's majority label
    (ties go to the smallest id).
    """

    kind = "window"
    labels = In(optional=True, help="per-sample labels (samples x 1), same start indices as in")
    label = Out(help="one label per window (n_windows x 1), same start indices as out")
    window = Param(int, None, nullable=True, ge=1, unit="samples", help="window length (or window_ms)")
    step = Param(int, None, nullable=True, ge=1, unit="samples", help="hop between windows (or step_ms)")
    window_ms = Param(float, None, nullable=True, gt=0, unit="ms", help="window length (or window)")
    step_ms = Param(float, None, nullable=True, gt=0, unit="ms", help="hop between windows (or step)")
    label_mode = Param(str, "last", choices=("last", "majority"),
                       help="label of a window: label at its last sample, or its most frequent label")

    def check(self) -> None:
        for samples, ms in (("window", "window_ms"), ("step", "step_ms")):
            if (getattr(self, samples) is None) == (getattr(self, ms) is None):
                raise ParamError(samples, f"give exactly one of {samples} (samples) and {ms}")

    def sizes(self, rate: float) -> tuple[int, int] | None:
        if (self.window_ms is not None or self.step_ms is not None) and not rate:
            return None
        window = self.window if self.window is not None else ms_to_samples(self.window_ms, rate)
        step = self.step if self.step is not None else ms_to_samples(self.step_ms, rate)
        return window, step

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        if not info.rate and (self.window_ms is not None or self.step_ms is not None):
            name = "window_ms" if self.window_ms is not None else "step_ms"
            raise ParamError(name, "a duration in ms needs an input stream with a known rate; give samples")
        out = super().describe(inputs)
        return {"out": out["out"], "label": StreamInfo(rate=out["out"].rate, channels=1)}

    def setup(self) -> None:
        super().setup()
        self._labels = WindowedInput(self, "labels")

    def out_row_values(self, window: int, channels: int) -> int:
        return window * channels

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(windows)

    def on_in(self, msg: Msg) -> dict[str, Msg] | None:
        result = self.process(msg)
        return None if result is None else {"out": result}

    def on_labels(self, msg: Msg) -> dict[str, Msg] | None:
        got = self._labels.push(msg)
        if got is None or not len(got[0]):
            return None
        windows, first, rate = got
        return {"label": msg.replace(data=window_labels(windows, self.label_mode), rate=rate, start=first,
                                     meta=dict(msg.meta), trace=list(msg.trace))}


def window_labels(windows: np.ndarray, mode: str = "last") -> np.ndarray:
    """One label per window of labels ``(n, window, 1)``: ``(n, 1)``, at the last sample or the majority."""
    if mode == "last":
        return np.ascontiguousarray(windows[:, -1, :])
    return stats.mode(windows, axis=1, keepdims=False).mode.reshape(len(windows), -1).astype(windows.dtype)
