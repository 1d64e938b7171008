"""Where the shared real recordings live: ``$EMGFLOW_DATA`` or ``../shared/data`` beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "EMGFLOW_DATA"
_REPO = Path(__file__).resolve().parent.parent


class DataMissing(FileNotFoundError):
    """The shared recordings are not where we look; the message says where we looked."""


def data_root() -> Path:
    """The folder holding the shared recordings (raises DataMissing, naming the places tried)."""
    tried = []
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    candidates += [_REPO.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        tried.append(str(c))
        if c.is_dir():
            return c.resolve()
    raise DataMissing(f"shared EMG recordings not found (tried {', '.join(tried)}); "
                      f"set {ENV_VAR} to the folder holding e.g. ninapro-db5-e1/")


def data_path(relative: str) -> Path:
    """A file or folder inside the data root; raises DataMissing with its full path if absent."""
    path = data_root() / relative
    if not path.exists():
        raise DataMissing(f"recording not found: {path}")
    return path
