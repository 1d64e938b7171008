"""One clock across hosts: the runtime clock every stamp reads, and estimates of other hosts' clocks.

``now_ns`` is the runtime clock (``t_acq``, trace stamps, a hand's command ages): CLOCK_MONOTONIC in
ns, shared by every process of a host. A test can put one host (one process tree) on a skewed clock
with ``EMGFLOW_CLOCK_SKEW_NS`` (added ns) and ``EMGFLOW_CLOCK_DRIFT_PPM`` (a rate error), read once at
import: the clock then reads ``t + skew + t * ppm / 1e6`` for monotonic ``t``, the same in every
process of the tree. With neither set, ``now_ns`` *is* ``time.monotonic_ns``: no wrapper, no cost.

Sign convention: an offset is the remote clock minus the local one, ``remote = local + offset``, so a
stamp taken on that host reads ``stamp - offset`` on ours. A node process receives, in a ``clock``
control message, ``{"offsets": {host: offset_ns}}`` relative to its own host, and maps the stamps of
inputs whose producer runs on another host (``InputSpec.host``) as they arrive.

Estimation (``Tracker``, NTP-style): the local side sends ``t0``, the remote stamps its receive
``t1`` and its send ``t2`` (``answer``), the reply arrives at local ``t3``. Then
``rtt = (t3 - t0) - (t2 - t1)`` and ``offset = ((t1 - t0) + (t2 - t3)) / 2``, off by half the
difference of the two legs' delays, so by at most ``rtt / 2``. Queueing only lengthens a leg, so
the exchange with the least RTT of a recent window is the one to trust.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .control import CLOCK, ControlError

SKEW_ENV, DRIFT_ENV = "EMGFLOW_CLOCK_SKEW_NS", "EMGFLOW_CLOCK_DRIFT_PPM"
MAX_DRIFT = 100e-6
"""Assumed bound on two hosts' clock-rate difference (two crystals of +-50 ppm): what an offset may
move between its best exchange and the time it is quoted for."""
MAX_PENDING = 64  # requests remembered while unanswered; a reply to an older one is refused


def clock_from(env: Mapping[str, str]) -> Callable[[], int]:
    """The runtime clock for ``env``: ``time.monotonic_ns`` itself unless the test hook is set."""
    skew_text, drift_text = env.get(SKEW_ENV), env.get(DRIFT_ENV)
    if skew_text is None and drift_text is None:
        return time.monotonic_ns
    try:
        skew, rate = int(skew_text or 0), float(drift_text or 0) / 1e6
    except ValueError:
        raise ValueError(f"{SKEW_ENV} must be an integer (ns) and {DRIFT_ENV} a number (ppm), "
                         f"got {skew_text!r} and {drift_text!r}") from None
    if not abs(rate) < 1e-3:
        raise ValueError(f"{DRIFT_ENV} must be within +-1000 ppm, got {drift_text!r}")
    mono = time.monotonic_ns

    def skewed() -> int:
        t = mono()
        return t + skew + int(t * rate)

    if skewed() <= 0:
        raise ValueError(f"{SKEW_ENV}={skew} puts this host's clock before zero: use a smaller negative skew")
    return skewed


now_ns = clock_from(os.environ)


def answer(msg: dict[str, Any]) -> dict[str, Any]:
    """The responder's side: the request's ``id`` and ``t0`` with this host's receive and send times.
    A request without integer ``id`` and ``t0`` is refused (``ControlError``)."""
    t1 = now_ns()
    rid, t0 = msg.get("id"), msg.get("t0")
    if type(rid) is not int or type(t0) is not int:
        raise ControlError(f"clock request needs integer id and t0, got {rid!r:.40} and {t0!r:.40}")
    return {"t": CLOCK, "id": rid, "t0": t0, "t1": t1, "t2": now_ns()}


@dataclass(frozen=True, slots=True)
class Exchange:
    """One accepted exchange: its local midpoint time, the offset it gives and its round trip."""

    at_ns: int
    offset_ns: float
    rtt_ns: int


class Tracker:
    """One remote clock, estimated from request/reply exchanges (the supervisor keeps one per host).

    Offset: the least-RTT exchange of the last ``window``, carried to the newest exchange's time by
    the drift. Drift: a Theil-Sen line (median of pairwise slopes: outliers cannot tilt it) through the
    least-RTT exchange of each block of ``window`` exchanges, over the last ``history`` exchanges, once
    they span ``min_span_ns``. Uncertainty: half the chosen exchange's RTT (the bound on its error),
    plus the line's median residual, plus ``MAX_DRIFT`` over the time the offset was carried.
    Replies that are not ours are refused and counted by reason in ``refused``: ``stamps`` (missing,
    not integers, or an impossible order), ``id`` (never asked, or with another ``t0``), ``order``
    (already answered, or older than an answered one).
    """

    def __init__(self, window: int = 8, history: int = 1024, min_span_ns: int = 1_000_000_000,
                 clock: Callable[[], int] = now_ns) -> None:
        self.window, self.min_span_ns, self.clock = window, min_span_ns, clock
        self._recent: deque[Exchange] = deque(maxlen=window)
        self._minima: deque[Exchange] = deque(maxlen=max(2, history // window))
        self._block: list[Exchange] = []
        self._pending: dict[int, int] = {}  # id -> t0 of requests not answered yet
        self._next_id = 0
        self._drift = 0.0
        self._residual = 0.0
        self.samples = 0
        self.refused: Counter[str] = Counter()

    def request(self) -> dict[str, Any]:
        """The next request to send, stamped now (``t3`` of its reply must be read on the same clock)."""
        rid, self._next_id = self._next_id, self._next_id + 1
        self._pending[rid] = t0 = self.clock()
        if len(self._pending) > MAX_PENDING:
            del self._pending[min(self._pending)]
        return {"t": CLOCK, "id": rid, "t0": t0}

    def add(self, reply: dict[str, Any], t3_ns: int) -> None:
        """Take a reply that arrived at local time ``t3_ns``; one that is not ours is counted, not used."""
        reason = self._refusal(reply, t3_ns)
        if reason:
            self.refused[reason] += 1
            return
        rid, t0, t1, t2 = reply["id"], reply["t0"], reply["t1"], reply["t2"]
        for old in [i for i in self._pending if i <= rid]:
            del self._pending[old]
        ex = Exchange((t0 + t3_ns) // 2, ((t1 - t0) + (t2 - t3_ns)) / 2, (t3_ns - t0) - (t2 - t1))
        self.samples += 1
        self._recent.append(ex)
        self._block.append(ex)
        if len(self._block) == self.window:
            self._minima.append(min(self._block, key=_rtt))
            self._block = []
            self._fit()

    def _refusal(self, reply: Any, t3: Any) -> str | None:
        stamps = [reply.get(k) for k in ("id", "t0", "t1", "t2")] if isinstance(reply, dict) else [None]
        if any(type(s) is not int for s in (*stamps, t3)):
            return "stamps"
        rid, t0, t1, t2 = stamps
        if rid not in self._pending:
            return "order" if 0 <= rid < self._next_id else "id"
        if self._pending[rid] != t0:
            return "id"
        if t2 < t1 or t3 - t0 < t2 - t1:
            return "stamps"
        return None

    def _fit(self) -> None:
        """Refit the drift line through the block minima (kept at zero until they span long enough)."""
        pts = self._minima
        if len(pts) < 3 or pts[-1].at_ns - pts[0].at_ns < self.min_span_ns:
            return
        t = np.array([p.at_ns - pts[0].at_ns for p in pts], dtype=float)
        o = np.array([p.offset_ns for p in pts])
        i, j = np.triu_indices(len(t), 1)
        keep = t[j] != t[i]
        self._drift = float(np.median((o[j] - o[i])[keep] / (t[j] - t[i])[keep]))
        line = o - self._drift * t
        self._residual = float(np.median(np.abs(line - np.median(line))))

    def _best(self) -> Exchange:
        if not self._recent:
            raise RuntimeError("no clock exchange accepted yet")
        return min(self._recent, key=_rtt)

    def offset_at(self, local_ns: int) -> int:
        """Remote clock minus local clock at local time ``local_ns`` (the drift carries it there)."""
        best = self._best()
        return round(best.offset_ns + self._drift * (local_ns - best.at_ns))

    @property
    def offset_ns(self) -> int:
        """Remote clock minus local clock, at the newest exchange."""
        return self.offset_at(self._recent[-1].at_ns if self._recent else 0)

    @property
    def drift_ppm(self) -> float:
        """How much faster the remote clock runs, in parts per million (0 until fitted)."""
        return self._drift * 1e6

    @property
    def uncertainty_ns(self) -> int:
        """A bound on the error of ``offset_ns``."""
        best = self._best()
        carried = self._recent[-1].at_ns - best.at_ns
        return math.ceil(best.rtt_ns / 2 + self._residual + MAX_DRIFT * carried)


def _rtt(ex: Exchange) -> int:
    return ex.rtt_ns

