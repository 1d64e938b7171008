"""One complete training run: a ``TrainConfig`` in, a checkpoint dict scored on the test repetitions out.

The run cuts the recordings through its architecture's pipeline (``models``), lets the validation
repetitions choose the epoch count, retrains on every training repetition when the recipe says so
(``recipes``), and scores the kept model exactly as ``emgflow eval`` does (``evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .config import TrainConfig
from .datasets import (Subject, Windows, classification_windows, concat_windows, dataset, load_subject,
                       pipeline_rate, windows_from)
from .evaluate import evaluate
from .fit import Progress, fit_classifier, fit_regressor, target_stats
from .models import architecture, build, default_pipeline, ensemble, model_config
from .predict import predict_logits
from .recipes import DEFAULT_RECIPES, PAPER_RECIPES, recipe
from .spec import DatasetSpec


def seed_everything(seed: int) -> None:
    """Same seed, same run: torch, numpy and Python's RNGs, deterministic kernels."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def device_for(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def input_stats(x: np.ndarray, axes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std over ``axes`` of the training inputs (float64 for accuracy)."""
    x64 = x.astype(np.float64)
    return torch.tensor(x64.mean(axis=axes), dtype=torch.float32), torch.tensor(x64.std(axis=axes), dtype=torch.float32)


