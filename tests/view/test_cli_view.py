"""`emgflow run --view` refuses what it cannot do with a clear message and exit 2, before any node starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

GRAPH = Path(__file__).with_name("graph.yaml")


def test_a_taken_port_is_a_clear_error(data_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "emgflow.cli.app", "run", str(GRAPH), "-q", "--view", "--view-port", str(port)],
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "EMGFLOW_DATA": str(data_dir)})
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "running view-test" not in out.stderr  # no node was started
