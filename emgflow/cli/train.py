"""`emgflow train`: train a seed model on a shared dataset and write one checkpoint file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import console, err_console

CONFIG_KEYS = ("model", "dataset", "subject", "recipe", "mode", "wp", "wp_mode", "frames", "hidden", "layout",
               "readout", "attention", "members", "train_step", "seed", "threads", "device", "epochs", "lr", "batch",
               "highpass", "refit", "all_rest", "init", "train_subjects")


def _config(path: Path | None) -> dict[str, Any]:
    """Options from a small YAML file (command-line flags win; an empty key means the default)."""
    if path is None:
        return {}
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a mapping of options", param_hint="--config")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise typer.BadParameter(f"{path}: unknown option(s) {unknown}; known: {', '.join(CONFIG_KEYS)}",
                                 param_hint="--config")
    return {k: v for k, v in data.items() if v is not None}


def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint file to write (.pt).")],
    model: Annotated[Optional[str], typer.Option(
        help="lstm_cnn, cnn (classifiers); convlstm, lstm (regressors).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="db1, db5, coteallard, grip.")] = None,
    subject: Annotated[Optional[str], typer.Option(
        help="Subject id (e.g. 1, Male0, v8); the test subject in cross mode.")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file with any of these options.")] = None,
    recipe: Annotated[Optional[str], typer.Option(
        help="paper or improved (classifiers); paper_b or fast_b (regressors).")] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="subject: train and test on one subject; cross: train on the others.")] = None,
    train_subjects: Annotated[Optional[str], typer.Option(
        help="Cross mode: train on these subjects only (comma-separated), e.g. a pool that excludes "
             "every subject you will adapt to and test on.")] = None,
    wp: Annotated[Optional[bool], typer.Option(
        "--wp/--no-wp", help="lstm_cnn: stack the wavelet-packet image.")] = None,
    wp_mode: Annotated[Optional[str], typer.Option(help="WP image: tree15 or framewise.")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Image height / exposure length in frames.")] = None,
    hidden: Annotated[Optional[str], typer.Option(help="LSTM hidden size, or ConvLSTM channels as 64,32.")] = None,
    layout: Annotated[Optional[str], typer.Option(
        help="convlstm: 'image' (the paper: 3x3 cells over electrodes x frames) or 'channels' "
             "(electrodes as channels of 1-D cells over frames; default outside the paper recipe).")] = None,
    readout: Annotated[Optional[str], typer.Option(
        help="convlstm: 'maps' (the paper: one map per joint, a shared Linear reads each) or 'dense' "
             "(one Linear over the last hidden state; default outside the paper recipe).")] = None,
    attention: Annotated[Optional[str], typer.Option(
        help="lstm_cnn: 'context' (the paper: the attention contexts feed the CNN) or 'attentional' "
             "(Luong's tanh(W_c [context; hidden state]) per step).")] = None,
    members: Annotated[Optional[int], typer.Option(
        help="A seed ensemble of N models (seeds seed .. seed+N-1): regressors' outputs, classifiers' "
             "class probabilities averaged.")] = None,
    init: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False,
        help="Start from this checkpoint's weights (same model, pipeline and outputs), e.g. a --mode cross "
             "model of other subjects, to adapt it to this subject.")] = None,
    train_step: Annotated[Optional[int], typer.Option(help="Hop between training images (samples).")] = None,
    highpass: Annotated[Optional[float], typer.Option(
        help="Raw EMG: a causal 4th-order high-pass (Hz) first in the pipeline.")] = None,
    refit: Annotated[Optional[bool], typer.Option(
        "--refit/--no-refit", help="After validation picks the epoch count, retrain on all training reps.")] = None,
    all_rest: Annotated[Optional[bool], typer.Option(
        "--all-rest/--subsampled-rest",
        help="Classifiers: train on every rest segment (test keeps the dataset's rest subsampling).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the recipe's epochs.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Override the recipe's learning rate.")] = None,
    batch: Annotated[Optional[int], typer.Option(help="Override the recipe's batch size.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed: same seed, same model.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA when present), cpu or cuda.")] = None,
) -> None:
    """Train a model (per subject or cross-subject) and save weights, config, normalisation and test metrics."""
    flags = {k: v for k, v in locals().items() if k in CONFIG_KEYS and v is not None}
    opts = {**_config(config), **flags}
    for key in ("model", "dataset", "subject"):
        if opts.get(key) is None:
            raise typer.BadParameter(f"--{key} is required (on the command line or in --config)", param_hint=f"--{key}")
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..ml import checkpoint
    from ..ml.datasets import dataset as get_dataset, parse_subject
    from ..ml.train import train_model

    torch.set_num_threads(int(opts.get("threads", 1)))
    try:
        spec = get_dataset(opts["dataset"])
        subj = parse_subject(spec, str(opts["subject"]))
        pool = opts.get("train_subjects")
        if isinstance(pool, (str, int)):
            pool = str(pool).split(",")
        pool = [parse_subject(spec, str(s).strip()) for s in pool] if pool is not None else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    hid: Any = opts.get("hidden")
    if isinstance(hid, str):
        hid = [int(h) for h in hid.split(",")] if "," in hid or opts["model"] == "convlstm" else int(hid)
    overrides = {k: opts[k] for k in ("epochs", "lr", "batch", "refit") if k in opts}
    if "all_rest" in opts:
        overrides["train_all_rest"] = opts["all_rest"]
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
            ckpt = train_model(spec.name, subj, opts["model"], recipe_name=opts.get("recipe"), overrides=overrides,
                               mode=opts.get("mode", "subject"), wp=opts.get("wp", True),
                               wp_mode=opts.get("wp_mode", "tree15"), frames=opts.get("frames"), hidden=hid,
                               train_step=int(opts.get("train_step", 5)), seed=int(opts.get("seed", 0)),
                               device=opts.get("device", "auto"), highpass=opts.get("highpass"),
                               layout=opts.get("layout"), readout=opts.get("readout"),
                               attention=opts.get("attention"),
                               members=int(opts.get("members", 1)), init=opts.get("init"), train_subjects=pool,
                               progress=progress)
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
