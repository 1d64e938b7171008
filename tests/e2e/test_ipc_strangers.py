"""ipc runs admit only their own peers on data edges (PLAIN with a per-run password, keys.Plain): a
process of the same user that subscribes to a lossless output and never reads is refused and counted,
and cannot stall it; a declared consumer that stops reading is still reported by name."""

from __future__ import annotations

import stat
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zmq

from emgflow.keys import RUN_PASSWORD

from .procs import kill_started, start_run, wait_for
from .test_curve import _specs


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.timeout(180)
def test_strangers_on_the_ipc_endpoint_of_a_lossless_edge_are_refused_and_it_keeps_flowing(tmp_path):
    """Two subscribers that never read join the source's ipc endpoint (a plain zmq SUB, and one with
    PLAIN and a guessed password): 10,000 messages, far more than their pipes would hold, all reach
    the recorder in order, and the guessing one is counted as refused."""
    count = 10_000
    g = write(tmp_path, f"""
        nodes:
          source: {{type: pulse, params: {{rate: 2000, count: {count}, channels: 2}}}}
          rec: {{type: npz, inputs: {{in: source.out}}, params: {{path: rec.npz}}}}
        """)
    run = start_run(g)
    ctx = zmq.Context()
    try:
        specs = _specs(run, 2)
        out = specs["source"].nodes[0].outputs["out"]
        password = Path(specs["source"].plain.password_file)
        assert password.parent == Path(out.endpoint.removeprefix("ipc://")).parent and password.name == RUN_PASSWORD
        assert stat.S_IMODE(password.stat().st_mode) == 0o600 and password.read_text() not in specs["source"].to_json()
        strangers = [ctx.socket(zmq.SUB), ctx.socket(zmq.SUB)]
        strangers[1].plain_username, strangers[1].plain_password = b"rec", b"guess"
        for sock in strangers:
            sock.linger = 0
            sock.rcvhwm = 10
            sock.subscribe(b"")
            sock.connect(out.endpoint)
        _, err = run.communicate(timeout=120)
        assert all(not sock.poll(0) for sock in strangers)  # never admitted: nothing reached them
    finally:
        ctx.destroy(linger=0)
        kill_started()
    assert run.returncode == 0, err
    assert "source: refused" in err and "stalled" not in err, err
    emg = np.load(tmp_path / "rec.npz")["emg"]
    np.testing.assert_array_equal(emg[:, 0], np.arange(count))


@pytest.mark.timeout(120)
def test_a_declared_consumer_that_stops_reading_is_reported_by_name(tmp_path):
    """`print` writes to the run's stdout, which this test never reads: once the pipe is full it
    blocks, stops reading its input, and the lossless source's wait is reported naming it."""
    g = write(tmp_path, """
        nodes:
          source: {type: pulse, params: {rate: 2000, channels: 2}}
          printer: {type: print, inputs: {in: source.out}}
        """)
    run = start_run(g)
    try:
        lines: list[str] = []
        assert wait_for(lambda: _line(run, lines, "stalled"), 90), "".join(lines)
        assert "source: stalled: its output 'out' has waited" in lines[-1] and "(printer) to read" in lines[-1], lines
    finally:
        kill_started()


def _line(run, lines: list[str], text: str) -> bool:
    """Read the run's next stderr line into ``lines``; True once one holds ``text``."""
    line = run.stderr.readline()
    lines.append(line)
    return text in line
