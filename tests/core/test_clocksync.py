"""The clock estimator against simulated exchanges with a known remote clock, the responder, and the
test hook that puts a process tree on a skewed clock."""

from __future__ import annotations

import time

import numpy as np
import pytest

from emgflow.clocksync import DRIFT_ENV, SKEW_ENV, Tracker, answer, clock_from
from emgflow.control import ControlError

US, MS, S = 1_000, 1_000_000, 1_000_000_000


class Link:
    """A simulated remote host whose clock reads ``t + offset + t * drift_ppm / 1e6`` at local time
    ``t``, reached over legs of ``fwd_ns`` and ``back_ns`` plus exponential jitter; a fraction
    ``outliers`` of exchanges is held up by 1-50 ms on one leg (a preempted process, a busy link)."""

    def __init__(self, offset: int, drift_ppm: float, fwd_ns: int, back_ns: int, jitter_ns: int,
                 outliers: float = 0.0, seed: int = 0) -> None:
        self.offset, self.drift = offset, drift_ppm / 1e6
        self.fwd, self.back, self.jitter, self.outliers = fwd_ns, back_ns, jitter_ns, outliers
        self.rng = np.random.default_rng(seed)
        self.t = 5_000 * S  # local time now

    def remote(self, t: int) -> int:
        return t + self.offset + round(t * self.drift)

    def truth(self, t: int) -> int:
        """Remote minus local clock at local time ``t``."""
        return self.remote(t) - t

    def leg(self, base: int) -> int:
        delay = base + int(self.rng.exponential(self.jitter))
        if self.rng.random() < self.outliers:
            delay += int(self.rng.uniform(1 * MS, 50 * MS))
        return delay

    def exchange(self, tracker: Tracker, every_ns: int = 20 * MS) -> int:
        """One request and its reply through ``tracker``; returns the exchange's local midpoint."""
        req = tracker.request()
        t0 = req["t0"]
        t1 = self.remote(t0 + (arrive := self.leg(self.fwd)))
        held = int(self.rng.integers(5 * US, 50 * US))
        t3 = t0 + arrive + held + self.leg(self.back)
        tracker.add({"t": "clock", "id": req["id"], "t0": t0, "t1": t1, "t2": self.remote(t0 + arrive + held)}, t3)
        self.t = t3 + every_ns
        return (t0 + t3) // 2


def tracker_on(link: Link) -> Tracker:
    return Tracker(clock=lambda: link.t)


@pytest.mark.parametrize("offset, drift_ppm, fwd, back, jitter, outliers", [
    (3_700 * MS, 50.0, 60 * US, 60 * US, 20 * US, 0.0),      # symmetric, jittered
    (3_700 * MS, 50.0, 300 * US, 80 * US, 30 * US, 0.1),     # asymmetric legs, 10 % outliers
    (-2 * S, -80.0, 80 * US, 400 * US, 50 * US, 0.2),        # the other way round, 20 % outliers
    (123_456, 0.0, 100 * US, 100 * US, 200 * US, 0.05),      # small offset, heavy jitter
])
def test_offset_within_reported_uncertainty(offset, drift_ppm, fwd, back, jitter, outliers):
    link = Link(offset, drift_ppm, fwd, back, jitter, outliers, seed=abs(offset) % 1000)
    tracker = tracker_on(link)
    worst = 0.0
    for _ in range(3000):  # 60 s of exchanges every 20 ms
        mid = link.exchange(tracker)
        error = abs(tracker.offset_ns - link.truth(mid))
        assert error <= tracker.uncertainty_ns, (error, tracker.uncertainty_ns)
        worst = max(worst, error / tracker.uncertainty_ns)
    assert tracker.samples == 3000 and not tracker.refused
    assert tracker.drift_ppm == pytest.approx(drift_ppm, abs=1.0)  # over ~20 s of block minima
    # honest, not vacuous: the bound stays near half the least round trip
    assert tracker.uncertainty_ns < (fwd + back) / 2 + 4 * jitter
    assert worst > 0.05


