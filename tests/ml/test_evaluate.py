"""Scores computed by hand on small synthetic window sets."""

from __future__ import annotations

import numpy as np

from emgflow.ml.datasets import Windows
from emgflow.ml.evaluate import EDGE_WINDOWS, classification_metrics, error_kinds


def _windows(labels: list[int], segments: list[int]) -> Windows:
    n = len(labels)
    return Windows(np.zeros((n, 1), np.float32), np.ones(n, np.int64), np.asarray(segments), np.zeros(n, np.int64),
                   np.arange(n), np.asarray(labels, np.int64))


def test_error_kinds_place_each_wrong_window():
    assert EDGE_WINDOWS == 3
    # rest (4 rows), movement 1 (8 rows: onset 0-2, middle 3-4, end 5-7), movement 2 (2 rows: all onset)
    labels = [0] * 4 + [1] * 8 + [2] * 2
    segments = [0] * 4 + [1] * 8 + [2] * 2
    pred = [0, 2, 0, 1,  # two rest windows called a movement
            0, 1, 2, 0, 2, 1, 0, 0,  # movement 1: rest at onset, end x2, middle; another at onset, middle
            0, 1]  # movement 2: both onset, one as rest, one as another
    e = error_kinds(np.asarray(pred), _windows(labels, segments))
    assert e["rest_as_movement"] == 2
    assert e["movement_as_rest"] == {"onset": 2, "end": 2, "middle": 1}
    assert e["movement_as_other"] == {"onset": 2, "end": 0, "middle": 1}


def test_error_kinds_add_up_to_the_wrong_windows():
    rng = np.random.default_rng(0)
    labels = np.repeat(rng.integers(0, 5, 40), rng.integers(1, 12, 40))
    w = _windows(labels.tolist(), np.cumsum(np.r_[0, labels[1:] != labels[:-1]]).tolist())
    logits = rng.normal(size=(len(labels), 5))
    m = classification_metrics(logits, w, 5, [f"c{k}" for k in range(5)])
    e = m["errors"]
    wrong = sum(e["movement_as_rest"].values()) + sum(e["movement_as_other"].values()) + e["rest_as_movement"]
    assert wrong == round((1 - m["test_acc"]) * len(labels))
