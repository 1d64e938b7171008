"""Training loops: per-window classification (model A, CNN) and stateful regression (model B, LSTM).

A *recipe* is a plain dict (optimizer, learning-rate schedule, epochs, batch, augmentation);
``RECIPES`` holds the seed papers' literal recipes and the improved ones used to reach the
project targets, and every run records the recipe it used in the checkpoint. The model kept is
the epoch with the best validation score (validation repetitions are carved from the training
repetitions; the test repetitions are never looked at during training).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .datasets import Windows

RECIPES: dict[str, dict[str, Any]] = {
    # Chen & Luo as published: SGD(0.9) lr 0.01, 30 epochs, batch 256, lr halved every epoch after 20,
    # dropout 0.5, L2 2e-4, class weights 1/count, per-image min-max images.
    "paper": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 2e-4, "epochs": 30, "batch": 256,
              "schedule": "halve_after_20", "class_weights": True, "dropout": 0.5, "noise_snr_db": None,
              "label_smoothing": 0.0},
    # Ours: AdamW with one-cycle cosine schedule, lighter dropout, noise augmentation (25 dB SNR, as
    # Tsinganos), images fed without per-image min-max (the model standardises per channel with
    # training statistics instead, which keeps the absolute activation level rest vs. movement).
    "improved": {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-3, "epochs": 40, "batch": 128,
                 "schedule": "onecycle", "class_weights": True, "dropout": 0.2, "noise_snr_db": 25.0,
                 "label_smoothing": 0.05},
    # LE-ConvMN as published: Adam lr 1e-4, MSE on z-scored targets, truncated BPTT of one step.
    "paper_b": {"optimizer": "adam", "lr": 1e-4, "weight_decay": 0.0, "epochs": 30, "streams": 1, "tbptt": 1,
                "schedule": "constant", "patience": 10},
    # Ours for model B: parallel contiguous streams, longer truncation, higher lr, cosine decay.
    "fast_b": {"optimizer": "adam", "lr": 2e-3, "weight_decay": 0.0, "epochs": 25, "streams": 16, "tbptt": 8,
               "schedule": "onecycle", "patience": 8},
}


def recipe(name: str, **overrides: Any) -> dict[str, Any]:
    """A copy of a named recipe with some entries replaced (unknown keys are refused)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    out = dict(RECIPES[name])
    unknown = set(overrides) - set(out)
    if unknown:
        raise ValueError(f"recipe {name!r} has no option(s) {sorted(unknown)}; options: {sorted(out)}")
    out.update({k: v for k, v in overrides.items() if v is not None})
    return out


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


