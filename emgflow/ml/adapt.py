"""Next session without starting over: a checkpoint adapted to today's data with one short calibration cycle.

Strapped on again, an armband sits a little elsewhere and the skin conducts differently, so the
features arrive shifted and scaled. ``--adapt`` says how a run started from ``--init`` follows:

- ``norm`` re-estimates the input standardisation on the new data only (no training, instant);
- ``finetune`` (the default, measured best) trains every layer for a few epochs at a tenth of the
  recipe's learning rate, from the checkpoint's weights and normalisation;
- ``both`` re-estimates the normalisation, then fine-tunes;
- ``full`` trains with the run's whole recipe (validation picks the epoch, refit) from the weights,
  the normalisation re-estimated: for a model of other people and a full recording of a new one.

A cycle is too short to spare validation repetitions, so the fine-tune trains on every non-test
repetition for a fixed number of epochs. ``bench/cross_session.py`` measures the modes
(``bench/results/cross_session.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import checkpoint
from .datasets import Windows
from .fit import Progress, input_stats, tagged
from .models import build

ADAPT_EPOCHS = 5
"""Fine-tuning epochs over the calibration cycle, unless the run sets ``--epochs``."""
ADAPT_LR_SCALE = 0.1
"""Fine-tuning learning rate as a share of the recipe's, unless the run sets ``--lr``. A cycle is a few
windows per gesture and longer or faster fine-tuning learns them by heart: model A on myo-readings
(12 session pairs, seed 0) scored 0.805 / 0.810 / 0.790 / 0.755 with 5 epochs at 1e-4 / 5 at 3e-4
(these defaults) / 10 at 1e-3 / 15 at 3e-3. Tuning only the LSTM and attention (0.811) or only the CNN
(0.807) read like every layer (0.810), the last layer alone hardly moved (0.779, unadapted 0.779), so
every layer is tuned."""


def starting_point(path: str | Path, cfg: dict[str, Any], pipeline: list[dict[str, Any]],
                   outputs: list[str]) -> dict[str, Any]:
    """Checkpoint ``path``, refused with the differences named when its architecture (channel count
    included), feature pipeline or outputs differ from this run's, or when it is an exported model."""
    ckpt = checkpoint.load(path)
    if "deployed" in ckpt:
        raise ValueError(f"cannot start from {path}: an exported model holds no trainable weights; start from the "
                         f".pt checkpoint it was exported from")
    ignored = {"dropout"}  # a training-time choice, not part of the weights
    theirs = {k: v for k, v in ckpt["config"].items() if k not in ignored}
    ours = {k: v for k, v in cfg.items() if k not in ignored}
    faults = [f"{k}: checkpoint {theirs.get(k)!r}, this run {ours.get(k)!r}"
              for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    if ckpt["pipeline"] != pipeline:
        faults.append(f"pipeline: checkpoint {ckpt['pipeline']}, this run {pipeline}")
    if list(ckpt["outputs"]) != list(outputs):
        faults.append(f"outputs: checkpoint {ckpt['outputs']}, this run {outputs}")
    if faults:
        raise ValueError(f"cannot start from {path}: it differs from this run in " + "; ".join(faults))
    return ckpt


def lineage(path: str | Path, ckpt: dict[str, Any], mode: str) -> dict[str, Any]:
    """What a checkpoint started from ``ckpt`` records: its file, when it was written, the data it was
    trained on (and, nested, what that one started from), and how this run adapted it."""
    data = ckpt["data"]
    return {"path": str(path), "created": ckpt.get("created"), "adapt": mode,
            **{k: data[k] for k in ("dataset", "mode", "subjects", "test_subject", "train_reps")},
            **({"init": data["init"]} if "init" in data else {})}


def adapt_recipe(r: dict[str, Any], epochs: int | None, lr: float | None) -> dict[str, Any]:
    """The fine-tuning recipe: ``r`` for ``epochs`` (``ADAPT_EPOCHS``) at ``lr`` (a tenth of ``r``'s), no refit."""
    return {**r, "epochs": ADAPT_EPOCHS if epochs is None else epochs,
            "lr": r["lr"] * ADAPT_LR_SCALE if lr is None else lr, "refit": False}


def adapt_model(cfg: dict[str, Any], weights: dict[str, torch.Tensor], train: Windows, mode: str,
                r: dict[str, Any], fit: Callable[..., list[dict[str, float]]], seed: int,
                progress: Progress | None = None) -> tuple[nn.Module, list[dict[str, float]]]:
    """The model ``weights`` describe, adapted to ``train`` as ``mode`` says (``norm``, ``finetune`` or
    ``both``); returns it and the fine-tuning history (rows tagged ``adapt``; none for ``norm``)."""
    net = build(cfg)
    net.load_state_dict(weights)
    if mode in ("norm", "both"):
        net.norm.set(*input_stats(train.x, (0, 2)))
    if mode == "norm":
        return net, []
    history = fit(net, train, None, r, seed=seed, progress=tagged(progress, phase="adapt"))
    return net, [{**h, "adapt": 1.0} for h in history]
