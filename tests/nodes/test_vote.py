"""Vote: rejection, majority, hysteresis and segment votes; streaming equals offline on real decisions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io as sio
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.testing import chunk, concat, run_node
from emgflow.nodes.features import DEVICE_THRESHOLDS, extract
from emgflow.nodes.vote import NO_DECISION, Vote, decisions, segment_vote, vote
from emgflow.streaming import sliding_windows


@pytest.fixture(scope="module")
def lda_probs(data_dir):
    """Real class probabilities: LDA on HTD features of Ninapro DB5 S1 (upper Myo), trained on
    repetitions 1, 3, 4, 6 and applied to 2 and 5. Returns (probabilities, true labels, repetitions)."""
    m = sio.loadmat(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat")
    emg, label, rep = m["emg"][:, :8], m["restimulus"][:, 0], m["rerepetition"][:, 0]
    th = DEVICE_THRESHOLDS["myo"]
    feats = extract(sliding_windows(emg, 40, 8), "HTD", zc_threshold=th["zc"], ssc_threshold=th["ssc"],
                    wamp_threshold=th["wamp"])
    y, r = label[39::8][:len(feats)], rep[39::8][:len(feats)]
    train, test = np.isin(r, [1, 3, 4, 6]), np.isin(r, [2, 5])
    lda = LinearDiscriminantAnalysis().fit(feats[train], y[train])
    span = slice(np.flatnonzero(test)[0], np.flatnonzero(test)[-1] + 1)  # the test stretch, rest included
    return lda.predict_proba(feats[span]), y[span], r[span]


def changes(x: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(x.ravel())))


def test_node_equals_offline_and_smooths_real_decisions(lda_probs):
    probs, _, _ = lda_probs
    node = Vote(votes=7, hysteresis=3, reject=0.6)
    got = concat(run_node(node, chunk(probs, np.random.default_rng(0), rate=25.0, max_size=20))["out"])
    np.testing.assert_array_equal(got[:, 0], vote(probs, 7, 3, 0.6))
    raw = decisions(probs, 0.6)
    assert (raw == NO_DECISION).any()
    assert changes(got) < changes(raw) / 3


def test_majority_over_last_k_ties_to_most_recent():
    ids = np.array([[1], [1], [2], [2], [3], [3], [3], [1]])
    # windows of 3: [1] [1,1] [1,1,2] [1,2,2] [2,2,3] [2,3,3] [3,3,3] [3,3,1]
    assert vote(ids, votes=3).tolist() == [1, 1, 1, 2, 2, 3, 3, 3]
    # windows of 2 with ties: [1] [1,1] [1,2]->2 [2,2] [2,3]->3 [3,3] [3,3] [3,1]->1
    assert vote(ids, votes=2).tolist() == [1, 1, 2, 2, 3, 3, 3, 1]


def test_hysteresis_needs_m_consecutive_wins():
    ids = np.array([[4], [4], [4], [5], [4], [5], [5], [5], [4]])
    assert vote(ids, votes=1, hysteresis=1).tolist() == [4, 4, 4, 5, 4, 5, 5, 5, 4]
    assert vote(ids, votes=1, hysteresis=3).tolist() == [-1, -1, 4, 4, 4, 4, 4, 5, 5]


def test_rejection_on_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8], [np.nan, 0.5, 0.5]])
    assert decisions(probs, reject=0.5).tolist() == [0, -1, 2, -1]
    assert decisions(probs).tolist() == [0, 0, 2, -1]
    with pytest.raises(ParamError, match="probabilities"):
        Vote(reject=0.8).describe({"in": StreamInfo(rate=25.0, channels=1)})


def test_segment_vote(lda_probs):
    pred = np.array([1, 1, 2, -1, -1, 3, 3, 3, 2])
    seg = np.array([5, 5, 5, 0, 0, 7, 7, 7, 7])
    sv = segment_vote(pred, seg)
    assert sv.start.tolist() == [0, 3, 5] and sv.stop.tolist() == [3, 5, 9]
    assert sv.segment.tolist() == [5, 0, 7] and sv.vote.tolist() == [1, -1, 3]
    # On real predictions: one vote per movement repetition, and voting per repetition beats
    # deciding per window (12 movements x 2 test repetitions).
    probs, y, rep = lda_probs
    pred = probs.argmax(axis=1)
    sv = segment_vote(pred, y * 10 + rep)
    moving = (sv.segment // 10 > 0) & np.isin(sv.segment % 10, [2, 5])
    assert moving.sum() == 24
    tested = (y > 0) & np.isin(rep, [2, 5])
    per_window = np.mean(pred[tested] == y[tested])
    assert np.mean(sv.vote[moving] == sv.segment[moving] // 10) > per_window
