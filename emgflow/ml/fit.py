"""The fitting loops: per-window classification (model A, CNN) and stateful regression (model B, LSTM).

Each trains a model in place as a recipe (``recipes``) says and keeps the epoch with the best
validation score (validation repetitions are carved from the training repetitions; the test
repetitions are never looked at during training).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .datasets import Windows, contiguous_runs
from .evaluate import correlation
from .models import build
from .predict import predict_logits, predict_stream
from .recipes import optimizer, set_lr

Progress = Callable[[dict[str, Any]], None]
"""Called after every epoch with its history row, and during it with ``batch`` / ``batches``; both
with ``epochs``, the planned count (regression may stop early). ``epoch`` counts from 1 in a row,
from 0 in a batch report (the epoch under way)."""


def tagged(progress: Progress | None, **tags: Any) -> Progress | None:
    """``progress`` with ``tags`` (which member, which phase) added to every report."""
    if progress is None:
        return None
    return lambda report: progress({**report, **tags})


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


# --- classification -------------------------------------------------------------------------

def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """1 / count per class, scaled so the largest weight is 1 (classes absent from training get 0)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(w / w.max(), dtype=torch.float32)


def _noisy(xb: torch.Tensor, snr_db: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise at ``snr_db`` relative to each image's per-channel signal power."""
    power = xb.pow(2).mean(dim=2, keepdim=True)
    noise = torch.randn(xb.shape, generator=gen) * torch.sqrt(power / 10 ** (snr_db / 10))
    return xb + noise.to(xb.device)


def fit_classifier(model: nn.Module, train: Windows, val: Windows | None, r: dict[str, Any], n_classes: int, *,
                   seed: int = 0, device: torch.device = torch.device("cpu"),
                   progress: Progress | None = None) -> list[dict[str, float]]:
    """Train ``model`` on ``train`` and keep the weights of the best validation-accuracy epoch
    (with no validation set: the last epoch's, where the schedule ends).

    Returns the per-epoch history: train loss / accuracy (over the epoch's batches, dropout on),
    validation loss / accuracy, learning rate.
    """
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    weight = class_weights(train.label, n_classes).to(device) if r["class_weights"] else None
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=r.get("label_smoothing", 0.0))
    val_loss_fn = nn.CrossEntropyLoss(weight=weight)
    opt = optimizer(model.parameters(), r)
    x_all = torch.from_numpy(train.x)
    y_all = torch.from_numpy(train.label)
    n, batch = len(train), r["batch"]
    steps = max(1, math.ceil(n / batch))
    history: list[dict[str, float]] = []
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(r["epochs"]):
        model.train()
        order = torch.randperm(n, generator=gen)
        total_loss, correct = 0.0, 0
        for b in range(steps):
            set_lr(opt, r, epoch, b / steps)
            idx = order[b * batch:(b + 1) * batch]
            xb, yb = x_all[idx], y_all[idx]
            if r.get("noise_snr_db"):
                xb = _noisy(xb, r["noise_snr_db"], gen)
            xb, yb = xb.to(device), yb.to(device)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            if progress is not None:
                progress({"epoch": epoch, "epochs": r["epochs"], "batch": b + 1, "batches": steps,
                          "loss": float(loss.detach())})
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": total_loss / n,
               "train_acc": correct / n}
        if val is not None and len(val):
            logits = predict_logits(model, val.x, device)
            row["val_loss"] = float(val_loss_fn(torch.from_numpy(logits).to(device),
                                                torch.from_numpy(val.label).to(device)))
            row["val_acc"] = float((logits.argmax(1) == val.label).mean())
        score = row.get("val_acc", float(epoch))
        if score > best:
            best, best_state = score, copy.deepcopy(model.state_dict())
            row["best"] = 1.0
        history.append(row)
        if progress is not None:
            progress({**row, "epochs": r["epochs"]})
    model.load_state_dict(best_state)
    return history


# --- stateful regression ------------------------------------------------------------------------

