import pytest

from .netns import two_hosts  # noqa: F401  (hosts in network namespaces, for any e2e test)
from .procs import kill_started


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    yield
    kill_started()
