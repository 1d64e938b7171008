"""Next session without starting over: within-session, cross-session, and cross-session after one cycle.

    nice -n 10 python bench/cross_session.py [--epochs 10] [--people 12345,45612] [--out bench/results]

On myo-readings (each person: three sessions of 7 gesture files, 6 episodes of each gesture per file),
every session is described by two dataset files, as a user would describe today's take:
``full`` (test episodes 4-6, validation 3, training 1-2) and ``cycle`` (training episode 1 only: one
repetition of each gesture with the rest before it). Every figure is the per-window accuracy on
episodes 4-6 of the session scored:

- *within session*: a model trained on that session's episodes 1-3 (the ``full`` file);
- *other session, no adaptation*: the model of another session of the same person;
- *other session + one cycle*: that model started from (``--init``) with each ``--adapt`` mode on the
  scored session's first cycle (the ``cycle`` file); LDA and the random forest refit on the old
  session's episodes 1-3 plus the cycle;
- *one cycle only*: a model trained from scratch on the cycle alone (what adapting must beat).

Writes ``<out>/cross_session.{json,md,png}``. Runs on one thread (``--threads``), one seed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from emgflow.data import data_path
from emgflow.ml import checkpoint
from emgflow.ml.baselines import BASELINES, feature_pipeline, fit_proba
from emgflow.ml.config import ADAPT_MODES, TrainConfig
from emgflow.ml.datasets import classification_windows, concat_windows, dataset, load_subject
from emgflow.ml.evaluate import evaluate
from emgflow.ml.models import default_pipeline
from emgflow.ml.train import train_model

MODEL = "lstm_cnn"
SESSIONS = (1, 2, 3)
CLASSES = ["rest", "flexion", "extension", "radial deviation", "ulnar deviation", "pronation", "supination", "fist"]
MODES = tuple(m for m in ADAPT_MODES if m != "full")
ROWS = ["within session", "other session, no adaptation", *(f"other session + one cycle ({m})" for m in MODES),
        "one cycle only (from scratch)"]


def dataset_file(folder: Path, person: str, session: int, kind: str) -> str:
    """A dataset file for one session: ``full`` or ``cycle`` (see the module docstring)."""
    root = data_path("myo-readings-dataset/_readings_right_hand") / f"{person}-{session}"
    test, val = ([4, 5, 6], [3]) if kind == "full" else ([2, 3, 4, 5, 6], [])
    path = folder / f"{person}-{session}-{kind}.yaml"
    path.write_text(json.dumps({"recordings": [str(root / f"{g}.txt") for g in range(1, 8)], "classes": CLASSES,
                                "test": test, "val": val, "subject": f"{person}-{session}"}))
    return str(path)


def accuracy(ckpt: dict[str, Any], scored: Any) -> float:
    return float(evaluate(ckpt, scored)["test_acc"])


def baseline_scores(full: dict[str, Any], cycle: dict[str, Any], pairs: list[tuple[str, str]],
                    seed: int) -> dict[str, dict[str, list[float]]]:
    """LDA and the forest on the model's windows' features, per row of the table (lists over pairs)."""
    out: dict[str, dict[str, list[float]]] = {name: {row: [] for row in ROWS} for name in BASELINES}
    windows = {}
    for key, subj in [*full.items(), *((k + "/cycle", s) for k, s in cycle.items())]:
        pipe = checkpoint_pipeline(subj)
        windows[key] = classification_windows(subj, feature_pipeline(pipe, subj.spec.name), 5, pipe[-1]["step"], seed)
    n = len(CLASSES)
    for name in BASELINES:
        def acc(train: Any, test: Any) -> float:
            return float((fit_proba(name, train, test, n, seed)[0].argmax(1) == test.label).mean())
        for src, dst in pairs:
            test = windows[dst]["test"]
            cyc = windows[dst + "/cycle"]["fit"]
            out[name]["within session"].append(acc(windows[dst]["fit"], test))
            out[name]["other session, no adaptation"].append(acc(windows[src]["fit"], test))
            refit = acc(concat_windows([windows[src]["fit"], cyc]), test)
            for m in MODES:  # a baseline has one way to adapt: refit on old + new
                out[name][f"other session + one cycle ({m})"].append(refit)
            out[name]["one cycle only (from scratch)"].append(acc(cyc, test))
    return out


def checkpoint_pipeline(subj: Any) -> list[dict[str, Any]]:
    """The model's pipeline for ``subj``: the baselines read features of the same windows."""
    return default_pipeline(subj.spec, MODEL, rate=subj.rate, paper=False)


