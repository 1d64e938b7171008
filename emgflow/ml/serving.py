"""A checkpoint's network compiled for streaming: one row at a time, on a fixed number of threads.

Three engines give the same outputs (to float rounding; tested) at different costs per row
(``bench/bench_models.py``, one thread, DB1 model A):

- ``onnx``: exported with ``torch.onnx.export`` (the dynamo exporter) and run by ONNX Runtime;
  the fastest for model A by far (its per-call overhead is a fraction of PyTorch's). A model
  exported ahead of time (``emgflow export``, ``emgflow.ml.deploy``) runs with no torch at all.
- ``torchscript``: scripted and frozen. torch 2.13 marks ``torch.jit`` deprecated in favour of
  compile/export, hence the silenced DeprecationWarning; ``torch.compile`` gave nothing over
  eager for model A and needs a C++ compiler, so it is not offered.
- ``eager``: plain PyTorch, the reference.

Rows run at batch 1 whatever the message size: every engine is warmed up on that shape, and
TorchScript's profiling executor re-specialises (2-3.5 ms, measured) on each new batch size.
Recurrent networks (model B) take the state they returned last (``None`` to start, or after a
reset) and return the new one.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from typing import Any, Callable

import numpy as np

ENGINES = ("onnx", "torchscript", "eager")
ONNX_MODULES = ("onnxruntime", "onnxscript")

Classifier = Callable[[np.ndarray], np.ndarray]
"""One row ``(1, *shape)`` float32 -> logits ``(1, classes)``."""
Stepper = Callable[[np.ndarray, Any], "tuple[np.ndarray, Any]"]
"""One row and the previous state (``None`` to start) -> outputs ``(1, n)`` and the new state."""


def missing_for(engine: str) -> list[str]:
    """The Python modules ``engine`` needs that are not installed (checked without importing them)."""
    needed = ONNX_MODULES if engine == "onnx" else ()
    return [m for m in needed if importlib.util.find_spec(m) is None]


def compile_net(net: Any, shape: tuple[int, ...], recurrent: bool, engine: str = "onnx",
                threads: int = 1) -> Classifier | Stepper:
    """``net`` (eval mode) ready to run rows shaped ``(1, *shape)`` with ``engine``."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    missing = missing_for(engine)
    if missing:
        raise ImportError(f"engine {engine!r} needs {', '.join(missing)} (pip install 'emgflow-rt[ml]')")
    import torch

    torch.set_num_threads(threads)
    if engine == "onnx":
        return onnx_engine(export_onnx(net, shape, recurrent), recurrent, threads)
    module = _torchscript(net) if engine == "torchscript" else net
    # torch.tensor copies the row: received arrays view read-only zmq buffers, which from_numpy warns about
    if recurrent:
        def step(x: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
            with torch.inference_mode():
                y, new = module(torch.tensor(x), state or [])
            return y.numpy(), new
        return step

    def classify(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.tensor(x)).numpy()
    return classify


def _torchscript(net: Any) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.freeze(torch.jit.script(net))


def export_onnx(net: Any, shape: tuple[int, ...], recurrent: bool) -> bytes:
    """``net`` as an ONNX model for rows ``(1, *shape)``: input ``x`` (and ``state0..``), output ``y``
    (and ``next0..``), recurrent state as separate tensors since ONNX has no lists."""
    import torch

    class Step(torch.nn.Module):
        """The recurrent net with its flat state list as separate inputs and outputs (ONNX has no lists)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
            y, new = self.net(x, list(state))
            return (y, *new)

    x = torch.zeros((1, *shape))
    zeros: list[torch.Tensor] = []
    if recurrent:
        with torch.inference_mode():
            _, first = net(x, [])  # the state's shapes; a zero state is what ``[]`` starts from
        zeros = [torch.zeros(s.shape) for s in first]
    names_in = ["x"] + [f"state{i}" for i in range(len(zeros))]
    names_out = ["y"] + [f"next{i}" for i in range(len(zeros))]
    module = Step() if recurrent else net
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it warns about every torchvision op it cannot find
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (x, *zeros), input_names=names_in, output_names=names_out,
                                        dynamo=True, verbose=False)
    finally:
        exporter_log.setLevel(level)
    return program.model_proto.SerializeToString()


def onnx_engine(model: bytes | str, recurrent: bool, threads: int = 1) -> Classifier | Stepper:
    """An exported model (bytes or an ``.onnx`` file) run by ONNX Runtime: needs no torch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    if not recurrent:
        return lambda row: session.run(None, {"x": row})[0]
    states = [i for i in session.get_inputs() if i.name != "x"]
    names = [i.name for i in states]
    start = [np.zeros(i.shape, np.float32) for i in states]

    def step(row: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        out = session.run(None, {"x": row, **dict(zip(names, state if state is not None else start))})
        return out[0], out[1:]
    return step
