"""Report folder for one evaluated checkpoint: metrics JSON and PNG figures (matplotlib, Agg backend).

Files: ``metrics.json`` (everything, baselines included), ``loss.png`` (train / validation loss
per epoch); classifiers: ``confusion.png`` (counts per window and per repetition vote, model and baselines),
``per_class.png``, ``errors.png`` (wrong windows by kind, model and baselines); regressors:
``trace.png`` (predicted vs true, one panel per joint) and ``per_joint.png`` (CC and NRMSE per joint).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curves(history: list[dict[str, float]], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    history = [h for h in history if not h.get("member")]  # a seed ensemble: its first member's curves
    select = [h for h in history if not h.get("refit") and not h.get("adapt")]
    refit = [h for h in history if h.get("refit")]
    tuned = [h for h in history if h.get("adapt")]
    epochs = [h["epoch"] for h in select]
    ax.plot(epochs, [h["train_loss"] for h in select], label="train")
    if select and "val_loss" in select[0]:
        ax.plot(epochs, [h["val_loss"] for h in select], label="validation")
    best = [h["epoch"] for h in select if h.get("best")]
    if best:
        ax.axvline(best[-1], color="grey", ls=":", label=f"best validation (epoch {best[-1]})")
    if refit:
        ax.plot([h["epoch"] for h in refit], [h["train_loss"] for h in refit], label="refit on all training reps")
    if tuned:
        ax.plot([h["epoch"] for h in tuned], [h["train_loss"] for h in tuned], label="fine-tuning the --init model")
    ax.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def confusion_plot(matrices: dict[str, tuple[np.ndarray, np.ndarray]], names: list[str], path: Path) -> None:
    """One row per model (the model, then each baseline): per-window and repetition-vote confusion.
    Each cell shows its count; its colour, the share of the true class's windows (or votes) it holds."""
    plt = _plt()
    n = len(names)
    side = 2.2 + 0.42 * n
    fig, axes = plt.subplots(len(matrices), 2, figsize=(2 * side + 1.5, (side + 0.6) * len(matrices)),
                             squeeze=False, layout="constrained")
    for row, (model, pair) in zip(axes, matrices.items()):
        for ax, m, title in zip(row, pair, ("per window", "repetition vote")):
            counts = np.asarray(m)
            rows = counts.sum(1, keepdims=True)
            frac = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
            image = ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
            for (i, j), c in np.ndenumerate(counts):
                if c:
                    ax.text(j, i, str(c), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
            ax.set_xticks(range(n), names, rotation=90, fontsize=7)
            ax.set_yticks(range(n), names, fontsize=7)
            ax.set(xlabel="predicted", ylabel="true", title=f"{model}: {title} (counts)")
    fig.colorbar(image, ax=axes, shrink=0.5, label="share of the true class (row)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def per_class_plot(per_class: dict[str, float | None], baselines: dict[str, Any], path: Path) -> None:
    plt = _plt()
    names = list(per_class)
    series = {"model": [per_class[n] or 0.0 for n in names]}
    for name, m in baselines.items():
        series[name] = [m["per_class_acc"].get(n) or 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(series)
    for k, (label, values) in enumerate(series.items()):
        ax.bar(np.arange(len(names)) + k * width, values, width, label=label)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="per-window accuracy", ylim=(0, 1), title="accuracy per class")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: never over a bar
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def errors_plot(errors: dict[str, dict[str, Any]], rest: str, path: Path) -> None:
    """Wrong windows by kind (``evaluate.error_kinds``), one stacked bar per model; ``rest``: class 0's name."""
    plt = _plt()
    models = list(errors)
    places = list(errors[models[0]]["movement_as_rest"])  # onset, end, middle
    parts = [(f"movement as {rest}, {p}", "movement_as_rest", p) for p in places]
    parts += [(f"{rest} as movement", "rest_as_movement", None)]
    parts += [(f"movement as another, {p}", "movement_as_other", p) for p in places]
    colours = ["#08519c", "#3182bd", "#9ecae1", "#e6550d", "#31a354", "#74c476", "#c7e9c0"]
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.4 * len(models)))
    left = np.zeros(len(models))
    for (label, kind, place), colour in zip(parts, colours):
        values = np.array([errors[m][kind] if place is None else errors[m][kind][place] for m in models], float)
        ax.barh(models, values, left=left, color=colour, label=label)
        left += values
    edge = errors[models[0]]["edge_windows"]
    ax.set(xlabel=f"wrong test windows (onset / end: the first / last {edge} of a segment)",
           title="where the errors sit")
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def trace_plot(true: np.ndarray, pred: np.ndarray, rate: float, names: list[str], path: Path,
               seconds: float = 60.0) -> None:
    """Predicted vs true for every output over the first ``seconds`` of the test rows."""
    plt = _plt()
    n = true.shape[1]
    cols = 2 if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(12, 2 * rows), squeeze=False, sharex=True)
    k = min(len(true), int(seconds * rate)) if rate else len(true)
    t = np.arange(k) / rate if rate else np.arange(k)
    for j in range(rows * cols):
        ax = axes[j // cols][j % cols]
        if j >= n:
            ax.axis("off")
            continue
        ax.plot(t, true[:k, j], lw=1, label="true")
        ax.plot(t, pred[:k, j], lw=1, label="predicted")
        ax.set_title(names[j], fontsize=9)
    axes[0][0].legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("test time (s, concatenated test rows)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def per_joint_plot(per_joint: dict[str, dict[str, float]], compare: dict[str, Any], path: Path) -> None:
    plt = _plt()
    names = list(per_joint)
    series = {"model": per_joint}
    series.update({k: v["per_joint"] for k, v in compare.items()})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(series)
    for ax, key in zip(axes, ("cc", "nrmse")):
        for k, (label, pj) in enumerate(series.items()):
            ax.bar(np.arange(len(names)) + k * width, [pj[n][key] for n in names], width, label=label)
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=60, ha="right", fontsize=8)
        ax.set(title=key.upper() + " per joint")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(folder: str | Path, ckpt: dict[str, Any], metrics: dict[str, Any],
                 baselines: dict[str, Any] | None = None) -> list[Path]:
    """Write the report files; return their paths. ``baselines``: name -> metrics (same split)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    baselines = baselines or {}
    written = []
    summary = {k: v for k, v in metrics.items() if k not in ("predictions", "rows", "trace")}
    doc = {"model": ckpt["config"], "data": ckpt["data"], "recipe": ckpt["recipe"], "pipeline": ckpt["pipeline"],
           "metrics": summary, "training_metrics": ckpt.get("metrics", {}), "history": ckpt["history"],
           "baselines": {k: {m: v for m, v in b.items() if m not in ("predictions", "rows", "trace")}
                         for k, b in baselines.items()}}
    path = folder / "metrics.json"
    path.write_text(json.dumps(doc, indent=1))
    written.append(path)
    loss_curves(ckpt["history"], folder / "loss.png")
    written.append(folder / "loss.png")
    if ckpt["task"] == "classify":
        names = list(ckpt["outputs"])
        scored = {"model": metrics, **baselines}
        confusion_plot({k: (m["confusion"], m["vote_confusion"]) for k, m in scored.items()}, names,
                       folder / "confusion.png")
        per_class_plot(metrics["per_class_acc"], baselines, folder / "per_class.png")
        errors_plot({k: m["errors"] for k, m in scored.items()}, names[0], folder / "errors.png")
        written += [folder / "confusion.png", folder / "per_class.png", folder / "errors.png"]
    else:
        tr = metrics["trace"]
        trace_plot(np.array(tr["true"]), np.array(tr["pred"]), tr["rate"], list(ckpt["outputs"]), folder / "trace.png")
        per_joint_plot(metrics["per_joint"], baselines, folder / "per_joint.png")
        written += [folder / "trace.png", folder / "per_joint.png"]
    return written
