"""`emgflow train`: train a seed model on a shared dataset and write one checkpoint file.

Its options are ``TrainConfig``'s fields (``emgflow.ml.config``): every field is a flag and a key of
the ``--config`` YAML file, with the field's help; a flag left out is taken from the file, then
from the field's default.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Optional, get_args, get_type_hints

import typer

from ..errors import EmgflowError
from ..ml.config import OPTIONS, REQUIRED, TrainConfig
from .common import console, err_console

PLAIN = (str, int, float, bool, Path)
"""Field types a flag takes as such; a flag for any other field passes text that ``TrainConfig.from_options`` reads."""


def _config(path: Path | None) -> dict[str, Any]:
    """Options from a small YAML file (an empty key means the default)."""
    if path is None:
        return {}
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a mapping of options", param_hint="--config")
    unknown = sorted(set(data) - set(OPTIONS))
    if unknown:
        raise typer.BadParameter(f"{path}: unknown option(s) {unknown}; known: {', '.join(OPTIONS)}",
                                 param_hint="--config")
    return {k: v for k, v in data.items() if v is not None}


def train(out: Path, config: Path | None = None, **flags: Any) -> None:
    """Train a model (per subject or cross-subject) and save weights, config, normalisation and test metrics."""
    opts = {**_config(config), **{k: v for k, v in flags.items() if v is not None}}
    for key in REQUIRED:
        if opts.get(key) is None:
            raise typer.BadParameter(f"--{key} is required (on the command line or in --config)", param_hint=f"--{key}")
    try:
        run = TrainConfig.from_options(opts)
    except (ValueError, EmgflowError) as exc:  # a bad dataset file: every error with file:line:col
        raise typer.BadParameter(str(exc)) from None
    train_and_save(run, out)


def train_and_save(run: TrainConfig, out: Path) -> dict[str, Any]:
    """Train ``run`` with its progress on the console, save the checkpoint to ``out`` and print its
    test scores and pipeline (``emgflow train``, and ``emgflow calibrate`` once its take is recorded)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..ml import checkpoint
    from ..ml.train import train_model

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console) as bar:
        try:
            ckpt = train_model(run, EpochLines(bar))
        except (ValueError, EmgflowError) as exc:  # CheckpointError; a take the dataset file cannot read
            err_console.print(f"[bold red]error[/] {exc}")
            raise typer.Exit(code=2) from None
    path = checkpoint.save(ckpt, out)
    m = ckpt["metrics"]
    if ckpt["task"] == "classify":
        console.print(f"test: per-window {m['test_acc']:.3f}, repetition vote {m['vote_acc']:.3f}; "
                      f"its own training windows {m['train_acc']:.3f} (dropout and noise off)")
    else:
        console.print(f"test: CC {m['cc']:.3f}, RMSE {m['rmse']:.3f}, NRMSE {m['nrmse']:.3f}")
    console.print(f"pipeline: {checkpoint.describe_pipeline(ckpt['pipeline'])} -> "
                  f"{'classify' if ckpt['task'] == 'classify' else 'regress'}")
    if "init" in ckpt["data"]:
        origin = ckpt["data"]["init"]
        console.print(f"adapted ({origin['adapt']}) from {origin['path']}: {origin['dataset']} subject(s) "
                      f"{', '.join(origin['subjects'])}")
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return ckpt


class EpochLines:
    """Progress of a run: a bar within the epoch, then one line per epoch with the epoch count, the
    figures and the time left in this phase; the refit and each ensemble member say when they start,
    so a refit does not read as a second run."""

    def __init__(self, bar: Any) -> None:
        self.bar, self.task = bar, bar.add_task("epoch 1", total=None, info="")
        self.stage: tuple[Any, Any] | None = None
        self.start = time.monotonic()

    def __call__(self, report: dict[str, Any]) -> None:
        stage = (report.get("member"), report.get("phase"))
        if stage != self.stage:
            self.stage, self.start = stage, time.monotonic()
            self.bar.console.print(self._announce(report))
        unvalidated = report.get("phase") in ("refit", "adapt")  # phases that train on every training rep
        label = f"{report['phase']} " if unvalidated else ""
        if "batch" in report:
            self.bar.update(self.task, description=f"{label}epoch {report['epoch'] + 1}/{report['epochs']}",
                            completed=report["batch"], total=report["batches"], info=f"loss {report['loss']:.4f}")
            return
        done, total = report["epoch"], report["epochs"]
        left = (time.monotonic() - self.start) / done * (total - done)
        train = "  ".join(f"{k[6:]} {v:.4f}" for k, v in report.items() if k.startswith("train_"))
        val = "  ".join(f"{k[4:]} {v:.4f}" for k, v in report.items() if k.startswith("val_"))
        best = "  *" if report.get("best") and not unvalidated else ""
        self.bar.console.print(f"{label}epoch {done:3d}/{total}  train {train}{'  | validation ' + val if val else ''}"
                               f"  ETA {int(left // 60)}:{int(left % 60):02d}{best}")

    @staticmethod
    def _announce(report: dict[str, Any]) -> str:
        member = f"member {report['member']} of {report['members']}: " if report.get("members", 1) > 1 else ""
        if report.get("phase") == "adapt":
            return (f"adapting the --init model: {report['epochs']} epochs on this run's training repetitions "
                    f"(a calibration cycle spares none to validate on)")
        if report.get("phase") == "refit":
            return (f"{member}refit: a fresh model on the training and validation repetitions for the "
                    f"{report['epochs']} epochs validation chose (nothing left to validate on)")
        return (f"{member}training: validation picks the epoch (*); train loss / acc run over the epoch's "
                f"batches, dropout and noise on")


def _flag(name: str, hint: Any, meta: dict[str, Any]) -> inspect.Parameter:
    """The typer option of one ``TrainConfig`` field; ``None`` when not given, so ``--config`` can fill it in."""
    kinds = [t for t in get_args(hint) if t is not type(None)] or [hint]
    kind = kinds[0] if len(kinds) == 1 and kinds[0] in PLAIN else str
    extra = {k: v for k, v in meta.items() if k != "flag"}
    names = meta.get("flag", ())
    option = typer.Option(*([names] if isinstance(names, str) else names), **extra)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


def _signature() -> inspect.Signature:
    """``train``'s parameters as typer reads them: the output file, the config's fields, ``--config``."""
    hints = get_type_hints(TrainConfig)
    own = [inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[
        Path, typer.Option("--out", "-o", help="Checkpoint file to write (.pt).")])]
    config = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[Path], typer.Option(help="YAML file with any of these options.")])
    flags = [_flag(f.name, hints[f.name], dict(f.metadata)) for f in fields(TrainConfig)]
    return inspect.Signature(own + flags[:len(REQUIRED)] + [config] + flags[len(REQUIRED):])


train.__signature__ = _signature()  # type: ignore[attr-defined]
