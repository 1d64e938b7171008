"""Next session without starting over: within-session, cross-session, and cross-session after one cycle.

    nice -n 10 python bench/cross_session.py [--epochs 15] [--seeds 0,1] [--people 12345,45612] [--out bench/results]

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
- *finetune on the old training reps + the cycle*: model A's analogue of the baselines' refit (yesterday's
  episodes 1-3 and today's cycle, as takes with a repetition stream: a dataset file's lists are global);
- *one cycle only*: a model trained from scratch on the cycle alone (what adapting must beat).

Writes ``<out>/cross_session.{json,md,png}`` (all pairs, then each person). One thread (``--threads``); each of
``--seeds`` trains its own session models (kept in ``--models`` for reruns) and forest.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from emgflow.data import data_path
from emgflow.recordings import load
from emgflow.ml import checkpoint
from emgflow.ml.adapt import ADAPT_EPOCHS, ADAPT_LR_SCALE
from emgflow.ml.baselines import BASELINES, feature_pipeline, fit_proba
from emgflow.ml.config import ADAPT_MODES, DEFAULT_ADAPT, TrainConfig
from emgflow.ml.datafile import episode_repetitions
from emgflow.ml.datasets import backfill_rest, classification_windows, concat_windows, dataset, load_subject
from emgflow.ml.evaluate import evaluate
from emgflow.ml.models import default_pipeline
from emgflow.ml.train import train_model

MODEL = "lstm_cnn"
SESSIONS = (1, 2, 3)
CLASSES = ["rest", "flexion", "extension", "radial deviation", "ulnar deviation", "pronation", "supination", "fist"]
MODES = tuple(m for m in ADAPT_MODES if m != "full")
REHEARSE = "other session + one cycle (finetune on the old training reps + the cycle)"
ROWS = ["within session", "other session, no adaptation", *(f"other session + one cycle ({m})" for m in MODES),
        REHEARSE, "one cycle only (from scratch)"]


def dataset_file(folder: Path, person: str, session: int, kind: str) -> str:
    """A dataset file for one session: ``full`` or ``cycle`` (see the module docstring)."""
    root = data_path("myo-readings-dataset/_readings_right_hand") / f"{person}-{session}"
    test, val = ([4, 5, 6], [3]) if kind == "full" else ([2, 3, 4, 5, 6], [])
    path = folder / f"{person}-{session}-{kind}.yaml"
    path.write_text(json.dumps({"recordings": [str(root / f"{g}.txt") for g in range(1, 8)], "classes": CLASSES,
                                "test": test, "val": val, "subject": f"{person}-{session}"}))
    return str(path)


def rehearsal_file(folder: Path, person: str, old: int, new: int) -> str:
    """A dataset file training on ``old``'s episodes 1-3 and ``new``'s first cycle (model A's analogue of
    the baselines' refit): both sessions' recordings written as takes with a repetition stream that
    keeps those apart from the rest (a dataset file's test list is global, its episodes per take)."""
    takes = []
    for session, keep in ((old, 3), (new, 1)):
        root = data_path("myo-readings-dataset/_readings_right_hand") / f"{person}-{session}"
        for g in range(1, 8):
            rec = load(root / f"{g}.txt")
            label = rec.streams["label"][:, 0].astype(np.int32)
            episode = backfill_rest(label, episode_repetitions(label))
            rep = np.where(episode <= keep, episode, episode + 10).astype(np.int32)  # 11+: held out
            takes.append(folder / f"{person}-{old}-{new}-s{session}-{g}.npz")
            np.savez(takes[-1], emg=rec.emg, rate=np.float64(rec.rate), label=label, repetition=rep)
    path = folder / f"{person}-{old}-{new}-rehearse.yaml"
    path.write_text(json.dumps({"recordings": [str(t) for t in takes], "classes": CLASSES, "test": list(range(12, 17)),
                                "val": [], "repetition": "repetition", "subject": f"{person}-{new}"}))
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
            for row in [*(f"other session + one cycle ({m})" for m in MODES), REHEARSE]:  # one way: refit on old + new
                out[name][row].append(refit)
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


def run_seed(seed: int, args: argparse.Namespace, files: dict[str, dict[str, str]], full: dict[str, Any],
             pairs: list[tuple[str, str]], advance: Callable[[str], None]) -> dict[str, list[float]]:
    """Model A's row values with one seed (lists over ``pairs``): session models trained or reused, then adapted."""
    models = args.models / f"epochs{args.epochs}-seed{seed}"
    common = dict(seed=seed, threads=args.threads, device="cpu")
    own, scratch = {}, {}
    for key, f in files.items():
        own[key] = session_model(models / f"{key}.pt", TrainConfig(MODEL, f["full"], key, epochs=args.epochs, **common))
        scratch[key] = accuracy(checkpoint.load(session_model(models / f"{key}-cycle.pt", TrainConfig(
            MODEL, f["cycle"], key, epochs=args.epochs, **common))), full[key])
        advance(f"seed {seed}: session models")
    model: dict[str, list[float]] = {row: [] for row in ROWS}
    for src, dst in pairs:
        model["within session"].append(accuracy(checkpoint.load(own[dst]), full[dst]))
        model["other session, no adaptation"].append(accuracy(checkpoint.load(own[src]), full[dst]))
        for m in MODES:
            ckpt = train_model(TrainConfig(MODEL, files[dst]["cycle"], dst, init=own[src], adapt=m,
                                           epochs=args.adapt_epochs, lr=args.adapt_lr, **common))
            model[f"other session + one cycle ({m})"].append(accuracy(ckpt, full[dst]))
        person, a, b = src.split("-")[0], int(src.split("-")[1]), int(dst.split("-")[1])
        ckpt = train_model(TrainConfig(MODEL, rehearsal_file(args.tmp, person, a, b), dst, init=own[src],
                                       adapt="finetune", epochs=args.adapt_epochs, lr=args.adapt_lr, **common))
        model[REHEARSE].append(accuracy(ckpt, full[dst]))
        model["one cycle only (from scratch)"].append(scratch[dst])
        advance(f"seed {seed}: adapting")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", default="12345,45612")
    ap.add_argument("--epochs", type=int, default=15, help="epochs of the session models (validation picks)")
    ap.add_argument("--adapt-epochs", type=int, default=None, help="fine-tuning epochs (default: the CLI's)")
    ap.add_argument("--adapt-lr", type=float, default=None, help="fine-tuning learning rate (default: the CLI's)")
    ap.add_argument("--models", type=Path, default=Path("runs/cross_session"),
                    help="session models are kept here and reused by a rerun with other adaptation settings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", default="0,1", help="one run per seed (models and the forest)")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    people, seeds = args.people.split(","), [int(s) for s in args.seeds.split(",")]
    pairs = [(f"{p}-{a}", f"{p}-{b}") for p in people for a in SESSIONS for b in SESSIONS if a != b]
    tmp = args.tmp = Path(tempfile.mkdtemp(prefix="cross_session-"))
    files = {f"{p}-{s}": {k: dataset_file(tmp, p, s, k) for k in ("full", "cycle")} for p in people for s in SESSIONS}
    full = {key: load_subject(dataset(f["full"]), key) for key, f in files.items()}
    cycle = {key: load_subject(dataset(f["cycle"]), key) for key, f in files.items()}
    acc: dict[str, dict[str, list[float]]] = {}
    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("", total=len(seeds) * (len(files) + len(pairs) + 1))
        advance = lambda what: bar.update(task, advance=1, description=what)  # noqa: E731
        for seed in seeds:
            rows = {"model A": run_seed(seed, args, files, full, pairs, advance),
                    **baseline_scores(full, cycle, pairs, seed)}
            advance(f"seed {seed}: LDA and random forest")
            for col, values in rows.items():
                for row, v in values.items():
                    acc.setdefault(col, {}).setdefault(row, []).extend(v)
    result = {"dataset": "myo-readings", "people": people, "pairs": [f"{s}->{d}" for s, d in pairs] * len(seeds),
              "seeds": seeds, "model": MODEL, "epochs": args.epochs, "adapt_epochs": args.adapt_epochs,
              "adapt_lr": args.adapt_lr, "seconds": round(time.perf_counter() - t0), "accuracy": acc}
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
    seeds = result["seeds"]
    lines = [f"Per-window accuracy on episodes 4-6 of the scored session, mean ± SD over "
             f"{len(result['pairs']) // len(seeds)} ordered session pairs of {len(result['people'])} people x seeds "
             f"{', '.join(map(str, seeds))} (myo-readings; model A {result['model']}, session models "
             f"{result['epochs']} epochs; {result['seconds']} s). Model A adapts from the other session's model with "
             f"each --adapt mode (fine-tuning {result['adapt_epochs'] or ADAPT_EPOCHS} epochs at learning rate "
             f"{result['adapt_lr'] or f'{ADAPT_LR_SCALE:g} x the recipe'}); LDA and the forest have one way to adapt, "
             f"a refit on the other session's episodes 1-3 plus the cycle, shown in every mode's row.", ""]
    for who in [None, *result["people"]]:
        pick = [who is None or p.startswith(f"{who}-") for p in result["pairs"]]
        lines += [f"**{'All pairs' if who is None else f'Person {who}'}**", "",
                  "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for row in ROWS:
            cells = [np.asarray(acc[c][row])[pick] for c in cols]
            lines.append(f"| {row} | " + " | ".join(f"{v.mean():.3f} ± {v.std():.3f}" for v in cells) + " |")
        lines.append("")
    ours = np.asarray(acc["model A"][f"other session + one cycle ({DEFAULT_ADAPT})"])
    lines.append(f"Paired (same pair and seed), model A adapted with the default --adapt {DEFAULT_ADAPT}, "
                 f"mean ± SE (pairs where it is ahead):")
    for col, row in [("model A", r) for r in ROWS if r != f"other session + one cycle ({DEFAULT_ADAPT})"] + [
            ("rf", "other session + one cycle (finetune)"), ("rf", "within session")]:
        d = ours - np.asarray(acc[col][row])
        what = f"{col}, {row}" if col == "model A" or "cycle" not in row else "rf refit on the old session + the cycle"
        lines.append(f"- against {what}: {d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f} "
                     f"({int((d > 0).sum())} of {len(d)})")
    (out / "cross_session.md").write_text("\n".join(lines) + "\n")
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / len(cols)
    for i, c in enumerate(cols):
        ax.bar(np.arange(len(ROWS)) + i * width, [np.mean(acc[c][r]) for r in ROWS], width,
               yerr=[np.std(acc[c][r]) for r in ROWS], label=c, capsize=2)
    ax.set_xticks(np.arange(len(ROWS)) + width * (len(cols) - 1) / 2)
    ax.set_xticklabels([textwrap.fill(r, 16) for r in ROWS], fontsize=8)
    ax.set_ylabel("per-window accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("myo-readings: a new session of the same person")
    fig.tight_layout()
    fig.savefig(out / "cross_session.png", dpi=120)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
