"""Shared fixtures: the real recordings in ../shared/data (or $EMGFLOW_DATA)."""

from __future__ import annotations

import pytest

from emgflow.data import DataMissing, data_root


@pytest.fixture(scope="session")
def data_dir():
    """The shared data folder; the test is skipped, saying where we looked, when it is absent."""
    try:
        return data_root()
    except DataMissing as exc:  # pragma: no cover - CI always has the data
        pytest.skip(str(exc))
