"""One complete training run: a ``TrainConfig`` in, a checkpoint dict scored on the test repetitions out.

The run cuts the recordings through its architecture's pipeline (``models``), lets the validation
repetitions choose the epoch count, retrains on every training repetition when the recipe says so
(``recipes``), and scores the kept model exactly as ``emgflow eval`` does (``evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from .adapt import adapt_model, adapt_recipe, lineage, starting_point
from .config import DEFAULT_ADAPT, TrainConfig
from .datasets import (Subject, Windows, classification_windows, concat_windows, dataset, load_subject,
                       pipeline_rate, windows_from)
from .evaluate import evaluate
from .fit import Progress, fit_classifier, fit_regressor, fresh_model, tagged, target_stats
from .models import architecture, default_pipeline, ensemble, model_config
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


def select_then_refit(cfg: dict[str, Any], split: Split, r: dict[str, Any], seed: int, fit: Fit,
                      init: dict[str, torch.Tensor] | None = None, progress: Progress | None = None
                      ) -> tuple[nn.Module, Windows, list[dict[str, float]]]:
    """Train with ``split.val`` choosing the epoch; with ``r["refit"]``, train a fresh model on
    ``split.refit()`` for that many epochs. Both start from ``init`` when given; their progress
    reports say ``phase``: ``select`` or ``refit``.
    Returns (model, its training windows, history; refit rows marked ``refit``)."""
    net = fresh_model(cfg, split.train.x, init)
    history = fit(net, split.train, split.val, r, seed=seed, progress=tagged(progress, phase="select"))
    if not (r.get("refit") and len(split.val)):
        return net, split.train, history
    best_epoch = max(int(h["epoch"]) for h in history if h.get("best"))
    seed_everything(seed)
    train = split.refit()
    net = fresh_model(cfg, train.x, init)
    refit = fit(net, train, None, {**r, "epochs": best_epoch}, seed=seed, progress=tagged(progress, phase="refit"))
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
        net, fitted, hist = train_one(seed + k, progress=tagged(progress, member=k + 1, members=members))
        nets.append(net)
        history += [{**h, "member": float(k)} for h in hist] if members > 1 else hist
    return nets, fitted, history


def train_model(config: TrainConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Train the model ``config`` describes and return its checkpoint dict, scored on the test repetitions.

    ``mode``: ``subject`` trains and tests on one subject's repetitions; ``cross`` trains on
    ``train_subjects`` (default: every other subject of the dataset; their training and validation
    repetitions) and tests on ``subject``'s test repetitions. ``members`` > 1: a seed ensemble
    (``models.ensemble``) of that many models, trained from seeds ``seed``, ``seed + 1``, ...
    ``init``: a checkpoint of the same architecture and pipeline to start from, adapted to this run's
    training repetitions as ``adapt`` says (``adapt``: yesterday's model and one cycle of today's
    data); ``adapt="full"`` trains with the whole recipe from its weights instead of a random
    initialisation: on DB5, starting from a model of four other subjects lifted LE-ConvMN's CC by
    0.016 over 18 runs (bench/results/training.md). The checkpoint records what it started from.
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
    start = starting_point(config.init, cfg, pipeline, outputs) if config.init else None
    adapt = (config.adapt or DEFAULT_ADAPT) if start else None
    if start and adapt != "full":
        train = split.refit()  # one calibration cycle spares no validation repetitions
        r = adapt_recipe(r, config.epochs, config.lr)
        net, history = adapt_model(cfg, start["state_dict"], train, adapt, r, fit, config.seed, progress)
        nets = [net]
    else:
        nets, train, history = train_members(config.members, config.seed, partial(
            select_then_refit, cfg, split, r, fit=fit, init=start["state_dict"] if start else None), progress)
    if config.members > 1:
        cfg["members"] = config.members  # what ``build`` reads back: a seed ensemble of this architecture
    net = ensemble(config.model, nets) if config.members > 1 else nets[0]
    extra: dict[str, Any] = {}
    if not classify:  # the model outputs z-scores of the targets it was last trained on
        mean, std = (start["target_mean"], start["target_std"]) if adapt == "norm" else target_stats(train.target)
        extra = {"target_mean": list(map(float, mean)), "target_std": list(map(float, std)), "target": spec.target}
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
                 **({"init": lineage(config.init, start, adapt)} if start else {})},
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
