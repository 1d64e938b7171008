"""Shared fixtures: the real recordings in ../shared/data (or $EMGFLOW_DATA)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from emgflow.data import DataMissing, data_root


@pytest.fixture(scope="session")
def data_dir():
    """The shared data folder; the test is skipped, saying where we looked, when it is absent."""
    try:
        return data_root()
    except DataMissing as exc:  # pragma: no cover - CI always has the data
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def recording_file(data_dir) -> Callable[[str], Path]:
    """``recording_file(rel)``: one shared recording's path; the test is skipped, naming it, when it is missing."""
    def find(rel: str) -> Path:
        path = data_dir / rel
        if not path.exists():
            pytest.skip(f"recording not found: {path}")
        return path
    return find