def session_model(path: Path, config: TrainConfig) -> Path:
    """``path``, trained as ``config`` says unless an earlier run with the same epochs and seed left it there."""
    if not path.exists():
        checkpoint.save(train_model(config), path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", default="12345,45612")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the session models (validation picks)")
    ap.add_argument("--adapt-epochs", type=int, default=None, help="fine-tuning epochs (default: the CLI's)")
    ap.add_argument("--adapt-lr", type=float, default=None, help="fine-tuning learning rate (default: the CLI's)")
    ap.add_argument("--models", type=Path, default=Path("runs/cross_session"),
                    help="session models are kept here and reused by a rerun with other adaptation settings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    people = args.people.split(",")
    sessions = [(p, s) for p in people for s in SESSIONS]
    pairs = [(f"{p}-{a}", f"{p}-{b}") for p in people for a in SESSIONS for b in SESSIONS if a != b]
    tmp = Path(tempfile.mkdtemp(prefix="cross_session-"))
    models = args.models / f"epochs{args.epochs}-seed{args.seed}"
    files = {f"{p}-{s}": {k: dataset_file(tmp, p, s, k) for k in ("full", "cycle")} for p, s in sessions}
    full = {key: load_subject(dataset(f["full"]), key) for key, f in files.items()}
    cycle = {key: load_subject(dataset(f["cycle"]), key) for key, f in files.items()}
    common = dict(seed=args.seed, threads=args.threads, device="cpu")
    model: dict[str, list[float]] = {row: [] for row in ROWS}
    t0 = time.perf_counter()
    steps = len(sessions) * 2 + len(pairs) * len(MODES) + 1
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("session models", total=steps)
        own, scratch = {}, {}
        for key, f in files.items():
            own[key] = session_model(models / f"{key}.pt", TrainConfig(MODEL, f["full"], key, epochs=args.epochs,
                                                                               **common))
            bar.advance(task)
            scratch[key] = accuracy(checkpoint.load(session_model(models / f"{key}-cycle.pt", TrainConfig(
                MODEL, f["cycle"], key, epochs=args.epochs, **common))), full[key])
            bar.advance(task)
        bar.update(task, description="adapting")
        for src, dst in pairs:
            model["within session"].append(accuracy(checkpoint.load(own[dst]), full[dst]))
            model["other session, no adaptation"].append(accuracy(checkpoint.load(own[src]), full[dst]))
            for m in MODES:
                ckpt = train_model(TrainConfig(MODEL, files[dst]["cycle"], dst, init=own[src], adapt=m,
                                               epochs=args.adapt_epochs, lr=args.adapt_lr, **common))
                model[f"other session + one cycle ({m})"].append(accuracy(ckpt, full[dst]))
                bar.advance(task)
            model["one cycle only (from scratch)"].append(scratch[dst])
        bar.update(task, description="LDA and random forest")
        base = baseline_scores(full, cycle, pairs, args.seed)
        bar.advance(task)
    result = {"dataset": "myo-readings", "people": people, "pairs": [f"{s}->{d}" for s, d in pairs],
              "model": MODEL, "epochs": args.epochs, "adapt_epochs": args.adapt_epochs, "adapt_lr": args.adapt_lr, "seed": args.seed,
              "seconds": round(time.perf_counter() - t0), "accuracy": {"model A": model, **base}}
    write(result, args.out)


def write(result: dict[str, Any], out: Path) -> None:
    """The table as JSON, markdown (mean +- SD over the ordered session pairs) and a grouped bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "cross_session.json").write_text(json.dumps(result, indent=1))
    acc = result["accuracy"]
    cols = list(acc)
    lines = [f"Per-window accuracy on episodes 4-6 of the scored session, mean ± SD over {len(result['pairs'])} "
             f"ordered session pairs of {len(result['people'])} people (myo-readings; model A {result['model']}, "
             f"{result['epochs']} epochs, seed {result['seed']}; {result['seconds']} s).", "",
             "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for row in ROWS:
        lines.append(f"| {row} | " + " | ".join(f"{np.mean(acc[c][row]):.3f} ± {np.std(acc[c][row]):.3f}"
                                                for c in cols) + " |")
    (out / "cross_session.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(cols)
    for i, c in enumerate(cols):
        ax.bar(np.arange(len(ROWS)) + i * width, [np.mean(acc[c][r]) for r in ROWS], width,
               yerr=[np.std(acc[c][r]) for r in ROWS], label=c, capsize=2)
    ax.set_xticks(np.arange(len(ROWS)) + width * (len(cols) - 1) / 2)
    ax.set_xticklabels([r.replace(", ", ",\n").replace(" + ", "\n+ ") for r in ROWS], fontsize=8)
    ax.set_ylabel("per-window accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("myo-readings: a new session of the same person")
    fig.tight_layout()
    fig.savefig(out / "cross_session.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
