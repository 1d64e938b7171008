"""The base of the nodes that serve a trained checkpoint on a stream (classify, regress).

Both load a checkpoint, check the stream against it at validation, compile it for an engine
(``emgflow.ml.serving``), warm it up in ``setup`` and take rows shaped as the checkpoint's
pipeline makes them; this is that shared part, so a new serving node adds only its outputs.
torch and onnxruntime are imported by the engines, in ``setup``; a model exported to ``.onnx``
(``emgflow.ml.deploy``) is served by ONNX Runtime without torch.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.node import Node
from emgflow.params import Param
from emgflow.streaming import StreamGuard

from .checkpoint import CheckpointError, check_stream, load, model_from
from .serving import ENGINES, compile_net, missing_for, onnx_engine


class ServedModel:
    """A checkpoint's network ready for streaming inference: compiled for an engine on fixed threads,
    warmed up, rows checked."""

    def __init__(self, path: str, task: str, threads: int, warmup: int, engine: str) -> None:
        self.ckpt = load(path)
        check_stream(self.ckpt, rate=None, task=task)
        self.shape = tuple(self.ckpt["stream"]["shape"])
        self.rate = float(self.ckpt["stream"]["rate"])
        self.checked_rate = False
        recurrent = task == "regress"
        if "deployed" in self.ckpt:  # an exported .onnx file: ONNX Runtime alone, no torch
            self.run = onnx_engine(self.ckpt["deployed"], recurrent, threads)
        else:
            self.run = compile_net(model_from(self.ckpt), self.shape, recurrent, engine, threads)
        zeros = np.zeros((1,) + self.shape, dtype=np.float32)
        for _ in range(warmup):
            self.run(zeros, None) if task == "regress" else self.run(zeros)

    def check_rate(self, rate: float) -> None:
        """The first message's rate must match the model's (a wrong pipeline upstream stops the node)."""
        if not self.checked_rate:
            check_stream(self.ckpt, rate=rate)
            self.checked_rate = True


class ServedNode(Node):
    """Base of a node serving a checkpoint for ``task``: params, validation, loading, input rows."""

    task: ClassVar[str] = ""
    """The checkpoint's task: ``classify`` or ``regress``."""

    model = Param(str, help="checkpoint written by `emgflow train` (.pt), or its `emgflow export` (.onnx: "
                            "served without torch)", path=True)
    threads = Param(int, 1, ge=1, help="intra-op threads for inference")
    warmup = Param(int, 3, ge=0, help="dummy inferences run in setup, before the first real row")
    engine = Param(str, "onnx", choices=ENGINES, help="onnx (ONNX Runtime, fastest), torchscript or eager "
                   "(plain PyTorch): same outputs, different cost per row")

    def checkpoint(self, inputs: Mapping[str, StreamInfo]) -> dict[str, Any]:
        """Load the checkpoint and check the input stream against it and the engine's modules
        (ParamError on a mismatch or a missing module); for ``describe``."""
        missing = missing_for(self.engine)
        if missing:
            raise ParamError("engine", f"{self.engine} needs {', '.join(missing)}: pip install 'emgflow-rt[ml]', "
                                       f"or engine: torchscript")
        try:
            ckpt = load(self.model)
            if "deployed" in ckpt and self.engine != "onnx":
                raise CheckpointError(f"{self.model} is an exported ONNX model: it runs with engine: onnx only")
            info = inputs.get("in", StreamInfo())
            check_stream(ckpt, rate=info.rate, channels=info.channels, task=self.task)
        except CheckpointError as exc:
            raise ParamError("model", str(exc)) from None
        return ckpt

    def setup(self) -> None:
        self.served = ServedModel(self.model, self.task, self.threads, self.warmup, self.engine)
        self._guard = StreamGuard(self, ndim=len(self.served.shape) + 1)

    def rows(self, msg: Msg) -> tuple[np.ndarray, int] | None:
        """The message's rows as a float32 array and their start index, or None when the
        message is dropped (malformed or mis-shaped rows are counted)."""
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        if tuple(data.shape[1:]) != self.served.shape:
            self.count("in.malformed")
            self.log.debug("dropped rows shaped %s; the model expects %s", data.shape[1:], self.served.shape)
            return None
        self.served.check_rate(msg.rate)
        return np.ascontiguousarray(data, dtype=np.float32), start  # a copy only when not already so
