"""Serve a trained classifier checkpoint (model A or its CNN baseline) on a stream of images.

Upstream must be the checkpoint's pipeline (``emgflow eval`` prints it; e.g. ``wp_image``):
each input row is one image ``(planes, frames, channels)`` and yields one class id on ``out``
and the class probabilities on ``proba``, with the same ``start`` (window index). The model
is loaded, checked, compiled for its engine and warmed up in ``setup`` (``emgflow.ml.served``);
torch is imported only there.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from emgflow.message import Msg, StreamInfo
from emgflow.ml.served import ServedNode
from emgflow.ports import In, Out


class Classify(ServedNode):
    """Classify each input image with a trained checkpoint: class id on ``out``, probabilities on ``proba``."""

    kind = "classify"
    task = "classify"
    in_ = In(help="one image per row, shaped as the checkpoint's pipeline makes them")
    out = Out(help="predicted class id per row (n x 1, int64), same start indices")
    proba = Out(help="class probabilities per row (n x classes)")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        ckpt = self.checkpoint(inputs)
        rate = ckpt["stream"]["rate"]
        return {"out": StreamInfo(rate=rate, channels=1, names=("class",)),
                "proba": StreamInfo(rate=rate, channels=len(ckpt["outputs"]), names=tuple(ckpt["outputs"]))}

    def setup(self) -> None:
        super().setup()
        self._meta = {"classes": list(self.served.ckpt["outputs"])}

    def process(self, msg: Msg) -> dict[str, Msg] | None:
        accepted = self.rows(msg)
        if accepted is None:
            return None
        rows, start = accepted
        run = self.served.run
        logits = np.concatenate([run(rows[i:i + 1]) for i in range(len(rows))])  # batch 1, as warmed up
        proba = _softmax(logits).astype(np.float32, copy=False)
        classes = proba.argmax(axis=1).astype(np.int64)[:, None]
        meta = {**msg.meta, **self._meta}
        return {"out": msg.replace(data=classes, start=start, meta=meta, trace=list(msg.trace)),
                "proba": msg.replace(data=proba, start=start, meta=dict(meta), trace=list(msg.trace))}


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by each row's maximum (what scipy.special.softmax does; no scipy
    import for a serving process)."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
