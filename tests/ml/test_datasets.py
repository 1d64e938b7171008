"""Windows from real recordings: labels at the last sample, rest back-fill, disjoint repetition splits."""

from __future__ import annotations

import numpy as np
import pytest

from emgflow.ml.datasets import (backfill_rest, classification_windows, dataset, load_subject, reordered, run_pipeline,
                                 segment_ids, shuffled_units, windows_from)
from emgflow.recordings import load


@pytest.fixture(scope="module")
def db1_s1(data_dir):
    return load_subject(dataset("db1"), 1)


def test_backfill_gives_rest_the_following_repetition(db1_s1):
    rec = db1_s1.recordings[0]
    label, rep = rec.streams["label"][:, 0], rec.streams["repetition"][:, 0]
    filled = backfill_rest(label, rep)
    assert np.array_equal(filled[label != 0], rep[label != 0])
    assert (filled > 0).all()
    starts = np.flatnonzero((label[1:] != 0) & (label[:-1] == 0)) + 1  # first sample of each movement
    assert all(filled[s - 1] == rep[s] for s in starts)


def test_shuffled_units_keep_every_sample_and_break_the_blocked_order(db1_s1):
    rec = db1_s1.recordings[0]
    label, rep = rec.streams["label"][:, 0], rec.streams["repetition"][:, 0]
    order = shuffled_units(label, rep, seed=0)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(label)))  # each sample exactly once
    # A unit (a repetition and the rest before it) starts at sample 0 and where a movement ends,
    # except after the last movement, whose trailing rest stays with it.
    ends = np.flatnonzero((label[:-1] != 0) & (label[1:] != label[:-1])) + 1
    starts = np.r_[0, ends[:-1]]
    assert len(starts) == 12 * 10
    jumps = order[np.r_[0, np.flatnonzero(np.diff(order) != 1) + 1]]
    assert set(jumps.tolist()) <= set(starts.tolist())  # the order jumps only to a unit's start: none split
    out = reordered(rec, order)
    np.testing.assert_array_equal(out.emg, rec.emg[order])
    np.testing.assert_array_equal(out.streams["repetition"][:, 0], rep[order])

    def movement_runs(lab: np.ndarray) -> list[int]:
        moves = lab[lab != 0]
        return moves[np.r_[True, moves[1:] != moves[:-1]]].tolist()
    assert len(movement_runs(label)) == 12  # recorded: ten repetitions of each movement in a row
    assert len(movement_runs(out.streams["label"][:, 0])) > 100  # replayed: next movement mostly another


def test_pipeline_rows_are_labelled_by_their_last_sample(data_dir):
    rec = load(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat")
    emg = rec.emg[:6000]
    pipe = [{"type": "rms", "window": 20, "step": 2}, {"type": "emg_image", "window": 15, "step": 15, "norm": "none"}]
    rows, last, rate = run_pipeline(pipe, emg, rec.rate)
    k = np.arange(len(rows))
    assert rate == 200.0 / 30 and rows.shape[1:] == (1, 15, 16)
    np.testing.assert_array_equal(last, (k * 15 + 14) * 2 + 19)
    # The newest frame of image k is the RMS of the 20 raw samples ending at its label sample.
    i = 11
    np.testing.assert_allclose(rows[i, 0, -1], np.sqrt(np.mean(emg[last[i] - 19:last[i] + 1].astype(float) ** 2, 0)),
                               rtol=1e-5)


def test_decimated_pipeline_rows_keep_their_label_sample(data_dir):
    rec = load(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat")
    emg = rec.emg[:6000]
    pipe = [{"type": "rms", "window": 20, "step": 2}, {"type": "decimate", "factor": 3},
            {"type": "emg_image", "window": 15, "step": 15, "norm": "none"}]
    rows, last, rate = run_pipeline(pipe, emg, rec.rate)
    k = np.arange(len(rows))
    n_rms = (6000 - 20) // 2 + 1
    n_kept = -(-n_rms // 3)  # decimation keeps rows 0, 3, 6, ...
    assert rate == 200.0 / 90 and len(rows) == (n_kept - 15) // 15 + 1
    np.testing.assert_array_equal(last, ((k * 15 + 14) * 3) * 2 + 19)


def test_splits_are_disjoint_repetitions(db1_s1):
    pipe = [{"type": "emg_image", "window": 15, "step": 15, "norm": "none"}]
    w = classification_windows(db1_s1, pipe, 5, 15)
    spec = db1_s1.spec
    assert set(np.unique(w["test"].repetition)) == set(spec.test)
    assert set(np.unique(w["val"].repetition)) == set(spec.val)
    assert not set(np.unique(w["train"].repetition)) & (set(spec.test) | set(spec.val))
    assert len(w["train"]) > 2.5 * len(w["test"])  # dense training hop
    # Tsinganos' subsampling: one rest segment per repetition.
    test = w["test"]
    for rep in spec.test:
        assert len(np.unique(test.segment[(test.label == 0) & (test.repetition == rep)])) == 1
    labels = set(np.unique(test.label).tolist())
    assert labels == set(range(13))


def test_train_all_rest_keeps_every_training_rest_segment_and_the_test_protocol(db1_s1):
    pipe = [{"type": "emg_image", "window": 15, "step": 15, "norm": "none"}]
    sub, full = (classification_windows(db1_s1, pipe, 5, 15, train_all_rest=a) for a in (False, True))
    for part in ("test", "val"):
        np.testing.assert_array_equal(sub[part].index, full[part].index)
    rest_segments = [len(np.unique(w["train"].segment[w["train"].label == 0])) for w in (sub, full)]
    reps = len(np.unique(sub["train"].repetition))
    assert rest_segments[0] == reps and rest_segments[1] >= 12 * reps  # one per rest between 12 movements
    moving = sub["train"].label != 0
    np.testing.assert_array_equal(sub["train"].index[moving], full["train"].index[full["train"].label != 0])


def test_every_row_label_matches_the_recording(db1_s1):
    rec = db1_s1.recordings[0]
    pipe = [{"type": "emg_image", "window": 15, "step": 15, "norm": "none"}]
    w = windows_from([rec], pipe, target="glove", target_columns=[1, 2])
    last = w.index * 15 + 14
    np.testing.assert_array_equal(w.label, rec.streams["label"][last, 0])
    np.testing.assert_array_equal(w.target, rec.streams["glove"][last][:, [1, 2]])


def test_segment_ids_change_with_any_key():
    a, b = np.array([0, 0, 1, 1, 1, 0]), np.array([5, 6, 6, 6, 6, 6])
    np.testing.assert_array_equal(segment_ids(a, b), [0, 1, 2, 2, 2, 3])


def test_sessions_name_where_a_subject_was_recorded(data_dir):
    assert load_subject(dataset("coteallard"), "Male0").sessions() == ["training0"]
    assert load_subject(dataset("db1"), 4).sessions() == ["S4_A1_E1"]
