"""Serve a trained classifier checkpoint (model A or its CNN baseline) on a stream of images.

Upstream must be the checkpoint's pipeline (``emgflow eval`` prints it; e.g. ``wp_image``):
each input row is one image ``(planes, frames, channels)`` and yields one class id on ``out``
and the class probabilities on ``proba``, with the same ``start`` (window index). The model
is loaded, checked, compiled for its engine (``emgflow.ml.serving``) and warmed up in ``setup``;
torch is imported only there.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from scipy.special import softmax

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.ml.checkpoint import CheckpointError, check_stream, load, model_from
from emgflow.ml.serving import ENGINES, compile_net, missing_for
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import StreamGuard


def describe_checkpoint(node: Node, inputs: Mapping[str, StreamInfo], task: str) -> dict[str, Any]:
    """Load the node's checkpoint and check the input stream against it and the engine's modules
    (ParamError on a mismatch or a missing module)."""
    missing = missing_for(node.engine)
    if missing:
        raise ParamError("engine", f"{node.engine} needs {', '.join(missing)}: pip install 'emgflow-rt[ml]', "
                                   f"or engine: torchscript")
    try:
        ckpt = load(node.model)
        info = inputs.get("in", StreamInfo())
        check_stream(ckpt, rate=info.rate, channels=info.channels, task=task)
    except CheckpointError as exc:
        raise ParamError("model", str(exc)) from None
    return ckpt


class ServedModel:
    """A checkpoint's network ready for streaming inference: compiled for an engine on fixed threads,
    warmed up, rows checked."""

    def __init__(self, path: str, task: str, threads: int, warmup: int, engine: str) -> None:
        self.ckpt = load(path)
        check_stream(self.ckpt, rate=None, task=task)
        self.shape = tuple(self.ckpt["stream"]["shape"])
        self.rate = float(self.ckpt["stream"]["rate"])
        self.checked_rate = False
        self.run = compile_net(model_from(self.ckpt), self.shape, task == "regress", engine, threads)
        zeros = np.zeros((1,) + self.shape, dtype=np.float32)
        for _ in range(warmup):
            self.run(zeros, None) if task == "regress" else self.run(zeros)

    def check_rate(self, rate: float) -> None:
        """The first message's rate must match the model's (a wrong pipeline upstream stops the node)."""
        if not self.checked_rate:
            check_stream(self.ckpt, rate=rate)
            self.checked_rate = True

    def rows(self, node: Node, guard: StreamGuard, msg: Msg) -> tuple[Any, int] | None:
        """The message's rows as a float32 array and their start index, or None when the
        message is dropped (malformed or mis-shaped rows are counted on ``node``)."""
        accepted = guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        if tuple(data.shape[1:]) != self.shape:
            node.count("in.malformed")
            node.log.debug("dropped rows shaped %s; the model expects %s", data.shape[1:], self.shape)
            return None
        self.check_rate(msg.rate)
        return np.ascontiguousarray(data, dtype=np.float32), start  # a copy only when not already so


class Classify(Node):
    """Classify each input image with a trained checkpoint: class id on ``out``, probabilities on ``proba``."""

    kind = "classify"
    in_ = In(help="one image per row, shaped as the checkpoint's pipeline makes them")
    out = Out(help="predicted class id per row (n x 1, int64), same start indices")
    proba = Out(help="class probabilities per row (n x classes)")
    model = Param(str, help="checkpoint file written by `emgflow train`", path=True)
    threads = Param(int, 1, ge=1, help="intra-op threads for inference")
    warmup = Param(int, 3, ge=0, help="dummy inferences run in setup, before the first real row")
    engine = Param(str, "onnx", choices=ENGINES, help="onnx (ONNX Runtime, fastest), torchscript or eager "
                   "(plain PyTorch): same outputs, different cost per row")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        ckpt = describe_checkpoint(self, inputs, "classify")
        rate = ckpt["stream"]["rate"]
        return {"out": StreamInfo(rate=rate, channels=1, names=("class",)),
                "proba": StreamInfo(rate=rate, channels=len(ckpt["outputs"]), names=tuple(ckpt["outputs"]))}

    def setup(self) -> None:
        self._served = ServedModel(self.model, "classify", self.threads, self.warmup, self.engine)
        self._guard = StreamGuard(self, ndim=len(self._served.shape) + 1)
        self._meta = {"classes": list(self._served.ckpt["outputs"])}

    def process(self, msg: Msg) -> dict[str, Msg] | None:
        served = self._served
        accepted = served.rows(self, self._guard, msg)
        if accepted is None:
            return None
        rows, start = accepted
        logits = np.concatenate([served.run(rows[i:i + 1]) for i in range(len(rows))])  # batch 1, as warmed up
        proba = softmax(logits, axis=1).astype(np.float32, copy=False)
        classes = proba.argmax(axis=1).astype(np.int64)[:, None]
        meta = {**msg.meta, **self._meta}
        return {"out": msg.replace(data=classes, start=start, meta=meta, trace=list(msg.trace)),
                "proba": msg.replace(data=proba, start=start, meta=dict(meta), trace=list(msg.trace))}
