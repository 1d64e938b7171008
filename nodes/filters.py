"""Causal IIR filters (Butterworth band/high/low-pass, notch) as second-order sections.

The filter is designed once the input rate is known and its state (``zi``) is carried from
chunk to chunk, so a stream filtered in pieces equals ``scipy.signal.sosfilt`` over the whole
recording with the same initial state. Causal on purpose: ``filtfilt`` cannot run online.
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import numpy as np
from scipy import signal

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import StreamGuard


INITS = ("zero", "steady")


def initial_state(sos: np.ndarray, first: np.ndarray, init: str) -> np.ndarray:
    """``zi`` (sections, 2, channels) for ``sosfilt`` along axis 0.

    ``zero``: the filter starts at rest (a step transient if the signal has an offset).
    ``steady``: as if the first sample had been held forever (no start-up transient).
    """
    channels = np.asarray(first).shape[-1]
    if init == "zero":
        return np.zeros((len(sos), 2, channels))
    return signal.sosfilt_zi(sos)[:, :, None] * np.asarray(first, dtype=np.float64)[None, None, :]


def filter_offline(sos: np.ndarray, x: np.ndarray, init: str = "zero") -> np.ndarray:
    """The whole-recording reference: ``sosfilt`` along time with ``initial_state``."""
    x = np.asarray(x, dtype=np.float64)
    y, _ = signal.sosfilt(sos, x, axis=0, zi=initial_state(sos, x[0], init))
    return y


class SosFilter:
    """Stateful ``sosfilt``: feed chunks (samples x channels), get the filtered chunks back."""

    def __init__(self, sos: np.ndarray, init: str = "zero") -> None:
        self.sos, self.init = np.asarray(sos, dtype=np.float64), init
        self._zi: np.ndarray | None = None

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if not len(x):
            return x
        if self._zi is None:
            self._zi = initial_state(self.sos, x[0], self.init)
        y, self._zi = signal.sosfilt(self.sos, x, axis=0, zi=self._zi)
        return y


class IirFilterNode(Node):
    """Base of the filter nodes: subclasses name their corner params and design the SOS."""

    in_ = In(help="samples x channels")
    out = Out(help="filtered samples (float64), same rows")
    init = Param(str, "zero", choices=INITS,
                 help="initial filter state: zero (at rest) or steady (steady state of the first sample)")
    keep_input = Param(bool, False,
                       help="emit the input channels followed by the filtered ones (2C columns): a fast and a "
                            "slow envelope side by side for a model to read both time scales")
    corners: tuple[str, ...] = ()
    """Names of the params in Hz that must lie strictly between 0 and Nyquist."""

    def design(self, rate: float) -> np.ndarray:
        raise NotImplementedError

    def check_rate(self, rate: float) -> None:
        """Raise ParamError for a corner at or above Nyquist (or a stream without a rate)."""
        if not rate or rate <= 0:
            raise ParamError(self.corners[0], "a filter needs a stream with a known sampling rate")
        nyquist = rate / 2
        for name in self.corners:
            value = getattr(self, name)
            if value >= nyquist:
                raise ParamError(name, f"{name}={value:g} Hz is at or above Nyquist ({nyquist:g} Hz) "
                                       f"for a {rate:g} Hz stream")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        if info.rate:
            self.check_rate(info.rate)
        if not self.keep_input:
            return {"out": info}
        names = info.names + tuple(f"{n}_{self.kind}" for n in info.names) if info.names else None
        return {"out": StreamInfo(rate=info.rate, channels=2 * info.channels if info.channels else None, names=names)}

    def setup(self) -> None:
        self._guard = StreamGuard(self)
        self._filter: SosFilter | None = None
        self._rate = 0.0

    def process(self, msg: Msg) -> Msg | None:
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        if self._filter is None:
            self.check_rate(msg.rate)  # the graph's promise about the rate was wrong: stop loudly
            self._filter, self._rate = SosFilter(self.design(msg.rate), self.init), msg.rate
        elif msg.rate != self._rate:
            self.count("in.rate_changed")
            return None
        out = self._filter.push(data)
        if self.keep_input:
            out = np.concatenate([np.asarray(data, dtype=np.float64), out], axis=1)
        return msg.replace(data=out, start=start, trace=list(msg.trace))


class Bandpass(IirFilterNode):
    """Butterworth band-pass (causal, state kept across chunks)."""

    kind = "bandpass"
    low = Param(float, 20.0, gt=0, unit="Hz", help="lower -3 dB corner")
    high = Param(float, 450.0, gt=0, unit="Hz", help="upper -3 dB corner")
    order = Param(int, 4, ge=1, le=12, help="Butterworth order of each edge (the SOS has this many sections)")
    corners = ("low", "high")

    def check(self) -> None:
        if self.low >= self.high:
            raise ParamError("low", f"low={self.low:g} Hz must be below high={self.high:g} Hz")

    def design(self, rate: float) -> np.ndarray:
        return signal.butter(self.order, [self.low, self.high], btype="bandpass", fs=rate, output="sos")


class ButterworthEdge(IirFilterNode):
    """Base of the one-corner Butterworth filters: subclasses set ``btype`` and a default cutoff."""

    btype: ClassVar[str] = ""
    cutoff = Param(float, gt=0, unit="Hz", help="-3 dB corner")
    order = Param(int, 4, ge=1, le=12, help="Butterworth order")
    corners = ("cutoff",)

    def design(self, rate: float) -> np.ndarray:
        return signal.butter(self.order, self.cutoff, btype=self.btype, fs=rate, output="sos")


class Highpass(ButterworthEdge):
    """Butterworth high-pass (causal, state kept across chunks): removes offset and motion artefact."""

    kind = "highpass"
    btype = "highpass"
    cutoff = Param(float, 20.0, gt=0, unit="Hz", help="-3 dB corner")


class Lowpass(ButterworthEdge):
    """Butterworth low-pass (causal, state kept across chunks)."""

    kind = "lowpass"
    btype = "lowpass"
    cutoff = Param(float, 5.0, gt=0, unit="Hz", help="-3 dB corner")


class Notch(IirFilterNode):
    """Second-order IIR notch (``iirnotch``) for mains interference (causal, state kept)."""

    kind = "notch"
    freq = Param(float, 50.0, gt=0, unit="Hz", help="frequency to remove (50 Hz or 60 Hz mains)")
    q = Param(float, 30.0, gt=0, help="quality factor: freq / -3 dB bandwidth")
    corners = ("freq",)

    def design(self, rate: float) -> np.ndarray:
        b, a = signal.iirnotch(self.freq, self.q, fs=rate)
        return signal.tf2sos(b, a)