def sequence_chunks(runs: list[np.ndarray], seq: int | None, gen: torch.Generator) -> list[np.ndarray]:
    """Cut contiguous runs into training sequences of ``seq`` rows (a random phase per epoch).

    ``seq=None`` keeps every run whole (the seed's stateful pass over the recording).
    """
    if seq is None:
        return list(runs)
    out = []
    for run in runs:
        if len(run) < seq:
            continue
        phase = int(torch.randint(0, min(seq, len(run) - seq + 1), (1,), generator=gen))
        out += [run[i:i + seq] for i in range(phase, len(run) - seq + 1, seq)]
    return out


def target_stats(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std of regression targets (std floored: a constant joint stays finite)."""
    return target.mean(0), target.std(0).clip(1e-6)


def fit_regressor(model: nn.Module, train: Windows, val: Windows | None, r: dict[str, Any], *, seed: int = 0,
                  device: torch.device = torch.device("cpu"), progress: Progress | None = None
                  ) -> list[dict[str, float]]:
    """Stateful training with truncated BPTT and MSE on targets z-scored with ``train``'s ``target_stats``
(the model outputs z-scores; the checkpoint keeps the statistics to undo them).

    Each epoch cuts the contiguous training runs into sequences of ``seq`` consecutive rows
    (``None``: whole runs, the seed recipe), shuffles them and feeds ``batch`` sequences in
    parallel from a zero state; the state is detached every ``tbptt`` steps. Early stopping on
    the mean validation CC (``patience`` epochs, validation run the online way); the best
    epoch's weights are kept (with no validation set: the last epoch's).
    """
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    opt = optimizer(model.parameters(), r)
    runs = contiguous_runs(train)
    mean, std = target_stats(train.target)
    x_all, y_all = torch.from_numpy(train.x), torch.from_numpy((train.target - mean) / std)
    val_target = None if val is None else (val.target - mean) / std
    history: list[dict[str, float]] = []
    best, best_state, stale = -2.0, copy.deepcopy(model.state_dict()), 0
    for epoch in range(r["epochs"]):
        model.train()
        chunks = sequence_chunks(runs, r.get("seq"), gen)
        order = torch.randperm(len(chunks), generator=gen).tolist()
        batch = r["batch"] if r.get("seq") else 1  # whole runs differ in length: one at a time
        batches = [[chunks[i] for i in order[k:k + batch]] for k in range(0, len(order), batch)]
        total, count = 0.0, 0
        for b, group in enumerate(batches):
            set_lr(opt, r, epoch, b / len(batches))
            idx = np.stack(group)  # (batch, steps)
            state: list = []
            for t0 in range(0, idx.shape[1], r["tbptt"]):
                state = [s.detach() for s in state]
                loss = torch.zeros((), device=device)
                steps = idx[:, t0:t0 + r["tbptt"]]
                for t in range(steps.shape[1]):
                    y, state = model(x_all[steps[:, t]].to(device), state)
                    loss = loss + ((y - y_all[steps[:, t]].to(device)) ** 2).mean()
                loss = loss / steps.shape[1]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if r.get("clip"):
                    nn.utils.clip_grad_norm_(model.parameters(), r["clip"])
                opt.step()
                total += float(loss.detach()) * steps.size
                count += steps.size
            if progress is not None:
                progress({"epoch": epoch, "epochs": r["epochs"], "batch": b + 1, "batches": len(batches),
                          "loss": total / max(count, 1)})
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": total / max(count, 1)}
        if val is not None and len(val):
            pred = predict_stream(model, val, device)
            row["val_loss"] = float(np.mean((pred - val_target) ** 2))
            row["val_cc"] = float(np.mean(correlation(pred, val_target)))
        score = row.get("val_cc", float(epoch))
        if score > best:
            best, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
            row["best"] = 1.0
        else:
            stale += 1
        history.append(row)
        if progress is not None:
            progress({**row, "epochs": r["epochs"]})
        if stale >= r.get("patience", r["epochs"]):
            break
    model.load_state_dict(best_state)
    return history
