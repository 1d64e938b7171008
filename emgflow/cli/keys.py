"""`emgflow keys NAME`: a host's CURVE key pair for authenticated, encrypted tcp graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..keys import create
from .common import console, err_console


def keys(
    name: Annotated[str, typer.Argument(help="The host's name: the files are NAME.key and NAME.key_secret.")],
    dir_: Annotated[Path, typer.Option("--dir", help="Folder for the pair (created 0700 if missing).")] = Path("."),
) -> None:
    """Create a host key pair. Give NAME.key (public) to the peers that must admit this host; NAME.key_secret
    (mode 0600) never leaves it. Exit 2 if the pair exists (it is never overwritten)."""
    try:
        public, secret = create(name, dir_)
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]error[/]: {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    console.print(f"public key: {public.resolve()}  (copy it into the `keys:` folder of the graphs that admit this host)\n"
                  f"secret key: {secret.resolve()}  (mode 0600: keep it on this host)", highlight=False)
