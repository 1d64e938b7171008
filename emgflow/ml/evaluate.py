"""Scores: per-window and repetition-vote accuracy for classifiers; per-joint CC / RMSE / NRMSE for regressors.

``evaluate(ckpt, subject)`` re-cuts the subject's recordings with the checkpoint's own serving
pipeline and scores its test repetitions, so it measures exactly what the graph would output.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .datasets import Subject, Windows, classification_windows, contiguous_runs, windows_from


# --- classification -------------------------------------------------------------------------

def vote(pred: np.ndarray, segment: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote over each segment (a (label, repetition) run): (segment ids, voted class).

    Ties go to the smallest class id.
    """
    segs = np.unique(segment)
    voted = np.array([np.bincount(pred[segment == s], minlength=n_classes).argmax() for s in segs])
    return segs, voted


def sliding_vote(pred: np.ndarray, w: Windows, k: int, n_classes: int) -> np.ndarray:
    """Streaming analogue of the vote: the mode of the last ``k`` predictions of the same stream."""
    out = np.empty_like(pred)
    onehot = np.eye(n_classes, dtype=np.int64)[pred]
    start = 0
    for i in range(len(pred)):
        if i and (w.stream[i] != w.stream[i - 1] or w.index[i] != w.index[i - 1] + 1):
            start = i  # a gap: the online voter would restart
        lo = max(start, i - k + 1)
        out[i] = onehot[lo:i + 1].sum(0).argmax()
    return out


def confusion(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (true, pred), 1)
    return m


EDGE_WINDOWS = 3
"""Windows at each end of a segment that ``error_kinds`` counts as its onset / end (450 ms at the
150 ms test hop): where the envelopes are still rising or already falling."""


def error_kinds(pred: np.ndarray, w: Windows) -> dict[str, Any]:
    """Where the wrong windows sit, class 0 being rest: movement windows called rest or another
    movement, each split into onset / end / middle of their segment, and rest windows called a
    movement. Classifiers of equal accuracy differ here (DB1: networks call movements rest where a
    random forest calls rest a movement), which the confusion matrix alone hides.

    Rows of a segment are adjacent and in time order (as ``windows_from`` cuts them)."""
    seg = w.segment
    new = np.r_[True, seg[1:] != seg[:-1]] if len(seg) else np.zeros(0, dtype=bool)
    first = np.flatnonzero(new)
    run = np.cumsum(new) - 1
    pos = np.arange(len(seg)) - first[run]
    from_end = np.diff(np.r_[first, len(seg)])[run] - 1 - pos
    place = {"onset": pos < EDGE_WINDOWS, "end": (from_end < EDGE_WINDOWS) & (pos >= EDGE_WINDOWS)}
    place["middle"] = ~(place["onset"] | place["end"])
    wrong_movement = (pred != w.label) & (w.label != 0)
    return {"edge_windows": EDGE_WINDOWS,
            "movement_as_rest": {k: int((wrong_movement & (pred == 0) & m).sum()) for k, m in place.items()},
            "movement_as_other": {k: int((wrong_movement & (pred != 0) & m).sum()) for k, m in place.items()},
            "rest_as_movement": int(((w.label == 0) & (pred != 0)).sum())}


def classification_metrics(logits: np.ndarray, w: Windows, n_classes: int,
                           class_names: Sequence[str]) -> dict[str, Any]:
    """Per-window, top-3, vote and sliding-vote accuracy, per-class accuracy, confusion matrices and
    where the errors sit (``error_kinds``)."""
    pred = logits.argmax(1)
    top3 = np.argsort(-logits, axis=1)[:, :3]
    segs, voted = vote(pred, w.segment, n_classes)
    seg_label = np.array([w.label[w.segment == s][0] for s in segs])
    cm = confusion(w.label, pred, n_classes)
    per_class = np.divide(np.diag(cm), cm.sum(1), out=np.full(n_classes, np.nan), where=cm.sum(1) > 0)
    return {
        "windows": int(len(w)), "segments": int(len(segs)),
        "test_acc": float((pred == w.label).mean()),
        "top3_acc": float((top3 == w.label[:, None]).any(1).mean()),
        "vote_acc": float((voted == seg_label).mean()),
        "sliding_vote_acc": {str(k): float((sliding_vote(pred, w, k, n_classes) == w.label).mean())
                             for k in (5, 10, 20)},
        "per_class_acc": {name: (None if np.isnan(a) else float(a)) for name, a in zip(class_names, per_class)},
        "confusion": cm.tolist(),
        "vote_confusion": confusion(seg_label, voted, n_classes).tolist(),
        "errors": error_kinds(pred, w),
        "predictions": pred.tolist(),
    }


