"""Serve a trained classifier checkpoint (model A or its CNN baseline) on a stream of images.

Upstream must be the checkpoint's pipeline (``emgflow eval`` prints it; e.g. ``wp_image``):
each input row is one image ``(planes, frames, channels)`` and yields one class id on ``out``
and the class probabilities on ``proba``, with the same ``start`` (window index). The model
is loaded, checked, compiled to TorchScript and warmed up in ``setup``; torch is imported only there.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.ml.checkpoint import CheckpointError, check_stream, load
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out

from .window import StreamGuard


def describe_checkpoint(node: Node, inputs: Mapping[str, StreamInfo], task: str) -> dict[str, Any]:
    """Load the node's checkpoint and check the input stream against it (ParamError on mismatch)."""
    try:
        ckpt = load(node.model)
        info = inputs.get("in", StreamInfo())
        check_stream(ckpt, rate=info.rate, channels=info.channels, task=task)
    except CheckpointError as exc:
        raise ParamError("model", str(exc)) from None
    return ckpt


def torchscript(net: Any) -> Any:
    """``net`` scripted and frozen (weights folded in as constants): the same arithmetic as eager
    PyTorch with less Python per call (``bench/bench_models.py`` times both). ``torch.compile``
    gave nothing over eager for model A and needs a C++ compiler; torch 2.13 marks ``torch.jit``
    deprecated in favour of compile/export, hence the silenced DeprecationWarning.
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.freeze(torch.jit.script(net))


class ServedModel:
    """A checkpoint's network ready for streaming inference: fixed threads, TorchScript or eager,
    warmed up, rows checked."""

    def __init__(self, path: str, task: str, threads: int, warmup: int, jit: bool = True) -> None:
        import torch

        from emgflow.ml.checkpoint import model_from

        torch.set_num_threads(threads)
        self.torch = torch
        self.ckpt = load(path)
        check_stream(self.ckpt, rate=None, task=task)
        self.net = torchscript(model_from(self.ckpt)) if jit else model_from(self.ckpt)
        self.shape = tuple(self.ckpt["stream"]["shape"])
        self.rate = float(self.ckpt["stream"]["rate"])
        self.checked_rate = False
        with torch.inference_mode():
            zeros = torch.zeros((1,) + self.shape)
            for _ in range(warmup):
                self.net(zeros, []) if task == "regress" else self.net(zeros)

    def check_rate(self, rate: float) -> None:
        """The first message's rate must match the model's (a wrong pipeline upstream stops the node)."""
        if not self.checked_rate:
            check_stream(self.ckpt, rate=rate)
            self.checked_rate = True

    def rows(self, node: Node, guard: StreamGuard, msg: Msg) -> tuple[Any, int] | None:
        """The message's rows as a float32 tensor and their start index, or None when the
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
        # a writable copy: received arrays view read-only zmq buffers, which torch warns about
        return self.torch.from_numpy(np.array(data, dtype=np.float32)), start


class Classify(Node):
    """Classify each input image with a trained checkpoint: class id on ``out``, probabilities on ``proba``."""

    kind = "classify"
    in_ = In(help="one image per row, shaped as the checkpoint's pipeline makes them")
    out = Out(help="predicted class id per row (n x 1, int64), same start indices")
    proba = Out(help="class probabilities per row (n x classes)")
    model = Param(str, help="checkpoint file written by `emgflow train`", path=True)
    threads = Param(int, 1, ge=1, help="torch intra-op threads for inference")
    warmup = Param(int, 3, ge=0, help="dummy inferences run in setup, before the first real row")
    jit = Param(bool, True, help="serve the model as frozen TorchScript (lower latency, same outputs); "
                "false runs eager PyTorch")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        ckpt = describe_checkpoint(self, inputs, "classify")
        rate = ckpt["stream"]["rate"]
        return {"out": StreamInfo(rate=rate, channels=1, names=("class",)),
                "proba": StreamInfo(rate=rate, channels=len(ckpt["outputs"]), names=tuple(ckpt["outputs"]))}

    def setup(self) -> None:
        self._served = ServedModel(self.model, "classify", self.threads, self.warmup, self.jit)
        self._guard = StreamGuard(self, ndim=len(self._served.shape) + 1)
        self._meta = {"classes": list(self._served.ckpt["outputs"])}

    def process(self, msg: Msg) -> dict[str, Msg] | None:
        served = self._served
        accepted = served.rows(self, self._guard, msg)
        if accepted is None:
            return None
        rows, start = accepted
        torch = served.torch
        with torch.inference_mode():
            # one row at a time: the batch-1 graph warmed up in setup; each new batch size would cost
            # TorchScript's profiling executor a re-specialisation (2-3.5 ms, measured) mid-stream
            logits = torch.cat([served.net(rows[i:i + 1]) for i in range(len(rows))])
            proba = torch.softmax(logits, dim=1).numpy()
        classes = proba.argmax(axis=1).astype(np.int64)[:, None]
        meta = {**msg.meta, **self._meta}
        return {"out": msg.replace(data=classes, start=start, meta=meta, trace=list(msg.trace)),
                "proba": msg.replace(data=proba, start=start, meta=dict(meta), trace=list(msg.trace))}