def _optimizer(params: Any, r: dict[str, Any]) -> torch.optim.Optimizer:
    if r["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=r["lr"], momentum=r.get("momentum", 0.9), weight_decay=r["weight_decay"])
    if r["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=r["lr"], weight_decay=r["weight_decay"])
    if r["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=r["lr"], weight_decay=r["weight_decay"])
    raise ValueError(f"unknown optimizer {r['optimizer']!r} (sgd, adam, adamw)")


def _lr_factor(r: dict[str, Any], epoch: int, frac: float) -> float:
    """Learning-rate multiplier at ``epoch`` (0-based) plus ``frac`` of it."""
    kind, total = r["schedule"], r["epochs"]
    if kind == "constant":
        return 1.0
    if kind == "halve_after_20":  # seed: constant for epochs 1-20, then halved every epoch
        return 0.5 ** max(0, epoch + 1 - 20)
    if kind == "onecycle":  # linear warm-up over 10 % of training, cosine decay to 0
        t = (epoch + frac) / total
        return t / 0.1 if t < 0.1 else 0.5 * (1 + math.cos(math.pi * (t - 0.1) / 0.9))
    raise ValueError(f"unknown schedule {kind!r} (constant, halve_after_20, onecycle)")


def _set_lr(opt: torch.optim.Optimizer, r: dict[str, Any], epoch: int, frac: float) -> None:
    for group in opt.param_groups:
        group["lr"] = r["lr"] * _lr_factor(r, epoch, frac)


def input_stats(x: np.ndarray, axes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std over ``axes`` of the training inputs (float64 for accuracy)."""
    x64 = x.astype(np.float64)
    return torch.tensor(x64.mean(axis=axes), dtype=torch.float32), torch.tensor(x64.std(axis=axes), dtype=torch.float32)


Progress = Callable[[dict[str, Any]], None]
"""Called after every epoch (and during it, with ``batch``) with the current figures."""


# --- classification -------------------------------------------------------------------------

def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """1 / count per class, scaled so the largest weight is 1 (classes absent from training get 0)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.tensor(w / w.max(), dtype=torch.float32)


@torch.inference_mode()
def predict_logits(model: nn.Module, x: np.ndarray, device: torch.device, batch: int = 1024) -> np.ndarray:
    """Logits for every row of ``x`` (model put in eval mode)."""
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).to(device)).float().cpu().numpy()
           for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


def _noisy(xb: torch.Tensor, snr_db: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise at ``snr_db`` relative to each image's per-channel signal power."""
    power = xb.pow(2).mean(dim=2, keepdim=True)
    noise = torch.randn(xb.shape, generator=gen) * torch.sqrt(power / 10 ** (snr_db / 10))
    return xb + noise.to(xb.device)


def fit_classifier(model: nn.Module, train: Windows, val: Windows, r: dict[str, Any], n_classes: int, *,
                   seed: int = 0, device: torch.device = torch.device("cpu"),
                   progress: Progress | None = None) -> list[dict[str, float]]:
    """Train ``model`` on ``train`` and keep the weights of the best validation-accuracy epoch.

    Returns the per-epoch history: train loss / accuracy (over the epoch's batches, dropout on),
    validation loss / accuracy, learning rate.
    """
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    weight = class_weights(train.label, n_classes).to(device) if r["class_weights"] else None
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=r.get("label_smoothing", 0.0))
    val_loss_fn = nn.CrossEntropyLoss(weight=weight)
    opt = _optimizer(model.parameters(), r)
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
            _set_lr(opt, r, epoch, b / steps)
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
                progress({"epoch": epoch, "batch": b + 1, "batches": steps, "loss": float(loss)})
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": total_loss / n,
               "train_acc": correct / n}
        if len(val):
            logits = predict_logits(model, val.x, device)
            row["val_loss"] = float(val_loss_fn(torch.from_numpy(logits).to(device),
                                                torch.from_numpy(val.label).to(device)))
            row["val_acc"] = float((logits.argmax(1) == val.label).mean())
        score = row.get("val_acc", -row["train_loss"])
        if score > best:
            best, best_state = score, copy.deepcopy(model.state_dict())
            row["best"] = 1.0
        history.append(row)
        if progress is not None:
            progress(row)
    model.load_state_dict(best_state)
    return history


# --- stateful regression ------------------------------------------------------------------------

def contiguous_runs(w: Windows) -> list[np.ndarray]:
    """Index arrays of the runs of consecutive rows (same stream, consecutive ``index``)."""
    if not len(w):
        return []
    brk = np.flatnonzero((np.diff(w.stream) != 0) | (np.diff(w.index) != 1)) + 1
    return np.split(np.arange(len(w)), brk)


def _interleave(runs: list[np.ndarray], lanes: int, tbptt: int) -> list[list[np.ndarray]]:
    """Lay the runs end to end on ``lanes`` parallel lanes (greedy: shortest lane first).

    Returns per lane the list of its runs; the trainer resets a lane's state at each run start.
    """
    lanes = max(1, min(lanes, len(runs)))
    plan: list[list[np.ndarray]] = [[] for _ in range(lanes)]
    length = np.zeros(lanes, dtype=np.int64)
    for run in sorted(runs, key=len, reverse=True):
        k = int(np.argmin(length))
        plan[k].append(run)
        length[k] += math.ceil(len(run) / tbptt) * tbptt
    return plan


def run_stateful(model: nn.Module, x: np.ndarray, device: torch.device, state: list | None = None
                 ) -> tuple[np.ndarray, list]:
    """Outputs of a recurrent model over consecutive rows, one row at a time (the online way)."""
    model.eval()
    state = state or []
    out = []
    with torch.inference_mode():
        for row in x:
            y, state = model(torch.from_numpy(row[None]).to(device), state)
            out.append(y.float().cpu().numpy()[0])
    return (np.stack(out) if out else np.empty((0, 0), np.float32)), state


def predict_stream(model: nn.Module, w: Windows, device: torch.device) -> np.ndarray:
    """Predictions for every row, run stream by stream with state reset at each gap (like the node)."""
    out = np.zeros((len(w), 0), dtype=np.float32)
    preds = []
    for run in contiguous_runs(w):
        preds.append(_batched_stream(model, w.x[run], device))
    return np.concatenate(preds) if preds else out


@torch.inference_mode()
def _batched_stream(model: nn.Module, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Same as ``run_stateful`` (state carried row to row), without per-row Python overhead in the loop body."""
    model.eval()
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    state: list = []
    out = torch.empty((len(x), 0))
    ys = []
    for i in range(len(xt)):
        y, state = model(xt[i:i + 1], state)
        ys.append(y)
    out = torch.cat(ys).float().cpu()
    return out.numpy()


def correlation(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson CC per column (0 for a constant column)."""
    p, t = pred - pred.mean(0), true - true.mean(0)
    den = np.sqrt((p * p).sum(0) * (t * t).sum(0))
    return np.divide((p * t).sum(0), den, out=np.zeros(p.shape[1]), where=den > 0)


def fit_regressor(model: nn.Module, train: Windows, val: Windows, r: dict[str, Any], *, seed: int = 0,
                  device: torch.device = torch.device("cpu"), progress: Progress | None = None
                  ) -> list[dict[str, float]]:
    """Stateful training: contiguous runs on parallel lanes, truncated BPTT, MSE on z-scored targets.

    ``train.target`` must already be z-scored. Each lane's state is reset at each run start and
    detached every ``tbptt`` steps. Early stopping on the mean validation CC (``patience`` epochs);
    the best epoch's weights are kept.
    """
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    opt = _optimizer(model.parameters(), r)
    tb = r["tbptt"]
    runs = contiguous_runs(train)
    history: list[dict[str, float]] = []
    best, best_state, stale = -2.0, copy.deepcopy(model.state_dict()), 0
    x_all, y_all = torch.from_numpy(train.x), torch.from_numpy(train.target)
    for epoch in range(r["epochs"]):
        model.train()
        perm = torch.randperm(len(runs), generator=gen).tolist()
        plan = _interleave([runs[i] for i in perm], r["streams"], tb)
        # Flatten each lane into (row index or -1 for padding, reset flag) per step.
        lanes = []
        for lane in plan:
            idx, reset = [], []
            for run in lane:
                pad = (-len(run)) % tb
                idx += run.tolist() + [-1] * pad
                reset += [True] + [False] * (len(run) + pad - 1)
            lanes.append((np.array(idx), np.array(reset)))
        steps = max(len(i) for i, _ in lanes)
        idx = np.full((len(lanes), steps), -1)
        reset = np.ones((len(lanes), steps), dtype=bool)
        for k, (i, rs) in enumerate(lanes):
            idx[k, :len(i)], reset[k, :len(rs)] = i, rs
        state: list = []
        total, count = 0.0, 0
        chunks = steps // tb
        for c in range(chunks):
            _set_lr(opt, r, epoch, c / chunks)
            state = [s.detach() for s in state]
            loss = torch.zeros((), device=device)
            n_valid = 0
            for t in range(c * tb, (c + 1) * tb):
                rows = idx[:, t]
                if state:
                    keep = torch.from_numpy(~reset[:, t]).to(device).float()
                    state = model.mask_state(state, keep)
                valid = rows >= 0
                xb = x_all[np.where(valid, rows, 0)].to(device)
                y, state = model(xb, state)
                if valid.any():
                    m = torch.from_numpy(valid).to(device)
                    yt = y_all[np.where(valid, rows, 0)].to(device)
                    loss = loss + ((y - yt) ** 2)[m].sum()
                    n_valid += int(valid.sum()) * y.shape[1]
            if n_valid:
                loss = loss / n_valid
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss) * n_valid
                count += n_valid
            if progress is not None:
                progress({"epoch": epoch, "batch": c + 1, "batches": chunks, "loss": float(loss)})
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": total / max(count, 1)}
        if len(val):
            pred = predict_stream(model, val, device)
            row["val_loss"] = float(np.mean((pred - val.target) ** 2))
            row["val_cc"] = float(np.mean(correlation(pred, val.target)))
        score = row.get("val_cc", -row["train_loss"])
        if score > best:
            best, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
            row["best"] = 1.0
        else:
            stale += 1
        history.append(row)
        if progress is not None:
            progress(row)
        if stale >= r.get("patience", r["epochs"]):
            break
    model.load_state_dict(best_state)
    return history
