"""NaN or infinity never reaches a filter's state or a model: dropped where it arrives and counted."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from .procs import start_run

SOURCE = '''
import numpy as np
from emgflow import Msg, Node, Out, Param


class Glitchy(Node):
    """A 4-channel 200 Hz sine in chunks of 4; chunk `bad` holds one NaN (and chunk `bad`+1 an inf)."""
    bad = Param(int, 50)
    out = Out()

    def generate(self):
        t = np.arange(400 * 4)[:, None] / 200.0 + np.arange(4) / 40.0  # 1600 rows, 4 channels
        x = np.sin(2 * np.pi * 7 * t).astype(np.float32)
        for k in range(400):
            chunk = x[4 * k:4 * k + 4].copy()
            if k == self.bad:
                chunk[2, 1] = np.nan
            if k == self.bad + 1:
                chunk[0, 3] = np.inf
            yield Msg(data=chunk, rate=200.0, start=4 * k)
'''


@pytest.mark.parametrize("flags", [[], ["--fuse"]])
def test_a_nan_is_dropped_before_the_filter_and_counted(tmp_path, flags):
    (tmp_path / "glitchy.py").write_text(SOURCE)
    g = tmp_path / "g.yaml"
    g.write_text(textwrap.dedent("""
        nodes:
          source: {type: "glitchy:Glitchy"}
          hp: {type: highpass, inputs: {in: source.out}, params: {cutoff: 2.0}}
          rec: {type: npz, inputs: {in: hp.out}, params: {path: hp.npz}}
        """))
    run = start_run(g, "--stats", str(tmp_path / "stats.json"), *flags, env={"PYTHONPATH": str(tmp_path)})
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    nodes = json.loads((tmp_path / "stats.json").read_text())["nodes"]
    assert nodes["hp"]["in"]["in"]["nonfinite"] == 2 and nodes["hp"]["in"]["in"]["received"] == 400
    out = np.load(tmp_path / "hp.npz")["emg"]
    assert np.isfinite(out).all()
    assert len(out) == 398 * 4  # every good chunk went through; the filter kept working after the glitch
    assert np.abs(out[-400:]).max() > 0.5  # still the sine, not a poisoned (or zeroed) state