def fresh_model(cfg: dict[str, Any], x: np.ndarray, init: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A model whose input standardisation holds ``x``'s statistics, newly initialised or, with
    ``init`` (a state dict of the same architecture), starting from those weights."""
    net = build(cfg)
    if init is not None:
        net.load_state_dict(init)
    net.norm.set(*input_stats(x, (0, 2)))  # the new data's own scale, whatever the weights saw
    return net


def init_weights(path: str | Path, cfg: dict[str, Any], pipeline: list[dict[str, Any]],
                 outputs: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights of checkpoint ``path`` for a model of ``cfg`` fed by ``pipeline`` (refused with
    the differences named when the architecture, the feature pipeline or the outputs differ), and
    a note of where they came from for the new checkpoint."""
    ckpt = checkpoint.load(path)
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
    return ckpt["state_dict"], {"path": str(path), **{k: ckpt["data"][k] for k in ("dataset", "mode", "subjects")}}


@dataclass
class Split:
    """The windows a run trains on: ``train`` and ``val`` choose the epoch count; ``refit()`` gives every
    training repetition, validation ones included, for the refit (built only when one runs)."""

    train: Windows
    val: Windows
    refit: Callable[[], Windows]


def classification_split(subjects: Sequence[Subject], pipeline: list[dict[str, Any]], train_step: int, seed: int,
                         all_rest: bool) -> Split:
    """Dense training windows (hop ``train_step``), validation ones at the serving hop (``classification_windows``)."""
    parts = [classification_windows(s, pipeline, train_step, pipeline[-1]["step"], seed, train_all_rest=all_rest)
             for s in subjects]
    return Split(concat_windows([p["train"] for p in parts]), concat_windows([p["val"] for p in parts]),
                 partial(concat_windows, [p["fit"] for p in parts]))


def _without(ws: list[Windows], reps: Sequence[int]) -> Windows:
    return concat_windows([w.take(~np.isin(w.repetition, list(reps))) for w in ws])


def regression_split(spec: DatasetSpec, subjects: Sequence[Subject], pipeline: list[dict[str, Any]]) -> Split:
    """Every exposure of the recordings with its target, split by repetition."""
    ws = [windows_from(s.recordings, pipeline, target=spec.target, target_columns=spec.target_columns)
          for s in subjects]
    return Split(_without(ws, [*spec.test, *spec.val]), concat_windows([w.split(spec.val) for w in ws]),
                 partial(_without, ws, spec.test))


Fit = Callable[..., list[dict[str, float]]]
"""``fit(model, train, val, recipe, seed=..., progress=...)``: trains ``model`` in place, returns its history."""


def _tagged(progress: Progress | None, **tags: Any) -> Progress | None:
    """``progress`` with ``tags`` (which member, which phase) added to every report."""
    if progress is None:
        return None
    return lambda report: progress({**report, **tags})


def select_then_refit(cfg: dict[str, Any], split: Split, r: dict[str, Any], seed: int, fit: Fit,
                      init: dict[str, torch.Tensor] | None = None, progress: Progress | None = None
                      ) -> tuple[nn.Module, Windows, list[dict[str, float]]]:
    """Train with ``split.val`` choosing the epoch; with ``r["refit"]``, train a fresh model on
    ``split.refit()`` for that many epochs. Both start from ``init`` when given; their progress
    reports say ``phase``: ``select`` or ``refit``.
    Returns (model, its training windows, history; refit rows marked ``refit``)."""
    net = fresh_model(cfg, split.train.x, init)
    history = fit(net, split.train, split.val, r, seed=seed, progress=_tagged(progress, phase="select"))
    if not (r.get("refit") and len(split.val)):
        return net, split.train, history
    best_epoch = max(int(h["epoch"]) for h in history if h.get("best"))
    seed_everything(seed)
    train = split.refit()
    net = fresh_model(cfg, train.x, init)
    refit = fit(net, train, None, {**r, "epochs": best_epoch}, seed=seed, progress=_tagged(progress, phase="refit"))
    return net, train, history + [{**h, "refit": 1.0} for h in refit]


def train_members(members: int, seed: int, train_one: Callable[..., tuple[nn.Module, Windows, list]],
                  progress: Progress | None = None) -> tuple[list[nn.Module], Windows, list[dict[str, float]]]:
    """``train_one(seed + k, progress=...)`` for each member k, as if trained alone with that seed;
    returns the members, the last one's training windows, and the history (rows tagged ``member``
    when > 1). Progress reports carry ``member`` (from 1) and ``members``."""
    nets, history = [], []
    for k in range(members):
        if k:
            seed_everything(seed + k)
        net, fitted, hist = train_one(seed + k, progress=_tagged(progress, member=k + 1, members=members))
        nets.append(net)
        history += [{**h, "member": float(k)} for h in hist] if members > 1 else hist
    return nets, fitted, history


def train_model(config: TrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Train the model ``config`` describes and return its checkpoint dict, scored on the test repetitions.

    ``mode``: ``subject`` trains and tests on one subject's repetitions; ``cross`` trains on
    ``train_subjects`` (default: every other subject of the dataset; their training and validation
    repetitions) and tests on ``subject``'s test repetitions. ``members`` > 1: a seed ensemble
    (``models.ensemble``) of that many models, trained from seeds ``seed``, ``seed + 1``, ...
    ``init``: a checkpoint of the same architecture and pipeline (e.g. a ``cross`` model of other
    subjects) whose weights every training here starts from instead of a random initialisation; the
    input standardisation is still estimated on this run's data. On DB5, starting from a model of
    four other subjects lifted LE-ConvMN's CC by 0.016 over 18 runs (bench/results/training.md).
    """
    spec, arch = dataset(config.dataset), architecture(config.model)
    classify = arch.task == "classify"
    recipe_name = config.recipe or DEFAULT_RECIPES[arch.task]
    r = recipe(recipe_name, **config.recipe_overrides())
    paper = recipe_name in PAPER_RECIPES
    torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    dev = device_for(config.device)
    target = load_subject(spec, config.subject)
    if config.mode == "subject":
        train_data = [target]
    else:
        pool = config.train_subjects or [s for s in spec.subjects if s != config.subject]
        train_data = [load_subject(spec, s) for s in pool]
    pipeline = default_pipeline(spec, config.model, rate=target.rate, paper=paper, wp=config.wp,
                                wp_mode=config.wp_mode, frames=config.frames, highpass=config.highpass)
    if classify:
        split = classification_split(train_data, pipeline, config.train_step, config.seed,
                                     r.get("train_all_rest", False))
        outputs = target.class_names()
        x = split.train.x
        dims = {"n_outputs": len(outputs), "channels": x.shape[-1], "frames": x.shape[2], "planes": x.shape[1]}
        fit: Fit = partial(fit_classifier, n_classes=len(outputs), device=dev)
    else:
        split = regression_split(spec, train_data, pipeline)
        outputs = list(spec.target_names)
        x = split.train.x
        dims = {"n_outputs": split.train.target.shape[1], "channels": x.shape[1], "frames": x.shape[2],
                "step": pipeline[-1]["step"]}
        fit = partial(fit_regressor, device=dev)
    cfg = model_config(config.model, **dims, dropout=r["dropout"],
                       **arch.defaults(config.architecture_options(), paper))
    start, origin = init_weights(config.init, cfg, pipeline, outputs) if config.init else (None, None)
    nets, train, history = train_members(config.members, config.seed,
                                         partial(select_then_refit, cfg, split, r, fit=fit, init=start), progress)
    if config.members > 1:
        cfg["members"] = config.members  # what ``build`` reads back: a seed ensemble of this architecture
    net = ensemble(config.model, nets) if config.members > 1 else nets[0]
    extra: dict[str, Any] = {}
    if not classify:  # the model outputs z-scores of the targets it was last trained on
        mean, std = target_stats(train.target)
        extra = {"target_mean": mean.tolist(), "target_std": std.tolist(), "target": spec.target}
    ckpt: dict[str, Any] = {
        "task": arch.task,
        "config": cfg,
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "input": {"rate": target.rate, "channels": target.channels,
                  "channel_names": target.recordings[0].channel_names},
        "pipeline": pipeline,
        "stream": {"rate": pipeline_rate(pipeline, target.rate), "shape": list(train.x.shape[1:]),
                   "channels": cfg["channels"]},
        "outputs": outputs,
        "data": {"dataset": spec.name, "description": spec.description, "mode": config.mode,
                 "subjects": [str(s.subject) for s in train_data], "test_subject": str(config.subject),
                 "train_reps": sorted(set(np.unique(train.repetition).tolist())), "val_reps": list(spec.val),
                 "test_reps": list(spec.test), "train_rows": int(len(train)), "train_step": config.train_step,
                 **({"init": origin} if origin else {})},
        "recipe": {"name": recipe_name, **r},
        "seed": config.seed,
        "history": history,
        **extra,
    }
    metrics = evaluate(ckpt, target, device="cpu")
    if classify:  # the kept model on the windows it was trained on, dropout and noise off
        metrics["train_acc"] = float((predict_logits(net, train.x, dev).argmax(1) == train.label).mean())
    ckpt["metrics"] = {k: v for k, v in metrics.items() if k not in ("predictions", "rows", "trace")}
    return ckpt
