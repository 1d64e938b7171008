"""Decision smoothing: rejection, sliding majority vote and hysteresis, so a hand does not chatter.

Each input row is one decision: a class id (``(N, 1)``) or class probabilities (``(N, K)``,
decided by argmax). Per row, in order:

1. rejection (probabilities only): a decision whose top probability is below ``reject``
   becomes ``NO_DECISION`` (-1); a row with a NaN is rejected too;
2. majority over the last ``votes`` decisions, -1 included, ties going to the most recent of
   the tied classes;
3. hysteresis: the output switches to a new value only after that value has won
   ``hysteresis`` consecutive votes (1: switch at once). The output starts as -1.

``segment_vote`` is the offline evaluation companion: one vote per labelled segment.
"""

from __future__ import annotations

from collections import deque
from typing import Mapping, NamedTuple

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out
from emgflow.streaming import StreamGuard


NO_DECISION = -1


def decisions(x: np.ndarray, reject: float | None = None) -> np.ndarray:
    """Raw per-row decisions (int64) from class ids ``(N, 1)`` or probabilities ``(N, K)``."""
    x = np.asarray(x)
    if x.shape[1] == 1:
        return np.rint(x[:, 0]).astype(np.int64)
    out = np.argmax(np.nan_to_num(x, nan=-np.inf), axis=1).astype(np.int64)
    bad = np.isnan(x).any(axis=1)
    if reject is not None:
        bad |= x.max(axis=1, initial=-np.inf) < reject
    out[bad] = NO_DECISION
    return out


class Voter:
    """Stateful majority vote with hysteresis over a stream of decisions (see module docstring)."""

    def __init__(self, votes: int = 5, hysteresis: int = 1, reject: float | None = None) -> None:
        self.votes, self.hysteresis, self.reject = votes, hysteresis, reject
        self._history: deque[int] = deque(maxlen=votes)
        self.output = NO_DECISION
        self._candidate, self._streak = NO_DECISION, 0

    def push(self, x: np.ndarray) -> np.ndarray:
        """Smoothed decision (int64) for each row of ``x``."""
        raw = decisions(x, self.reject)
        out = np.empty(len(raw), dtype=np.int64)
        for i, d in enumerate(raw.tolist()):
            self._history.append(d)
            out[i] = self._switch(self._majority())
        return out

    def _majority(self) -> int:
        counts: dict[int, int] = {}
        for d in self._history:
            counts[d] = counts.get(d, 0) + 1
        best = max(counts.values())
        return next(d for d in reversed(self._history) if counts[d] == best)

    def _switch(self, winner: int) -> int:
        if winner == self.output:
            self._streak = 0
        elif winner == self._candidate and self._streak:
            self._streak += 1
        else:
            self._candidate, self._streak = winner, 1
        if self._streak >= self.hysteresis:
            self.output, self._streak = winner, 0
        return self.output


def vote(x: np.ndarray, votes: int = 5, hysteresis: int = 1, reject: float | None = None) -> np.ndarray:
    """Offline twin of the ``vote`` node over a whole decision sequence."""
    return Voter(votes, hysteresis, reject).push(x)


class SegmentVotes(NamedTuple):
    start: np.ndarray
    stop: np.ndarray
    segment: np.ndarray
    vote: np.ndarray


def segment_vote(pred: np.ndarray, segments: np.ndarray) -> SegmentVotes:
    """One majority vote per segment, for evaluation (e.g. one decision per movement repetition).

    ``segments`` is a per-row id (the true label, or label x repetition); each maximal run of
    equal ids is one segment. Rejected predictions (-1) do not vote unless nothing else did;
    ties go to the smallest class.
    """
    pred, segments = np.asarray(pred).ravel(), np.asarray(segments).ravel()
    if len(pred) != len(segments):
        raise ValueError(f"pred has {len(pred)} rows but segments has {len(segments)}")
    if not len(pred):
        empty = np.empty(0, dtype=np.int64)
        return SegmentVotes(empty, empty, segments[:0], empty)
    start = np.flatnonzero(np.r_[True, segments[1:] != segments[:-1]])
    stop = np.r_[start[1:], len(pred)]
    winners = []
    for a, b in zip(start, stop):
        valid = pred[a:b][pred[a:b] != NO_DECISION]
        winners.append(int(np.bincount(valid).argmax()) if len(valid) else NO_DECISION)
    return SegmentVotes(start, stop, segments[start], np.asarray(winners, dtype=np.int64))


class Vote(Node):
    """Majority vote over the last ``votes`` decisions, with optional rejection and hysteresis."""

    kind = "vote"
    in_ = In(help="class ids (N x 1) or class probabilities (N x K)")
    out = Out(help="smoothed class id per input row (N x 1, int64); -1 = no decision")
    votes = Param(int, 5, ge=1, help="number of most recent decisions in the majority vote")
    hysteresis = Param(int, 1, ge=1, help="consecutive winning votes a new class needs before the output changes")
    reject = Param(float, None, nullable=True, ge=0, le=1,
                   help="top class probability below which a decision is rejected (-1); probabilities only")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        if self.reject is not None and info.channels == 1:
            raise ParamError("reject", "rejection needs class probabilities (N x K); this stream has one column "
                             "(class ids)")
        return {"out": StreamInfo(rate=info.rate, channels=1)}

    def setup(self) -> None:
        self._guard = StreamGuard(self)
        self._voter = Voter(self.votes, self.hysteresis, self.reject)

    def process(self, msg: Msg) -> Msg | None:
        accepted = self._guard.accept(msg)
        if accepted is None:
            return None
        data, start = accepted
        return msg.replace(data=self._voter.push(data)[:, None], start=start, trace=list(msg.trace))
