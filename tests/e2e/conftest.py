import pytest

from .procs import kill_started


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    yield
    kill_started()
