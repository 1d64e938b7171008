"""Full training runs for both seed models and their baselines; writes runs/ and a summary.

    nice -n 10 python bench/train_all.py --out runs/train_all                     # one job after another
    python bench/train_all.py --out runs/train_all --executor ray --cpus 1        # local Ray, all cores
    python bench/train_all.py --out runs/train_all --executor ray --address HOST:6379  # a Ray cluster

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
Each finished job writes ``<out>/jobs/<name>.json`` (metrics without the big arrays) and its
checkpoint ``<out>/ckpt/<name>.pt`` (``emgflow.ml.sweep``); a rerun skips every job that succeeded
and runs the failed ones again. ``<out>/summary.json`` and ``summary.md`` hold mean +- SD per
(dataset, model), the same for either executor.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from emgflow.ml.sweep import Executor, Job, LocalExecutor, RayExecutor, Result, SweepError, pending, run_sweep
from emgflow.ml.sweep_summary import group, summarize


def jobs(quick: bool, seeds: tuple[int, ...] = (0,)) -> list[Job]:
    """Every job, each after the one it starts from; ``quick`` keeps one subject per group (to check the script);
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
    return [Job.from_dict({**job, "name": job_name(job)}) for job in out]


DB5_POOL = (4, 7, 8, 9)  # DB5 subjects never evaluated here: the cross-subject model's training pool


def job_name(job: dict[str, Any]) -> str:
    if job["kind"] in ("baselines", "reg_baselines"):
        return f"{job['dataset']}-s{job['subject']}-{job['kind']}"
    seed = f"-seed{job['seed']}" if job.get("seed", 0) else ""  # seed 0 keeps the names of earlier runs
    return f"{job['dataset']}-s{job['subject']}-{group(job).split('/', 1)[1].replace('/', '-')}{seed}"


def executor(args: argparse.Namespace) -> Executor:
    """Where the jobs run, as the flags say."""
    if args.executor == "local":
        if args.address or args.ray_cpus:
            raise SweepError("--address and --ray-cpus apply to --executor ray")
        return LocalExecutor(args.cpus)
    return RayExecutor(args.cpus, args.address, args.ray_cpus)


def line(result: Result) -> str:
    """One finished job: its name and time, or the last line of its traceback (the whole is in its file)."""
    if "error" in result:
        return f"{result['name']}: ERROR {result['error'].strip().splitlines()[-1]}"
    return f"{result['name']}: done ({result['seconds']:.0f} s)"


def run(todo: list[Job], out: Path, where: Executor) -> None:
    """Run ``todo`` with a progress bar over jobs (done / total, elapsed, ETA) and a line per job."""
    columns = (TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("jobs", total=len(todo))

        def done(result: Result) -> None:
            bar.console.print(line(result))
            bar.advance(task)

        run_sweep(todo, out, where, done)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/train_all", help="results folder")
    ap.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="local: one job after another in this process; ray: jobs side by side as Ray tasks "
                         "(pip install emgflow-rt[ray])")
    ap.add_argument("--cpus", type=int, default=1, help="CPUs (torch threads) per job")
    ap.add_argument("--address", help="ray: an existing cluster (default: a new local Ray, shut down at the end)")
    ap.add_argument("--ray-cpus", type=int, help="ray: CPUs of the new local Ray (default: all of this machine)")
    ap.add_argument("--quick", action="store_true", help="one subject per group")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds for every model job, e.g. 0,1,2")
    ap.add_argument("--only", default="", help="run only jobs whose name matches this regular expression "
                                               "(re.search), e.g. 'db1-s[0-9]+-(lstm_cnn-improved|baselines)'")
    ap.add_argument("--summarize", action="store_true", help="only rebuild the summary from finished jobs")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    try:
        if not args.summarize:
            seeds = tuple(int(k) for k in args.seeds.split(","))
            selected = [j for j in jobs(args.quick, seeds) if re.search(args.only, j.name)]
            todo = pending(selected, out)
            print(f"{len(todo)} jobs to run, {len(selected) - len(todo)} finished ones skipped; {args.executor}, "
                  f"{args.cpus} CPU(s) per job (pid {os.getpid()})", flush=True)
            if todo:
                with executor(args) as where:
                    run(todo, out, where)
        summary = summarize(out)
    except SweepError as exc:  # a results folder or a job list that cannot run: the message says why
        sys.exit(f"train_all: {exc}")
    print((out / "summary.md").read_text())
    sys.exit(1 if summary["errors"] else 0)


if __name__ == "__main__":
    main()
