"""The cue node and its session: labels by sample index, whatever the chunking; redo moves only what lies ahead."""

from __future__ import annotations

import numpy as np
import pytest

from emgflow.calibration import SET_ASIDE, Session, superseded
from emgflow.errors import ParamError
from emgflow.nodes.cue import Cue
from emgflow.testing import chunk, concat, run_node

RATE = 200.0


@pytest.fixture(scope="module")
def stream(data_dir):
    """LibEMG's continuous Myo stream (4900 x 8 int8 counts, 24.5 s)."""
    return np.loadtxt(data_dir / "libemg-one-subject-myo/stream/raw_emg.csv", delimiter=",").astype(np.float32)


def planned(gestures: int, reps: int, hold_n: int, rest_n: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels written out by hand: attempt j (round by round) rests rest_n samples, then holds hold_n."""
    label, rep = np.zeros(n, np.int32), np.zeros(n, np.int32)
    for j in range(gestures * reps):
        a = j * (rest_n + hold_n) + rest_n
        label[a:a + hold_n], rep[a:a + hold_n] = j % gestures + 1, j // gestures + 1
    return label, rep


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_follow_the_sample_index_whatever_the_chunking(stream, seed):
    node = Cue(gestures=["power", "open"], reps=3, hold_s=1.0, rest_s=0.5)
    out = run_node(node, chunk(stream, np.random.default_rng(seed), rate=RATE, max_size=40))
    label, rep = planned(2, 3, 200, 100, len(stream))
    np.testing.assert_array_equal(concat(out["label"])[:, 0], label)
    np.testing.assert_array_equal(concat(out["repetition"])[:, 0], rep)
    np.testing.assert_array_equal(concat(out["emg"]), stream)  # passed on unchanged
    assert [m.start for m in out["label"]] == [m.start for m in out["emg"]] == [m.start for m in out["repetition"]]
    assert out["emg"][0].meta["class_names"] == {"0": "rest", "1": "power", "2": "open"}
    assert node.counters["finished"] == 1  # 6 x 1.5 s + 0.5 s of final rest < 24.5 s


def test_lost_samples_move_the_session_on_and_keep_their_gap(stream):
    msgs = chunk(stream[:2000], [50], rate=RATE)
    kept = msgs[:10] + msgs[14:]  # samples 500..699 lost
    out = run_node(Cue(gestures=["power", "open"], reps=2, hold_s=1.0, rest_s=0.5), kept)
    label, _ = planned(2, 2, 200, 100, 2000)
    got = np.concatenate([m.data for m in out["label"]])[:, 0]
    np.testing.assert_array_equal(got, np.r_[label[:500], label[700:]])
    assert [m.start for m in out["label"]] == [m.start for m in kept]


def test_redo_in_the_rest_repeats_the_last_attempt_next():
    s = Session(gestures=2, reps=2, hold_n=10, rest_n=5)
    s.advance(17)  # attempt 1 (power, rep 1) held over 5..14; the rest before attempt 2 began at 15
    assert s.cue().phase == "rest" and s.cue().gesture == 2
    assert s.redo() and not s.redo()  # a second press in the same rest asks nothing more
    s.advance(200)
    label, rep = s.labels(0, 65)
    want = np.zeros(65, np.int32)
    want[5:15] = want[20:30] = 1  # power, then power again
    want[35:45], want[50:60] = 2, 1  # open rep 1, power rep 2
    np.testing.assert_array_equal(label, want)
    assert rep[5:15].tolist() == rep[20:30].tolist() == [1] * 10 and rep[50] == 2
    reps = superseded(label, rep)
    assert (reps[5:15] == SET_ASIDE).all() and (reps[20:30] == 1).all() and (reps[35:45] == 1).all()


def test_redo_during_a_hold_ends_it_there():
    s = Session(gestures=2, reps=1, hold_n=10, rest_n=5)
    s.advance(9)  # holding power since sample 5
    assert s.cue().phase == "hold" and s.redo()
    assert s.cue().phase == "rest" and s.cue().gesture == 1 and s.cue().left == 5
    s.advance(100)
    label, rep = s.labels(0, 40)
    want = np.zeros(40, np.int32)
    want[5:9], want[14:24], want[29:39] = 1, 1, 2
    np.testing.assert_array_equal(label, want)
    np.testing.assert_array_equal(superseded(label, rep)[5:9], [SET_ASIDE] * 4)
    assert s.done and not s.redo()


def test_progress_counts_kept_attempts_and_the_time_left():
    s = Session(gestures=2, reps=2, hold_n=10, rest_n=5)
    assert s.cue().remaining == 4 * 15 + 5 and s.cue().number == 1 and s.cue().total == 4
    s.advance(31)
    assert s.cue().number == 3 and s.cue().remaining == 4 * 15 + 5 - 31


def test_gestures_are_distinct_names_without_rest():
    for bad in ([], ["power", "power"], ["rest", "power"], ["", "open"]):
        with pytest.raises(ParamError, match="gestures"):
            Cue(gestures=bad)


@pytest.mark.parametrize("seed", range(8))
def test_redos_at_any_moment_never_relabel_and_leave_every_repetition_once(seed):
    """Random chunks, r pressed at random moments: the labels given so far never change, and once the
    session is done each gesture's repetition counts exactly once, held for its whole hold."""
    rng = np.random.default_rng(seed)
    s = Session(gestures=3, reps=2, hold_n=30, rest_n=20, first=7)
    given = [s.labels(7, 7)]
    while not s.done:
        start = s.end
        s.advance(start + int(rng.integers(1, 25)))
        given.append(s.labels(start, s.end))
        if rng.random() < 0.15:
            s.redo()
    label, rep = s.labels(7, s.end)
    np.testing.assert_array_equal(np.concatenate([g[0] for g in given]), label)
    np.testing.assert_array_equal(np.concatenate([g[1] for g in given]), rep)
    counted = superseded(label, rep)
    runs = np.flatnonzero(np.diff(np.r_[0, label != 0, 0]))  # start, end of each gesture run
    kept = [(label[a], counted[a], b - a) for a, b in zip(runs[::2], runs[1::2]) if counted[a] != SET_ASIDE]
    assert sorted(kept) == [(g, r, 30) for g in (1, 2, 3) for r in (1, 2)]
    assert s.redos == sum(counted[runs[::2]] == SET_ASIDE)
