"""One-file checkpoints: weights plus everything needed to serve and audit a model.

A checkpoint is a dict of tensors and plain Python types (so ``torch.load(weights_only=True)``
reads it without unpickling code):

- ``format``: ``"emgflow-model/1"``; ``task``: ``"classify"`` or ``"regress"``;
- ``config``: the architecture (``models.model_config``); ``state_dict``: the weights, which
  include the input normalisation statistics (``norm.mean`` / ``norm.std`` buffers);
- ``input``: the raw stream the pipeline expects (``rate`` Hz, ``channels``, ``channel_names``);
- ``pipeline``: the stock node specs between that stream and the model (the serving hop);
  ``stream``: what arrives at the model (row ``rate``, ``shape`` of one row, ``channels`` =
  electrodes, the width the pipeline's nodes report);
- ``outputs``: class or joint names; ``target_mean`` / ``target_std`` (regression: the model
  predicts z-scored targets, the node de-normalises with these training statistics);
- ``data`` (dataset, subjects, repetitions of each split, description), ``recipe``, ``seed``,
  ``history`` (per-epoch figures) and ``metrics``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from emgflow.errors import EmgflowError

FORMAT = "emgflow-model/1"
META_KEY = "emgflow"  # an exported .onnx model keeps the checkpoint's description under this key
_RATE_TOLERANCE = 1e-6


class CheckpointError(EmgflowError):
    """A checkpoint file is unreadable, or does not fit the stream it is asked to serve."""

    exit_code = 2


def save(ckpt: dict[str, Any], path: str | Path) -> Path:
    """Write ``ckpt`` (format and creation time added) as one ``torch.save`` file."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {"format": FORMAT, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **ckpt}
    torch.save(out, path)
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and check its format; an exported ``.onnx``
    model (``emgflow export``) gives its description, without weights and without torch."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".onnx":
        return _load_exported(path)
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: not an emgflow model checkpoint (format {found!r}, expected {FORMAT!r})")
    return ckpt


def _load_exported(path: Path) -> dict[str, Any]:
    """An exported model's description (``emgflow export``), ``deployed`` set to its path; no torch."""
    import onnxruntime as ort

    try:
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
        ckpt = json.loads(meta.custom_metadata_map[META_KEY])
    except Exception as exc:  # onnxruntime raises its own types for a foreign or corrupt file
        raise CheckpointError(f"{path}: not an exported emgflow model ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an exported emgflow model (format {ckpt.get('format')!r})")
    return {**ckpt, "deployed": str(path)}


def model_from(ckpt: dict[str, Any]) -> Any:
    """The checkpoint's network with its weights, in eval mode, on the CPU."""
    from .models import build

    net = build(ckpt["config"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def check_stream(ckpt: dict[str, Any], *, rate: float | None, shape: tuple[int, ...] | None = None,
                 channels: int | None = None, task: str | None = None) -> None:
    """Refuse a stream the model was not trained on, naming what differs.

    ``rate``: row rate arriving at the model; ``shape``: one row's shape; ``channels``: the
    stream's electrodes (``StreamInfo.channels``). Unknown values (None) are not checked.
    """
    want = ckpt["stream"]
    problems = []
    if task is not None and ckpt["task"] != task:
        problems.append(f"it is a {ckpt['task']} model, not a {task} model")
    if channels is not None and channels != want["channels"]:
        problems.append(f"the stream has {channels} channels, the model expects {want['channels']}")
    if shape is not None and tuple(shape) != tuple(want["shape"]):
        problems.append(f"rows are shaped {tuple(shape)}, the model expects {tuple(want['shape'])}")
    if rate and abs(rate - want["rate"]) > _RATE_TOLERANCE * max(1.0, want["rate"]):
        problems.append(f"rows arrive at {rate:g} Hz, the model expects {want['rate']:g} Hz "
                        f"(input {ckpt['input']['rate']:g} Hz through {describe_pipeline(ckpt['pipeline'])})")
    if problems:
        raise CheckpointError(f"model {ckpt['config']['model']} ({ckpt['data'].get('dataset', '?')}) "
                              f"does not fit this stream: " + "; ".join(problems))


def describe_pipeline(pipeline: list[dict[str, Any]]) -> str:
    """``rms(window=20, step=2) -> emg_image(window=15, step=15)``."""
    parts = []
    for spec in pipeline:
        args = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "type")
        parts.append(f"{spec['type']}({args})")
    return " -> ".join(parts) or "(no nodes)"
