"""A guided calibration session on the stream's own clock: the cue of every sample, by its index.

Why the sample index: it is the acquisition clock (a Myo's device counter, a replay's row), so the
session runs on it. Each phase lasts a fixed number of samples from the first one received, the
screen shows the phase of the newest sample, and a sample's label is the phase its index falls in.
Wall time (when a message happened to arrive) never enters, so the labels are the same however the
stream is chunked or delayed, and a lost sample still moves the session on, as the clock did.

The session is N gestures x R repetitions, round by round (every gesture once per round). Each
attempt is ``rest_n`` samples of rest (class 0, the countdown to the gesture) then ``hold_n``
samples of the gesture (class 1..N); a final rest follows the last attempt. ``redo()`` repeats the
last attempt: pressed during a hold, that hold ends at once; during the rest after it, the rest runs
on and the repeat follows. Nothing already labelled changes: the take shows both attempts of that
repetition, and ``superseded`` (used when a take is read for training) sets the earlier one aside.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import numpy as np

SET_ASIDE = -1
"""The repetition of samples that neither train nor score: an attempt that a later one redid."""


@dataclass
class Attempt:
    """One attempt: rest over samples [start, hold_start), then ``gesture`` over [hold_start, hold_end).
    The final rest is an attempt of gesture 0 with no hold, lasting until the stream ends."""

    gesture: int
    rep: int
    start: int
    hold_start: int
    hold_end: int
    redone: bool = False


@dataclass(frozen=True)
class Cue:
    """What the screen shows for the newest sample."""

    phase: str           # rest, hold or done
    gesture: int         # the gesture held, or the next one (0: none follows)
    left: int            # samples left in this phase
    number: int          # this attempt's place among the planned ones (1-based)
    total: int           # planned attempts, N x R
    remaining: int       # samples until the session is done
    redos: int


class Session:
    """The schedule of one session, advanced by the stream's sample index (``advance``)."""

    def __init__(self, gestures: int, reps: int, hold_n: int, rest_n: int, first: int = 0) -> None:
        if gestures < 1 or reps < 1 or hold_n < 1 or rest_n < 1:
            raise ValueError("a session needs at least one gesture, one repetition and samples to hold and rest")
        self.hold_n, self.rest_n, self.total = hold_n, rest_n, gestures * reps
        self.plan = deque((g, r) for r in range(1, reps + 1) for g in range(1, gestures + 1))
        self.attempts: list[Attempt] = []
        self.end = first
        self.redos = 0
        self._open(first)

    def _open(self, start: int) -> None:
        gesture, rep = self.plan.popleft() if self.plan else (0, 0)
        hold_start = start + self.rest_n
        self.attempts.append(Attempt(gesture, rep, start, hold_start, hold_start + (self.hold_n if gesture else 0)))

    @property
    def current(self) -> Attempt:
        return self.attempts[-1]

    @property
    def done(self) -> bool:
        """The final rest is over: nothing is left to cue."""
        return self.current.gesture == 0 and self.end >= self.current.hold_start

    def advance(self, end: int) -> None:
        """Samples up to index ``end`` (exclusive) were acquired: open the attempts they reached."""
        self.end = max(self.end, end)
        while self.current.gesture and self.end >= self.current.hold_end:
            self._open(self.current.hold_end)

    def redo(self) -> bool:
        """Repeat the last attempt (see the module's doc); False when there is none to repeat."""
        now = self.current
        if self.done:
            return False
        if now.gesture and self.end > now.hold_start:  # during its hold: end it here, rest, repeat it
            now.hold_end, now.redone = self.end, True
            self.plan.appendleft((now.gesture, now.rep))
            self._open(self.end)
        else:  # during the rest after the last hold: the coming attempt becomes its repeat
            last = self.attempts[-2] if len(self.attempts) > 1 else None
            if last is None or last.redone:
                return False  # nothing held yet, or that hold is being repeated already
            last.redone = True
            if now.gesture:
                self.plan.appendleft((now.gesture, now.rep))
            now.gesture, now.rep, now.hold_end = last.gesture, last.rep, now.hold_start + self.hold_n
        self.redos += 1
        return True

    def labels(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Class and repetition (0 for rest) of samples [start, stop), which ``advance`` has reached;
        a redo never changes them (it only moves what lies ahead of the newest sample)."""
        index = np.arange(start, stop)
        starts = np.array([a.start for a in self.attempts])
        which = np.maximum(np.searchsorted(starts, index, side="right") - 1, 0)
        held = [(a.hold_start, a.hold_end, a.gesture, a.rep) for a in self.attempts]
        hs, he, gesture, rep = (np.array(column)[which] for column in zip(*held))
        holding = (index >= hs) & (index < he)
        return np.where(holding, gesture, 0).astype(np.int32), np.where(holding, rep, 0).astype(np.int32)

    def cue(self) -> Cue:
        """The phase of the newest sample, the time left in it and until the end."""
        now, cycle = self.current, self.rest_n + self.hold_n
        number = min(sum(1 for a in self.attempts[:-1] if a.gesture and not a.redone) + 1, self.total)
        if self.done:
            return Cue("done", 0, 0, self.total, self.total, 0, self.redos)
        holding = bool(now.gesture) and self.end > now.hold_start
        left = (now.hold_end if holding else now.hold_start) - self.end
        after = (self.hold_n if now.gesture and not holding else 0) + len(self.plan) * cycle
        remaining = left + after + (self.rest_n if now.gesture else 0)
        return Cue("hold" if holding else "rest", now.gesture, left, number, self.total, remaining, self.redos)


def superseded(label: np.ndarray, repetition: np.ndarray) -> np.ndarray:
    """``repetition`` with every run of a (class, repetition) that a later run repeats set to
    ``SET_ASIDE``: a redone attempt gives way to its redo. Rest (class 0) is left as it is."""
    out = np.asarray(repetition).copy()
    starts = np.r_[0, np.flatnonzero((np.diff(label) != 0) | (np.diff(out) != 0)) + 1]
    ends = np.r_[starts[1:], len(out)]
    last: dict[tuple[int, int], tuple[int, int]] = {}
    for a, b in zip(starts, ends):
        key = (int(label[a]), int(out[a]))
        if key[0] == 0 or key[1] <= 0:
            continue
        if key in last:
            out[slice(*last[key])] = SET_ASIDE
        last[key] = (a, b)
    return out