def test_drift_is_carried_between_exchanges():
    """Over a long run the offset moves by the drift (200 ppm: 2 ms in 10 s); the estimate follows
    it and extrapolates with it."""
    link = Link(S, 200.0, 50 * US, 50 * US, 10 * US)
    tracker = tracker_on(link)
    for _ in range(500):
        mid = link.exchange(tracker)
    assert abs(tracker.offset_ns - link.truth(mid)) <= tracker.uncertainty_ns
    later = mid + 10 * S
    assert abs(tracker.offset_at(later) - link.truth(later)) < 10 * US  # 0 ppm would be 2 ms off


def test_no_estimate_before_an_exchange():
    tracker = Tracker()
    with pytest.raises(RuntimeError, match="no clock exchange"):
        tracker.offset_ns
    with pytest.raises(RuntimeError, match="no clock exchange"):
        tracker.uncertainty_ns


def test_replies_that_are_not_ours_are_refused_and_counted():
    link = Link(S, 0.0, 50 * US, 50 * US, 0)
    tracker = tracker_on(link)
    first, second = tracker.request(), tracker.request()

    def reply(req, **changes):
        t0 = req["t0"]
        return {"t": "clock", "id": req["id"], "t0": t0, "t1": t0 + S + 50 * US, "t2": t0 + S + 60 * US, **changes}

    t3 = second["t0"] + 110 * US
    bad = [
        ({**reply(second), "t1": 1.5}, t3),            # a float stamp
        ({**reply(second), "t2": "now"}, t3),          # a string stamp
        ({**reply(second), "id": True}, t3),           # a bool is not an id
        ({k: v for k, v in reply(second).items() if k != "t2"}, t3),
        (["not", "a", "map"], t3),
        (reply(second), 1.0),                          # our own receive time not an int
        (reply(second, t1=second["t0"] + S + 70 * US), t3),  # the remote sent before it received
        (reply(second), second["t0"] - 1),             # arrived before it was sent
        (reply(second, id=99), t3),                    # never asked
        (reply(second, t0=second["t0"] + 1), t3),      # asked, but not with that t0
    ]
    for msg, when in bad:
        tracker.add(msg, when)
    assert tracker.samples == 0
    assert tracker.refused == {"stamps": 8, "id": 2}
    tracker.add(reply(second), t3)
    assert tracker.samples == 1 and tracker.offset_ns == S
    tracker.add(reply(second), t3)                     # a duplicate
    tracker.add(reply(first), first["t0"] + 110 * US)  # older than an answered request
    assert tracker.samples == 1 and tracker.refused["order"] == 2


def test_answer_stamps_receive_and_send():
    before = time.monotonic_ns()
    reply = answer({"t": "clock", "id": 7, "t0": 42})
    assert reply["t"] == "clock" and reply["id"] == 7 and reply["t0"] == 42
    assert before <= reply["t1"] <= reply["t2"] <= time.monotonic_ns()
    for req in ({"t": "clock", "id": 7}, {"t": "clock", "id": "7", "t0": 1}, {"t": "clock", "id": 1, "t0": 2.0}):
        with pytest.raises(ControlError, match="integer id and t0"):
            answer(req)


def test_clock_hook_is_free_when_unset_and_skews_when_set():
    assert clock_from({}) is time.monotonic_ns
    skewed = clock_from({SKEW_ENV: str(3_700 * MS), DRIFT_ENV: "50"})
    t = time.monotonic_ns()
    reading = skewed()
    expected = t + 3_700 * MS + round(t * 50e-6)
    assert 0 <= reading - expected < 50 * MS
    assert abs(clock_from({DRIFT_ENV: "-20"})() - time.monotonic_ns() * (1 - 20e-6)) < 50 * MS
    assert abs(clock_from({SKEW_ENV: "-1000"})() - time.monotonic_ns() + 1000) < 50 * MS


@pytest.mark.parametrize("env, match", [
    ({SKEW_ENV: "3.7s"}, SKEW_ENV),
    ({DRIFT_ENV: "fast"}, DRIFT_ENV),
    ({DRIFT_ENV: "nan"}, "within"),
    ({DRIFT_ENV: "2000"}, "within"),
    ({SKEW_ENV: str(-(1 << 62))}, "before zero"),
])
def test_clock_hook_refuses_bad_settings(env, match):
    with pytest.raises(ValueError, match=match):
        clock_from(env)