# --- regression -----------------------------------------------------------------------------

def correlation(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson CC per column (0 where either column is constant)."""
    p, t = pred - pred.mean(0), true - true.mean(0)
    den = np.sqrt((p * p).sum(0) * (t * t).sum(0))
    return np.divide((p * t).sum(0), den, out=np.zeros(p.shape[1]), where=den > 0)


def moving_average3(pred: np.ndarray) -> np.ndarray:
    """Causal 3-output moving average (the LE-ConvMN lab smooths predictions this way before scoring)."""
    padded = np.concatenate([np.repeat(pred[:1], 2, axis=0), pred])
    return (padded[2:] + padded[1:-1] + padded[:-2]) / 3


def regression_metrics(pred: np.ndarray, true: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Per-joint CC, RMSE (target units) and NRMSE (RMSE / range of the true joint), and their means."""
    cc = correlation(pred, true)
    rmse = np.sqrt(np.mean((pred - true) ** 2, axis=0))
    span = true.max(0) - true.min(0)
    nrmse = np.divide(rmse, span, out=np.full_like(rmse, np.nan), where=span > 0)
    return {"cc": float(cc.mean()), "rmse": float(rmse.mean()), "nrmse": float(np.nanmean(nrmse)),
            "per_joint": {n: {"cc": float(c), "rmse": float(r), "nrmse": float(q)}
                          for n, c, r, q in zip(names, cc, rmse, nrmse)}}


# --- whole-checkpoint evaluation --------------------------------------------------------------

def evaluate(ckpt: dict[str, Any], subj: Subject, *, device: str = "cpu") -> dict[str, Any]:
    """Score a checkpoint on a subject's test repetitions through its own serving pipeline."""
    import torch  # the optional ml extra: the metrics above work without it

    from .checkpoint import model_from
    from .predict import predict_logits, predict_stream

    net = model_from(ckpt).to(device)
    reps = ckpt["data"]["test_reps"]
    if ckpt["task"] == "classify":
        pipe = ckpt["pipeline"]
        w = classification_windows(subj, pipe, pipe[-1]["step"], pipe[-1]["step"])["test"]
        logits = predict_logits(net, w.x, torch.device(device))
        out = classification_metrics(logits, w, len(ckpt["outputs"]), ckpt["outputs"])
        out["rows"] = {"stream": w.stream.tolist(), "index": w.index.tolist(), "label": w.label.tolist()}
        return out
    w = windows_from(subj.recordings, ckpt["pipeline"], target=subj.spec.target,
                     target_columns=subj.spec.target_columns)
    mean, std = np.asarray(ckpt["target_mean"]), np.asarray(ckpt["target_std"])
    # The whole recording runs through the model, as the online node would; the test rows are scored.
    pred = predict_stream(net, w, torch.device(device)) * std + mean
    test = np.isin(w.repetition, reps)
    out = regression_metrics(pred[test], w.target[test], ckpt["outputs"])
    smooth = np.concatenate([moving_average3(pred[run]) for run in contiguous_runs(w)])
    out["smoothed3"] = {k: v for k, v in regression_metrics(smooth[test], w.target[test], ckpt["outputs"]).items()
                        if k != "per_joint"}
    out["trace"] = {"true": w.target[test].tolist(), "pred": pred[test].tolist(), "rate": w.rate}
    return out
