"""Full training runs for both seed models and their baselines; writes runs/ and a summary.

    nice -n 10 python bench/train_all.py --out runs/train_all --workers 2 --threads 1

Jobs (in priority order): DB1 exercise 1, all 10 subjects: model A (improved recipe), model A
(paper recipe), LDA and RF, and on 5 subjects the CNN and LSTM-CNN-without-WP baselines;
Côté-Allard (all 22 subjects, raw Myo EMG behind a 20 Hz high-pass for the model and the
baselines alike) and DB5 (a few subjects): model A and LDA / RF; DB5 (a few subjects): LE-ConvMN
the LSTM baseline, ridge and the sparse GP, and both recurrent models adapted from a cross-subject
model of four other DB5 subjects (4, 7, 8, 9: a ``pretrain`` job, trained first, validation-selected
without refit) to each evaluated subject (``--init --adapt full``); the Myo grip-force set (a few
subjects): the same four on force.
``--seeds 0,1,2`` trains every model job once per seed (the baselines are deterministic); the
summary then averages each subject's seeds first and reports the spread over seeds beside the
spread over subjects, so one lucky seed cannot carry a table.
Each job writes ``<out>/jobs/<name>.json`` (metrics without the big arrays) and its checkpoint
``<out>/ckpt/<name>.pt``; a job whose JSON exists is skipped, so a rerun
resumes. ``<out>/summary.json`` and ``summary.md`` hold mean +- SD per (dataset, model).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

DROP = ("predictions", "rows", "trace", "confusion", "vote_confusion")


def jobs(quick: bool, seeds: tuple[int, ...] = (0,)) -> list[dict[str, Any]]:
    """Every job as a plain dict; ``quick`` keeps one subject per group (to check the script);
    model jobs repeat for each of ``seeds``."""
    db1 = (1, 2, 3, 4, 7, 8, 9, 10, 11, 12)
    cote = tuple(f"Female{i}" for i in range(10)) + tuple(f"Male{i}" for i in range(12))
    db5a = (1, 3, 5)
    db5b = (1, 3, 5)
    grip = ("v2", "v5", "v8")
    if quick:
        db1, cote, db5a, db5b, grip = db1[:1], cote[:1], db5a[:1], db5b[:1], grip[:1]
    out: list[dict[str, Any]] = []
    for s in db1:
        out.append({"kind": "model", "dataset": "db1", "subject": s, "model": "lstm_cnn", "recipe": "improved"})
        out.append({"kind": "baselines", "dataset": "db1", "subject": s})
    for s in db1:
        out.append({"kind": "model", "dataset": "db1", "subject": s, "model": "lstm_cnn", "recipe": "paper"})
    for s in db5b:
        out.append({"kind": "model", "dataset": "db5", "subject": s, "model": "convlstm", "recipe": "fast_b"})
        out.append({"kind": "model", "dataset": "db5", "subject": s, "model": "lstm", "recipe": "fast_b"})
        out.append({"kind": "reg_baselines", "dataset": "db5", "subject": s})
    for m in ("convlstm", "lstm"):  # cross-subject models of a disjoint pool, then adapted per subject
        pre = {"kind": "pretrain", "dataset": "db5", "subject": db5b[0], "model": m, "recipe": "fast_b",
               "train_subjects": DB5_POOL}
        pre["name"] = job_name(pre)
        out.append(pre)
        out += [{"kind": "model", "dataset": "db5", "subject": s, "model": m, "recipe": "fast_b", "init": pre["name"]}
                for s in db5b]
    for s in cote:
        out.append({"kind": "model", "dataset": "coteallard", "subject": s, "model": "lstm_cnn", "recipe": "improved",
                    "highpass": 20.0})
        out.append({"kind": "baselines", "dataset": "coteallard", "subject": s, "highpass": 20.0})
    for s in db1[:5]:  # the Table-2 deep baselines on half the subjects, to fit the time budget
        out.append({"kind": "model", "dataset": "db1", "subject": s, "model": "cnn", "recipe": "improved"})
        out.append({"kind": "model", "dataset": "db1", "subject": s, "model": "lstm_cnn", "recipe": "improved",
                    "wp": False})
    for s in db5a:
        out.append({"kind": "model", "dataset": "db5", "subject": s, "model": "lstm_cnn", "recipe": "improved"})
        out.append({"kind": "baselines", "dataset": "db5", "subject": s})
    for s in grip:  # the second regression task: 8 raw Myo channels -> grip force
        out.append({"kind": "model", "dataset": "grip", "subject": s, "model": "convlstm", "recipe": "fast_b"})
        out.append({"kind": "model", "dataset": "grip", "subject": s, "model": "lstm", "recipe": "fast_b"})
        out.append({"kind": "reg_baselines", "dataset": "grip", "subject": s})
    out = [{**job, "seed": k} if job["kind"] == "model" else job
           for job in out for k in (seeds if job["kind"] == "model" else seeds[:1])]
    for job in out:
        job["name"] = job_name(job)
    return out


DB5_POOL = (4, 7, 8, 9)  # DB5 subjects never evaluated here: the cross-subject model's training pool


def job_name(job: dict[str, Any]) -> str:
    if job["kind"] in ("baselines", "reg_baselines"):
        return f"{job['dataset']}-s{job['subject']}-{job['kind']}"
    seed = f"-seed{job['seed']}" if job.get("seed", 0) else ""  # seed 0 keeps the names of earlier runs
    return f"{job['dataset']}-s{job['subject']}-{group(job).split('/', 1)[1].replace('/', '-')}{seed}"


def group(job: dict[str, Any]) -> str:
    """The summary row a model job belongs to: dataset/model/recipe, plus how it was trained."""
    model = job["model"] + ("_emg" if job.get("wp") is False else "")
    how = ("/cross" if job["kind"] == "pretrain" else "") + ("/adapted" if job.get("init") else "")
    return f"{job['dataset']}/{model}/{job['recipe']}{how}"


def run_job(job: dict[str, Any], out: Path, threads: int) -> dict[str, Any]:
    import torch

    from emgflow.ml import checkpoint
    from emgflow.ml.baselines import run_baselines, run_regression_baselines
    from emgflow.ml.config import TrainConfig
    from emgflow.ml.datasets import dataset, load_subject
    from emgflow.ml.models import default_pipeline
    from emgflow.ml.train import train_model

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    result: dict[str, Any] = {**job}
    if job["kind"] in ("baselines", "reg_baselines"):
        spec = dataset(job["dataset"])
        subj = load_subject(spec, job["subject"])
        if job["kind"] == "baselines":
            pipe = default_pipeline(spec, "cnn", rate=subj.rate, paper=False, highpass=job.get("highpass"))
            scores = run_baselines(subj, pipe)
        else:
            scores = run_regression_baselines(subj, default_pipeline(spec, "convlstm", rate=subj.rate, paper=False))
        result["metrics"] = {k: {m: v for m, v in met.items() if m not in DROP} for k, met in scores.items()}
    else:
        cross = job["kind"] == "pretrain"
        ckpt = train_model(TrainConfig(
            job["model"], job["dataset"], job["subject"], recipe=job["recipe"], refit=False if cross else None,
            mode="cross" if cross else "subject", train_subjects=job.get("train_subjects"), wp=job.get("wp", True),
            highpass=job.get("highpass"), seed=job.get("seed", 0), threads=threads, device="cpu",
            init=out / "ckpt" / f"{job['init']}.pt" if job.get("init") else None,
            adapt="full" if job.get("init") else None))
        checkpoint.save(ckpt, out / "ckpt" / f"{job['name']}.pt")
        result["metrics"] = {k: v for k, v in ckpt["metrics"].items() if k not in DROP}
        result["epochs_run"] = len(ckpt["history"])
        result["best_epoch"] = max((h["epoch"] for h in ckpt["history"] if h.get("best") and not h.get("refit")),
                                   default=None)
    result["seconds"] = time.perf_counter() - t0
    return result


def _worker(job: dict[str, Any], out: str, threads: int) -> str:
    path = Path(out) / "jobs" / f"{job['name']}.json"
    try:
        result = run_job(job, Path(out), threads)
    except Exception:  # one failed job must not stop the others; its traceback is kept
        result = {**job, "error": traceback.format_exc()}
    path.write_text(json.dumps(result, indent=1))
    return f"{job['name']}: {'ERROR' if 'error' in result else 'done'} ({result.get('seconds', 0):.0f} s)"


def _stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def summarize(out: Path) -> dict[str, Any]:
    """Mean +- SD per (dataset, model): accuracies for classifiers, CC / RMSE / NRMSE for regressors.

    Each subject counts once: its seeds are averaged first; ``seed_sd`` is the mean over subjects
    of the SD over that subject's seeds (present where a subject has several seeds).
    """
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}  # key -> subject -> one row per seed
    errors = []
    for f in sorted((out / "jobs").glob("*.json")):
        r = json.loads(f.read_text())
        if "error" in r:
            errors.append(r["name"])
            continue
        if r["kind"] in ("baselines", "reg_baselines"):
            entries = {f"{r['dataset']}/{name}": m for name, m in r["metrics"].items()}
        else:
            entries = {group(r): r["metrics"]}
        for key, m in entries.items():
            keys = ("train_acc", "test_acc", "vote_acc", "top3_acc") if "test_acc" in m else ("cc", "rmse", "nrmse")
            row = {k: m[k] for k in keys}
            if "smoothed3" in m:
                row["cc_smoothed3"] = m["smoothed3"]["cc"]
                row["nrmse_smoothed3"] = m["smoothed3"]["nrmse"]
            runs.setdefault(key, {}).setdefault(str(r["subject"]), []).append(row)
    groups: dict[str, dict[str, dict[str, float]]] = {}
    per_subject: dict[str, dict[str, dict[str, float]]] = {}
    for key, subjects in runs.items():
        per_subject[key] = {s: {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
                            for s, rows in subjects.items()}
        metrics = next(iter(per_subject[key].values()))
        groups[key] = {k: _stats([row[k] for row in per_subject[key].values()]) for k in metrics}
        for k, st in groups[key].items():
            st["seeds"] = max(len(rows) for rows in subjects.values())
            if st["seeds"] > 1:
                st["seed_sd"] = float(np.mean([np.std([row[k] for row in rows], ddof=1)
                                               for rows in subjects.values() if len(rows) > 1]))
    summary = {"groups": groups, "per_subject": per_subject, "errors": errors}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = ["| dataset / model / recipe | subjects x seeds | metrics (mean ± SD over subjects; SD over seeds) |",
             "|---|---|---|"]
    for key, g in groups.items():
        first = next(iter(g.values()))
        cells = ", ".join(f"{m} {st['mean']:.3f} ± {st['sd']:.3f}" + (f" (seeds ± {st['seed_sd']:.3f})"
                                                                      if "seed_sd" in st else "")
                          for m, st in g.items())
        lines.append(f"| {key} | {first['n']} x {first['seeds']} | {cells} |")
    lines += ["", "Per subject, mean over its seeds (classifiers: per-window / vote accuracy; regressors: CC / NRMSE):",
              ""]
    for key, rows in per_subject.items():
        a, b = ("test_acc", "vote_acc") if "test_acc" in next(iter(rows.values())) else ("cc", "nrmse")
        cells = ", ".join(f"{s}: {r[a]:.3f}/{r[b]:.3f}" for s, r in rows.items())
        lines.append(f"- {key}: {cells}")
    if errors:
        lines.append(f"\nFailed jobs: {', '.join(errors)}")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/train_all", help="results folder")
    ap.add_argument("--workers", type=int, default=2, help="parallel training processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--quick", action="store_true", help="one subject per group")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds for every model job, e.g. 0,1,2")
    ap.add_argument("--only", default="", help="run only jobs whose name matches this regular expression "
                                               "(re.search), e.g. 'db1-s[0-9]+-(lstm_cnn-improved|baselines)'")
    ap.add_argument("--summarize", action="store_true", help="only rebuild the summary from finished jobs")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    if not args.summarize:
        seeds = tuple(int(k) for k in args.seeds.split(","))
        todo = [j for j in jobs(args.quick, seeds) if re.search(args.only, j["name"])
                and not (out / "jobs" / f"{j['name']}.json").exists()]
        print(f"{len(todo)} jobs, {args.workers} workers x {args.threads} threads (pid {os.getpid()})", flush=True)
        t0 = time.perf_counter()
        for adapted in (False, True):  # adapted jobs start from checkpoints the first round writes
            with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool:
                round_ = [(j, str(out), args.threads) for j in todo if bool(j.get("init")) == adapted]
                for line in pool.imap_unordered(_star, round_):
                    print(f"[{time.perf_counter() - t0:6.0f} s] {line}", flush=True)
    summary = summarize(out)
    print((out / "summary.md").read_text())
    sys.exit(1 if summary["errors"] else 0)


def _star(args: tuple[dict[str, Any], str, int]) -> str:
    return _worker(*args)


if __name__ == "__main__":
    main()
