"""`emgflow eval`: score a checkpoint on its test repetitions and write a report folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import EmgflowError
from .common import console, err_console


def eval_(
    checkpoint_file: Annotated[Path, typer.Argument(help="Checkpoint written by `emgflow train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")],
    subject: Annotated[Optional[str], typer.Option(
        help="Subject to test on (default: the checkpoint's test subject).")] = None,
    baselines: Annotated[bool, typer.Option(
        "--baselines/--no-baselines",
        help="Also score the classical baselines on the same split: LDA and RF (classifiers), "
             "ridge and a sparse GP (regressors).")] = True,
    compare: Annotated[Optional[list[Path]], typer.Option(
        help="Other checkpoints (e.g. the LSTM baseline) scored alongside.")] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
) -> None:
    """Metrics JSON, confusion / per-class / loss / joint-trace PNGs and per-joint CC, RMSE, NRMSE."""
    import torch
    from rich.progress import Progress

    from ..ml import checkpoint
    from ..ml.baselines import run_baselines, run_regression_baselines
    from ..ml.datasets import dataset, load_subject, parse_subject
    from ..ml.evaluate import evaluate
    from ..ml.report import write_report

    torch.set_num_threads(threads)
    try:
        ckpt = checkpoint.load(checkpoint_file)
        spec = dataset(ckpt["data"]["dataset"])
        subj = load_subject(spec, parse_subject(spec, subject or ckpt["data"]["test_subject"]))
        want = ckpt["input"]
        if (subj.rate, subj.channels) != (want["rate"], want["channels"]):
            raise checkpoint.CheckpointError(f"{subj.describe()} has {subj.channels} channels at {subj.rate:g} Hz; "
                                             f"the model was trained on {want['channels']} at {want['rate']:g} Hz")
    except (EmgflowError, ValueError) as exc:  # CheckpointError; a dataset file that no longer reads
        err_console.print(f"[bold red]error[/] {exc}")
        raise typer.Exit(code=2) from None
    metrics = evaluate(ckpt, subj)
    reps = ", ".join(map(str, ckpt["data"]["test_reps"]))
    rows = (f"{metrics['windows']} windows in {metrics['segments']} segments" if ckpt["task"] == "classify"
            else f"{len(metrics['trace']['true'])} outputs")
    console.print(f"scoring {spec.name} subject {subj.subject} (session {', '.join(subj.sessions())}) on its test "
                  f"repetitions {reps}: {rows}; the model was trained on subject(s) "
                  f"{', '.join(ckpt['data']['subjects'])}")
    others = {}
    if baselines and ckpt["task"] == "classify":
        others.update(run_baselines(subj, ckpt["pipeline"], ckpt["data"].get("train_step", 5), ckpt.get("seed", 0)))
    elif baselines:
        with Progress(*Progress.get_default_columns(), console=console, transient=True) as bar:
            task = bar.add_task("sparse-GP baseline (one GP per output)", total=None)
            others.update(run_regression_baselines(
                subj, ckpt["pipeline"], ckpt.get("seed", 0),
                progress=lambda done, total: bar.update(task, completed=done, total=total)))
    for path in compare or []:
        other = checkpoint.load(path)
        others[f"{other['config']['model']} ({path.name})"] = evaluate(other, subj)
    files = write_report(out, ckpt, metrics, others)
    if ckpt["task"] == "classify":
        rest = ckpt["outputs"][0]  # class 0, named as the dataset names it
        for name, m in [("model", metrics)] + list(others.items()):
            e = m["errors"]
            console.print(f"{name:>24}: per-window {m['test_acc']:.3f}  vote {m['vote_acc']:.3f}  "
                          f"top-3 {m['top3_acc']:.3f}  wrong windows: movement as {rest} "
                          f"{sum(e['movement_as_rest'].values())}, {rest} as movement {e['rest_as_movement']}, "
                          f"movement as another {sum(e['movement_as_other'].values())}")
    else:
        for name, m in [("model", metrics)] + list(others.items()):
            console.print(f"{name:>24}: CC {m['cc']:.3f}  RMSE {m['rmse']:.3f}  NRMSE {m['nrmse']:.3f}")
    console.print(f"wrote {len(files)} files to {out}")
