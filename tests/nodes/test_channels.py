"""Select: channel picking and reordering on a real recording; bad indices refused."""

from __future__ import annotations

import numpy as np
import pytest

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.channels import Select


@pytest.fixture(scope="module")
def tdc(data_dir):
    return np.loadtxt(data_dir / "3dc-armband/Participant2/train/EMG/3dc_EMG_gesture_0_7.txt", delimiter=",")


def test_select_reorders_and_repeats(tdc):
    node = Select(channels=[9, 0, -1, 3])
    got = concat(run_node(node, chunk(tdc, np.random.default_rng(0), rate=1000.0))["out"])
    np.testing.assert_array_equal(got, tdc[:, [9, 0, 9, 3]])


def test_indices_checked_against_the_stream(tdc):
    info = StreamInfo(rate=1000.0, channels=10, names=tuple(f"e{i}" for i in range(10)))
    assert Select(channels=[2, 1]).describe({"in": info})["out"] == StreamInfo(1000.0, 2, ("e2", "e1"))
    with pytest.raises(ParamError, match="index 10 is out of range for a 10-channel stream"):
        Select(channels=[0, 10]).describe({"in": info})
    with pytest.raises(ParamError, match="integer"):
        Select(channels=[0.5])
    with pytest.raises(ParamError, match="missing"):
        Select()
    node = Select(channels=[5])
    out = run_node(node, chunk(tdc[:, :4], rate=1000.0))["out"]  # narrower than declared: dropped, counted
    assert out == [] and node.counters["in.malformed"] > 0
