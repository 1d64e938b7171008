"""Serve a trained regression checkpoint (LE-ConvMN or its LSTM baseline) on a stream of exposures.

Each input row is one long-exposure image ``(electrodes, frames)`` from the checkpoint's
pipeline (e.g. ``rms -> long_exposure``); each yields one row of outputs (joint angles or
force) in target units. The recurrent state is carried from row to row across messages, as
in training, and reset when the stream has a gap (``msg.start`` is not the expected index).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from emgflow.message import Msg, StreamInfo
from emgflow.ml.served import ServedNode
from emgflow.ports import In, Out


class Regress(ServedNode):
    """Stateful regression with a trained checkpoint: one output row (target units) per input exposure."""

    kind = "regress"
    task = "regress"
    in_ = In(help="one exposure per row, shaped as the checkpoint's pipeline makes them")
    out = Out(help="predicted targets per row (n x outputs, float32), same start indices")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        ckpt = self.checkpoint(inputs)
        return {"out": StreamInfo(rate=ckpt["stream"]["rate"], channels=len(ckpt["outputs"]),
                                  names=tuple(ckpt["outputs"]))}

    def setup(self) -> None:
        super().setup()
        ckpt = self.served.ckpt
        self._mean = np.asarray(ckpt["target_mean"], dtype=np.float32)
        self._std = np.asarray(ckpt["target_std"], dtype=np.float32)
        self._state: Any = None  # the engine's recurrent state; None starts from zeros
        self._expected: int | None = None
        self._meta = {"outputs": list(ckpt["outputs"])}

    def process(self, msg: Msg) -> Msg | None:
        gap = self._expected is not None and msg.start > self._expected
        accepted = self.rows(msg)
        if accepted is None:
            return None
        rows, start = accepted
        if gap:
            self._state = None  # rows were lost upstream: the memory no longer matches the stream
            self.count("state_reset")
        self._expected = start + len(rows)
        out = np.empty((len(rows), len(self._mean)), dtype=np.float32)
        for i in range(len(rows)):
            y, self._state = self.served.run(rows[i:i + 1], self._state)
            out[i] = y[0]
        return msg.replace(data=out * self._std + self._mean, start=start, meta={**msg.meta, **self._meta},
                           trace=list(msg.trace))
