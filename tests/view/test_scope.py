"""A scope shows the same rows whatever the chunking: offline x[::step], newest `capacity` kept."""

from __future__ import annotations

import numpy as np
import pytest

from emgflow.recordings import load
from emgflow.testing import chunk
from emgflow.view.latency import LatencyHistograms
from emgflow.view.scope import MAX_COLUMNS, Scope, display_step


def _offline(x: np.ndarray, step: int, capacity: int) -> np.ndarray:
    return x[::step][-capacity:]


@pytest.mark.parametrize("rate", [200.0, 2048.0])
def test_scope_equals_offline_whatever_the_chunking(recording_file, rate):
    rec = load(recording_file("ninapro-db5-e1/s1/S1_E1_A1.mat"))
    x = rec.emg[:20_000].astype(np.float32)
    step = display_step(rate)
    for seed in range(3):
        scope = Scope(capacity=3000)
        cursor, got_t, got_y = 0, [], []
        for i, msg in enumerate(chunk(x, np.random.default_rng(seed), rate=rate, max_size=97)):
            scope.add(msg, rx_s=0.0)
            if i % 7 == 0:  # a browser reading on from its cursor now and then
                cursor, t, y = scope.since(cursor)
                got_t.append(t)
                got_y.append(y)
        cursor, t, y = scope.since(cursor)
        np.testing.assert_array_equal(np.concatenate(got_y + [y]), x[::step])
        np.testing.assert_allclose(np.concatenate(got_t + [t]), np.arange(0, len(x), step) / rate)
        _, _, ring = scope.since(0)  # a new browser gets the newest rows the ring holds
        np.testing.assert_array_equal(ring, _offline(x, step, 3000))
    assert step == (1 if rate == 200.0 else 5)


def test_scope_caps_columns_and_restarts_on_a_new_width():
    scope = Scope(capacity=10)
    scope.add(chunk(np.ones((4, 100), np.float32), [4], rate=100.0)[0], 0.0)
    assert scope.columns == 100 and scope.since(0)[2].shape == (4, MAX_COLUMNS)
    scope.add(chunk(np.zeros((3, 2), np.float32), [3], rate=100.0)[0], 0.0)
    assert scope.since(0)[2].shape == (3, 2)


def test_latency_histogram_reads_the_sending_nodes_receive_stamp():
    h = LatencyHistograms(window=4)
    h.add([["source", 0, 1_000_000]])                                  # a source: no latency
    for ms in (1, 2, 3, 4, 50):                                        # the window keeps the newest 4
        h.add([["source", 0, 1_000_000], ["rms", 1_000_000 + ms * 1_000_000, 0]])
    snap = h.snapshot()
    assert list(snap["nodes"]) == ["rms"]
    rms = snap["nodes"]["rms"]
    assert rms["n"] == 4 and sum(rms["counts"]) == 4
    assert rms["p50_ms"] == pytest.approx(np.percentile([2, 3, 4, 50], 50))
