"""Deployment artefacts: a checkpoint exported to one ``.onnx`` file that serves with ONNX Runtime
alone. torch is then needed to train and export, not on the device: a serving process that never
imports it starts in a fraction of the time and memory (``bench/footprint.py``).

The file is the exported network plus the checkpoint's whole description (pipeline, stream, outputs,
normalisation, data, metrics; everything but the weights) as JSON under the ONNX model's metadata key
``emgflow``, so ``classify`` / ``regress`` check a stream against it exactly as against the ``.pt``
(``checkpoint.load`` reads both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint import META_KEY, load, model_from
from .serving import export_onnx


def export(checkpoint: str | Path, out: str | Path) -> Path:
    """Write ``checkpoint`` (an ``emgflow train`` file) as a deployable ``.onnx`` file."""
    import onnx

    ckpt = load(checkpoint)
    model = export_onnx(model_from(ckpt), tuple(ckpt["stream"]["shape"]), ckpt["task"] == "regress")
    proto = onnx.load_from_string(model)
    entry = proto.metadata_props.add()
    entry.key = META_KEY
    entry.value = json.dumps({k: v for k, v in ckpt.items() if k != "state_dict"}, default=_plain)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(proto.SerializeToString())
    return out


def _plain(value: Any) -> Any:
    """Tensors and numpy values in a checkpoint's description, as JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} into the model description")
