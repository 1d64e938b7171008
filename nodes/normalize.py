"""Per-channel normalisation (z-score or min-max) with statistics given, loaded or learned live.

Statistics come from exactly one place: the ``mean``/``std`` (or ``min``/``max``) params, a
``.npz`` file (``stats_file``), or a calibration phase over the first ``calibrate_s`` seconds
of the stream (then written to ``stats_file`` when one is named). During calibration the node
either publishes nothing (``during_calibration: drop``) or the raw samples (``pass``); rows
keep their sample index either way, so with ``drop`` the first output starts at the
calibration length. Samples after the calibration span, even those in the same message, are
normalised with the learned statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import StreamGuard


METHODS = ("zscore", "minmax")


@dataclass(frozen=True)
class Stats:
    """``(x - offset) / scale`` per channel; ``method`` records where offset/scale came from."""

    method: str
    offset: np.ndarray
    scale: np.ndarray

    @classmethod
    def learn(cls, x: np.ndarray, method: str) -> "Stats":
        """Statistics of ``x`` (samples x channels). A constant channel gets scale 1 (centred only)."""
        x = np.asarray(x, dtype=np.float64)
        if method == "zscore":
            offset, scale = x.mean(axis=0), x.std(axis=0)
        else:
            offset, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        return cls(method, offset, np.where(scale > 0, scale, 1.0))

    @classmethod
    def given(cls, method: str, first: list[float], second: list[float]) -> "Stats":
        """From the params: (mean, std) for zscore, (min, max) for minmax."""
        a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
        scale = b if method == "zscore" else b - a
        return cls(method, a, scale)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.offset) / self.scale

    def save(self, path: str | Path) -> None:
        np.savez(path, method=np.array(self.method), offset=self.offset, scale=self.scale)

    @classmethod
    def load(cls, path: str | Path) -> "Stats":
        with np.load(path) as f:
            return cls(str(f["method"]), np.asarray(f["offset"], np.float64), np.asarray(f["scale"], np.float64))


class Normalize(Node):
    """Per-channel z-score or min-max scaling; statistics from params, a .npz file or live calibration."""

    kind = "normalize"
    in_ = In(help="samples x channels")
    out = Out(help="normalised samples (float64), same rows")
    method = Param(str, "zscore", choices=METHODS, help="zscore: (x - mean) / std; minmax: (x - min) / (max - min)")
    mean = Param(list, None, nullable=True, help="per-channel means (zscore)")
    std = Param(list, None, nullable=True, help="per-channel standard deviations (zscore), all > 0")
    min = Param(list, None, nullable=True, help="per-channel minima (minmax)")
    max = Param(list, None, nullable=True, help="per-channel maxima (minmax), each above its minimum")
    calibrate_s = Param(float, 0.0, ge=0, unit="s", help="learn the statistics over the stream's first seconds (0: off)")
    stats_file = Param(str, None, nullable=True, path=True,
                       help=".npz holding the statistics: written after calibration, else read at start")
    during_calibration = Param(str, "drop", choices=("drop", "pass"),
                               help="while calibrating publish nothing (drop) or the raw samples (pass)")

    def check(self) -> None:
        first, second = ("mean", "std") if self.method == "zscore" else ("min", "max")
        unused = [p for p in ("mean", "std", "min", "max") if p not in (first, second) and getattr(self, p) is not None]
        if unused:
            raise ParamError(unused[0], f"not used by method {self.method!r} (give {first} and {second})")
        given = getattr(self, first) is not None or getattr(self, second) is not None
        sources = [name for name, on in (("params", given), ("calibrate_s", self.calibrate_s > 0),
                                         ("stats_file", self.stats_file is not None and self.calibrate_s == 0)) if on]
        if len(sources) != 1:
            raise ParamError("calibrate_s", "give the statistics in exactly one way: "
                             f"{first}+{second}, stats_file, or calibrate_s > 0 (got {sources or 'none'})")
        if given:
            a, b = getattr(self, first), getattr(self, second)
            if a is None or b is None or len(a) != len(b):
                raise ParamError(second, f"{first} and {second} must both be given, with one value per channel")
            self._given = Stats.given(self.method, a, b)
            if not np.all(self._given.scale > 0):
                raise ParamError(second, "every std must be > 0" if self.method == "zscore"
                                 else "every max must be above its min")
        if self.stats_file is not None and not str(self.stats_file).endswith(".npz"):
            raise ParamError("stats_file", f"must end in .npz (numpy would add it when saving): {self.stats_file}")
        if self.stats_file is not None and self.calibrate_s == 0 and not Path(self.stats_file).is_file():
            raise ParamError("stats_file", f"statistics file not found: {self.stats_file}")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        given = getattr(self, "_given", None)
        if given is not None and info.channels is not None and len(given.offset) != info.channels:
            name = "mean" if self.method == "zscore" else "min"
            raise ParamError(name, f"{len(given.offset)} values for a {info.channels}-channel stream")
        return {"out": info}

    def setup(self) -> None:
        self._guard = StreamGuard(self)
        self._stats: Stats | None = getattr(self, "_given", None)
        if self._stats is None and self.calibrate_s == 0:
            self._stats = Stats.load(self.stats_file)
            if self._stats.method != self.method:
                raise ParamError("stats_file", f"{self.stats_file} holds {self._stats.method} statistics, "
                                 f"not {self.method}")
        self._calib: list[np.ndarray] = []
        self._calib_n = 0
        self._needed: int | None = None

    def process(self, msg: Msg) -> Msg | None:
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        if self._stats is not None and data.shape[1] != len(self._stats.offset):
            self.count("in.malformed")
            return None
        raw = 0  # leading rows that went into calibration
        if self._stats is None:
            taken = self._absorb(msg.rate, data)
            if taken is None:
                return None
            raw = taken
        normalised = self._stats.apply(data[raw:]) if raw < len(data) else None
        if self.during_calibration == "pass" and raw:
            rows = data[:raw].astype(np.float64)
            rows = rows if normalised is None else np.concatenate([rows, normalised])
            return msg.replace(data=rows, start=start, trace=list(msg.trace))
        if normalised is None:
            return None
        return msg.replace(data=normalised, start=start + raw, trace=list(msg.trace))

    def _absorb(self, rate: float, data: np.ndarray) -> int | None:
        """Feed calibration rows from the head of ``data``; learn (and save) once enough arrived.

        Returns how many rows were taken, or None when the stream has no rate to time it.
        """
        if self._needed is None:
            if not rate:
                self.count("in.no_rate")
                return None
            self._needed = max(1, int(round(self.calibrate_s * rate)))
        take = min(self._needed - self._calib_n, len(data))
        self._calib.append(np.asarray(data[:take], dtype=np.float64))
        self._calib_n += take
        if self._calib_n == self._needed:
            self._stats = Stats.learn(np.concatenate(self._calib), self.method)
            self._calib = []
            if self.stats_file is not None:
                self._stats.save(self.stats_file)
            self.log.info("calibrated on %d samples", self._needed)
        return take
