"""Channel selection and reordering by index."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import RowwiseNode


class Select(RowwiseNode):
    """Keep the listed channels, in the listed order (repeats allowed, negative indices count from the end)."""

    kind = "select"
    in_ = In(help="samples x channels")
    out = Out(help="samples x len(channels)")
    channels = Param(list, help="0-based input channel indices, in output order, e.g. [0, 2, 1]")

    def check(self) -> None:
        if not self.channels or not all(isinstance(c, int) and not isinstance(c, bool) for c in self.channels):
            raise ParamError("channels", f"expected a non-empty list of integer indices, got {self.channels!r}")
        self._index = np.asarray(self.channels, dtype=np.intp)

    def _bad_index(self, width: int) -> int | None:
        bad = [c for c in self.channels if not -width <= c < width]
        return bad[0] if bad else None

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        names = None
        if info.channels is not None:
            bad = self._bad_index(info.channels)
            if bad is not None:
                raise ParamError("channels", f"index {bad} is out of range for a {info.channels}-channel stream")
            names = tuple(info.names[c] for c in self.channels) if info.names else None
        return {"out": StreamInfo(rate=info.rate, channels=len(self.channels), names=names)}

    def rows(self, data: np.ndarray) -> np.ndarray | None:
        if self._bad_index(data.shape[1]) is not None:
            self.count("in.malformed")
            return None
        return data[:, self._index]
