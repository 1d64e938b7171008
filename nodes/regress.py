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
from emgflow.ml.serving import ENGINES
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import StreamGuard

from .classify import ServedModel, describe_checkpoint


class Regress(Node):
    """Stateful regression with a trained checkpoint: one output row (target units) per input exposure."""

    kind = "regress"
    in_ = In(help="one exposure per row, shaped as the checkpoint's pipeline makes them")
    out = Out(help="predicted targets per row (n x outputs, float32), same start indices")
    model = Param(str, help="checkpoint file written by `emgflow train`", path=True)
    threads = Param(int, 1, ge=1, help="intra-op threads for inference")
    warmup = Param(int, 3, ge=0, help="dummy inferences run in setup, before the first real row")
    engine = Param(str, "onnx", choices=ENGINES, help="onnx (ONNX Runtime), torchscript or eager (plain "
                   "PyTorch): same outputs, different cost per row")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        ckpt = describe_checkpoint(self, inputs, "regress")
        return {"out": StreamInfo(rate=ckpt["stream"]["rate"], channels=len(ckpt["outputs"]),
                                  names=tuple(ckpt["outputs"]))}

    def setup(self) -> None:
        self._served = ServedModel(self.model, "regress", self.threads, self.warmup, self.engine)
        ckpt = self._served.ckpt
        self._mean = np.asarray(ckpt["target_mean"], dtype=np.float32)
        self._std = np.asarray(ckpt["target_std"], dtype=np.float32)
        self._guard = StreamGuard(self, ndim=len(self._served.shape) + 1)
        self._state: Any = None  # the engine's recurrent state; None starts from zeros
        self._expected: int | None = None
        self._meta = {"outputs": list(ckpt["outputs"])}

    def process(self, msg: Msg) -> Msg | None:
        served = self._served
        gap = self._expected is not None and msg.start > self._expected
        accepted = served.rows(self, self._guard, msg)
        if accepted is None:
            return None
        rows, start = accepted
        if gap:
            self._state = None  # rows were lost upstream: the memory no longer matches the stream
            self.count("state_reset")
        self._expected = start + len(rows)
        out = np.empty((len(rows), len(self._mean)), dtype=np.float32)
        for i in range(len(rows)):
            y, self._state = served.run(rows[i:i + 1], self._state)
            out[i] = y[0]
        return msg.replace(data=out * self._std + self._mean, start=start, meta={**msg.meta, **self._meta},
                           trace=list(msg.trace))
