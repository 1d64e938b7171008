"""`emgflow train`: train a seed model on a shared dataset and write one checkpoint file.

Its options are ``TrainConfig``'s fields (``emgflow.ml.config``): every field is a flag and a key of
the ``--config`` YAML file, with the field's help; a flag left out is taken from the file, then
from the field's default.
"""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Optional, Union, get_args, get_type_hints

import typer

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
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..ml import checkpoint
    from ..ml.train import train_model

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("epoch 1", total=None, info="")

        def progress(d: dict[str, Any]) -> None:
            if "batch" in d:
                bar.update(task, description=f"epoch {d['epoch'] + 1}", completed=d["batch"], total=d["batches"],
                           info=f"loss {d['loss']:.4f}")
            else:
                figs = "  ".join(f"{k} {v:.4f}" for k, v in d.items() if k not in ("epoch", "best", "lr"))
                bar.console.print(f"epoch {d['epoch']:3d}  {figs}{'  *' if d.get('best') else ''}")

        try:
            ckpt = train_model(run, progress)
        except (ValueError, checkpoint.CheckpointError) as exc:
            err_console.print(f"[bold red]error[/] {exc}")
            raise typer.Exit(code=2) from None
    path = checkpoint.save(ckpt, out)
    m = ckpt["metrics"]
    if ckpt["task"] == "classify":
        console.print(f"test: per-window {m['test_acc']:.3f}, repetition vote {m['vote_acc']:.3f}, "
                      f"train {m['train_acc']:.3f}")
    else:
        console.print(f"test: CC {m['cc']:.3f}, RMSE {m['rmse']:.3f}, NRMSE {m['nrmse']:.3f}")
    console.print(f"pipeline: {checkpoint.describe_pipeline(ckpt['pipeline'])} -> "
                  f"{'classify' if ckpt['task'] == 'classify' else 'regress'}")
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


def _flag(name: str, hint: Any, meta: dict[str, Any]) -> inspect.Parameter:
    """The typer option of one ``TrainConfig`` field; ``None`` when not given, so ``--config`` can fill it in."""
    kinds = [t for t in (get_args(hint) if get_args(hint) and hint is not Any else (hint,)) if t is not type(None)]
    kind = kinds[0] if len(kinds) == 1 and kinds[0] in PLAIN else str
    extra = {k: v for k, v in meta.items() if k != "flag"}
    option = typer.Option(*([meta["flag"]] if "flag" in meta else []), **extra)
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
