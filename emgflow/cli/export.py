"""`emgflow export MODEL.pt`: the deployable .onnx file that serves without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, err_console


def export(
    model: Annotated[Path, typer.Argument(help="Checkpoint written by `emgflow train` (.pt).")],
    out: Annotated[Path | None, typer.Option(help="Where to write (default: MODEL with the .onnx suffix).")] = None,
) -> None:
    """Export a checkpoint to one .onnx file (network + description) that classify / regress serve
    with ONNX Runtime alone: a device that only serves needs no torch."""
    from ..ml.checkpoint import CheckpointError
    from ..ml.deploy import export as write

    target = out or model.with_suffix(".onnx")
    try:
        write(model, target)
    except CheckpointError as exc:
        err_console.print(f"[red]error[/] {exc}")
        raise typer.Exit(code=2) from None
    console.print(f"wrote {target} (use it as `model:` of a classify / regress node)")
