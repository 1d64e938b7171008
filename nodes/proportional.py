"""Proportional control: one contraction-intensity value in [0, 1] per sliding window.

The metric is the channel-mean of the per-channel MAV of a window, mapped linearly from the
rest level (0) to the maximum level (1) and clipped. Each level is given as a param or
calibrated from the stream: the first ``rest_s`` seconds are rest (level = mean metric), the
``max_s`` seconds after them are strong contractions (level = ``max_percentile`` of the metric,
robust to a single spike). Windows are assigned to a phase by their last sample; the node
publishes nothing until both levels are known.
"""

from __future__ import annotations

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg
from emgflow.params import Param
from emgflow.streaming import WindowedNode

from .envelope import mav


def activation(windows: np.ndarray) -> np.ndarray:
    """Channel-mean MAV of each window: ``(n, window, channels) -> (n,)``."""
    return mav(windows).mean(axis=1)


def intensity(windows: np.ndarray, rest: float, top: float) -> np.ndarray:
    """Offline twin of the node: ``(n, window, channels) -> (n, 1)`` in [0, 1]."""
    level = (activation(windows) - rest) / (top - rest)
    return np.clip(level, 0.0, 1.0)[:, None]


class Proportional(WindowedNode):
    """Contraction intensity in [0, 1]: channel-mean MAV between calibrated rest and maximum levels."""

    kind = "proportional"
    rest = Param(float, None, nullable=True, ge=0, help="metric at rest (input units); or calibrate with rest_s")
    max = Param(float, None, nullable=True, gt=0, help="metric at full contraction (input units); or use max_s")
    rest_s = Param(float, 0.0, ge=0, unit="s", help="calibrate the rest level over the stream's first seconds")
    max_s = Param(float, 0.0, ge=0, unit="s", help="then calibrate the maximum over this many seconds of contractions")
    max_percentile = Param(float, 95.0, gt=0, le=100, help="percentile of the metric taken as the maximum level")

    def check(self) -> None:
        for level, span in (("rest", "rest_s"), ("max", "max_s")):
            if (getattr(self, level) is None) == (getattr(self, span) == 0):
                raise ParamError(level, f"give exactly one of {level} and {span} > 0")
        if self.rest is not None and self.max is not None and self.max <= self.rest:
            raise ParamError("max", f"max={self.max:g} must be above rest={self.rest:g}")

    def out_width(self, channels: int | None) -> int | None:
        return 1

    def setup(self) -> None:
        super().setup()
        self._rest, self._top = self.rest, self.max
        self._rest_seen: list[np.ndarray] = []
        self._max_seen: list[np.ndarray] = []

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return intensity(windows, self._rest, self._top)

    def process(self, msg: Msg) -> Msg | None:
        got = self.windows_of(msg)
        if got is None or not len(got[0]):
            return None
        windows, first, rate = got
        if self._top is None or self._rest is None:
            windows, first = self._calibrate(windows, first, msg.rate)
            if not len(windows):
                return None
        return msg.replace(data=self.reduce(windows), rate=rate, start=first,
                           meta=dict(msg.meta), trace=list(msg.trace))

    def _calibrate(self, windows: np.ndarray, first: int, rate: float) -> tuple[np.ndarray, int]:
        """Take the windows that fall in the calibration phases; return the ones after them."""
        win = self.windowed.windows
        last = (first + np.arange(len(windows))) * win.step + win.window - 1  # last sample of each window
        rest_end = round(self.rest_s * rate)
        max_end = rest_end + round(self.max_s * rate)
        metric = activation(windows)
        self._rest_seen.append(metric[last < rest_end])
        self._max_seen.append(metric[(last >= rest_end) & (last < max_end)])
        if self._rest is None and last[-1] >= rest_end - 1:
            self._rest = float(np.mean(self._phase(self._rest_seen, "rest_s")))
        if self._top is None and last[-1] >= max_end - 1:
            self._top = float(np.percentile(self._phase(self._max_seen, "max_s"), self.max_percentile))
        if self._rest is None or self._top is None:
            return windows[:0], first
        if self._top <= self._rest:
            raise ParamError("max_s", f"calibrated maximum {self._top:.4g} is not above the rest level "
                                      f"{self._rest:.4g}: contract harder during the max phase")
        self.log.info("calibrated: rest %.4g, max %.4g", self._rest, self._top)
        n_calib = int(np.count_nonzero(last < max_end))
        return windows[n_calib:], first + n_calib

    def _phase(self, seen: list[np.ndarray], span: str) -> np.ndarray:
        values = np.concatenate(seen)
        if not len(values):
            raise ParamError(span, f"{span}={getattr(self, span):g} s holds no complete window; make it longer")
        return values
