"""The acquisition helpers on synthetic arrival times: the sample clock's fit and the notification
sequencer's placement (duplicates, losses, gaps, rotations), exactly where they can be computed."""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
import pytest

from emgflow.acquisition.sample_clock import SampleClock
from emgflow.acquisition.sequencer import NotificationSequencer
from emgflow.devices.myo import EMG_HANDLES, IMU_HANDLE

PERIOD_NS = 10_000_000  # one raw EMG notification (2 samples at 200 Hz)
FLOOR_NS = 300_000


# --- synthetic arrivals for the pure classes ---------------------------------------------------------
def arrivals(n: int, *, rate: float = 200.0, seed: int = 0, jitter_ns: float = 1e6) -> np.ndarray:
    """Arrival time of raw notification k: its newest sample's acquisition + a floor + jitter."""
    rng = np.random.default_rng(seed)
    acquired = 1e12 + (2 * np.arange(n) + 1) * 1e9 / rate
    return (acquired + FLOOR_NS + rng.exponential(jitter_ns, n)).astype(np.int64)


def feed_all(seq: NotificationSequencer, numbers, times, handles=EMG_HANDLES, before: dict | None = None):
    """Feed notifications ``numbers`` (device counter) arriving at ``times``; returns placements."""
    placed = []
    for n in numbers:
        if before and n in before:
            before[n](seq)
        placed.append(seq.feed(object(), handles[n % len(handles)], int(times[n])))
    return placed


def counting() -> tuple[Counter, Callable[[str, int], None]]:
    counts: Counter = Counter()
    return counts, lambda key, n=1: counts.update({key: n})


def test_sample_clock_follows_drift_under_jitter_and_stalls():
    true_rate = 200.5  # a crystal 0.25 % fast
    n = 3000  # 30 s of notifications
    t = arrivals(n, rate=true_rate, jitter_ns=2e6)
    t[1000:1100] = np.maximum(t[1000:1100], t[1000] + 500_000_000 + np.arange(100) * 2_500_000)  # 0.5 s stall
    clock = SampleClock(200.0, block=50)
    index = 2 * np.arange(n) + 1
    for i, a in zip(index, t):
        clock.add(int(i), int(a))
        assert clock.time_ns(int(i)) <= a  # a sample is never dated after it arrived
    assert clock.rate == pytest.approx(true_rate, rel=1e-4)
    truth = 1e12 + index[-500:] * 1e9 / true_rate + FLOOR_NS
    err = np.array([clock.time_ns(int(i)) for i in index[-500:]]) - truth
    assert np.max(np.abs(err)) < 200_000  # 0.2 ms with 2 ms mean jitter


def test_sequencer_drops_pyomyo_duplicates_and_places_rotation_skips_exactly():
    counts, count = counting()
    seq = NotificationSequencer(200.0, 2, EMG_HANDLES, count=count)
    t = arrivals(200)
    kept = [n for n in range(200) if n not in {10, 20, 21, 30, 31, 32}]
    placed = []
    for n in kept:
        token = object()
        placed.append(seq.feed(token, EMG_HANDLES[n % 4], int(t[n])))
        if n % 7 == 0:  # pyomyo dispatches an event during a command twice: the same object
            assert seq.feed(token, EMG_HANDLES[n % 4], int(t[n]) + 50_000) is None
    assert [p.start for p in placed] == [2 * n for n in kept]
    assert counts["lost_notifications"] == 6 and counts["lost_samples"] == 12
    assert counts["duplicates"] == len([n for n in kept if n % 7 == 0])
    assert "reindexed" not in counts and "rotation_mismatch" not in counts


def test_sequencer_reindexes_a_skip_of_whole_rotations():
    counts, count = counting()
    seq = NotificationSequencer(200.0, 2, EMG_HANDLES, count=count)
    t = arrivals(400, seed=1)
    kept = [n for n in range(400) if not 100 <= n < 108]  # 8 lost: the rotation cannot see it
    placed = feed_all(seq, kept, t)
    wrong = [n for n, p in zip(kept, placed) if p.start != 2 * n]
    assert wrong and wrong == list(range(108, 108 + len(wrong)))
    assert len(wrong) <= 25  # placed right again within late_s (0.2 s = 20 notifications) + jitter
    assert counts["reindexed"] == 1 and counts["lost_notifications"] == 8


def test_sequencer_latency_spike_is_not_a_loss():
    counts, count = counting()
    seq = NotificationSequencer(200.0, 2, EMG_HANDLES, count=count)
    t = arrivals(600, seed=2)
    # the link stalls 1 s, then the backlog drains at 4x real time
    t[100:300] = np.maximum(t[100:300], t[100] + 1_000_000_000 + np.arange(200) * PERIOD_NS // 4)
    placed = feed_all(seq, range(600), t)
    assert [p.start for p in placed] == [2 * n for n in range(600)]
    assert not counts


def test_sequencer_places_by_time_after_a_known_gap_and_a_new_segment():
    counts, count = counting()
    seq = NotificationSequencer(200.0, 2, EMG_HANDLES, count=count)
    t = arrivals(700, seed=3)
    kept = [n for n in range(700) if not (200 <= n < 209 or 300 <= n < 450)]
    placed = feed_all(seq, kept, t, before={209: NotificationSequencer.expect_gap,
                                              450: NotificationSequencer.new_segment})
    assert [p.start for p in placed] == [2 * n for n in kept]
    assert counts["lost_notifications"] == 9 + 150 and "reindexed" not in counts


def test_sequencer_reanchors_a_rotation_the_clock_contradicts():
    counts, count = counting()
    seq = NotificationSequencer(200.0, 2, EMG_HANDLES, count=count)
    t = arrivals(200, seed=4)
    placed = []
    for n in range(200):  # from n = 50 the device restarts its rotation at EmgData0
        handle = EMG_HANDLES[n % 4] if n < 50 else EMG_HANDLES[(n - 50) % 4]
        placed.append(seq.feed(object(), handle, int(t[n])))
    assert [p.start for p in placed] == [2 * n for n in range(200)]
    assert counts["rotation_mismatch"] == 1 and "lost_notifications" not in counts


def test_sequencer_with_one_handle_finds_losses_by_timing():
    counts, count = counting()
    seq = NotificationSequencer(50.0, 1, (IMU_HANDLE,), count=count)
    rng = np.random.default_rng(5)
    t = (1e12 + np.arange(200) * 20e6 + FLOOR_NS + rng.exponential(1e6, 200)).astype(np.int64)
    kept = [n for n in range(200) if not 60 <= n < 63]
    placed = feed_all(seq, kept, t, handles=(IMU_HANDLE,))
    assert all(p.start == n for n, p in zip(kept, placed) if n >= 63 + 15)
    assert counts["lost_notifications"] == 3 and counts["reindexed"] == 1
