"""The safety core that stands between a command stream and any hand.

Whatever the device, the same :class:`HandSafety` clamps every command to the joint limits,
refuses commands older than a deadline, limits joint speed using real elapsed time, and drives
the hand to a safe pose when commands stop arriving (watchdog).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from emgflow.message import now_ns

from .models import HandModel


@dataclass(frozen=True)
class SafetyEvent:
    """A change of control state: ``safe`` (hand sent to its safe pose) or ``resume``."""

    kind: str
    reason: str
    t_ns: int


class HandSafety:
    """Clamp, deadline, rate limit and watchdog between a command stream and a hand.

    ``command(target, t_acq)`` offers a target (None = hold the current target); it is refused
    (counted, never executed) when its acquisition time ``t_acq`` is older than ``max_age_ms``
    on ``clock`` (or unknown, 0), has the wrong shape or is not finite, and clamped to the
    limits otherwise. ``step()`` advances the pose towards the target by at most
    ``max_speed`` x elapsed time (elapsed time capped at ``MAX_DT_S`` so a stalled caller never
    produces a jump) and runs the watchdog: no accepted command for ``timeout_ms`` sends the hand
    to ``safe_pose`` (None: the model's safe grip; ``hold_safe``: freeze where it is); the next
    accepted command resumes control.
    The hand starts in the safe state at the safe pose. ``clock`` is injectable for tests.
    """

    MAX_DT_S = 0.05

    def __init__(self, model: HandModel, *, timeout_ms: float = 250.0, max_age_ms: float | None = 100.0,
                 safe_pose: np.ndarray | None = None, hold_safe: bool = False,
                 max_speed: float | None = None, clock: Callable[[], int] = now_ns,
                 counters: Counter[str] | None = None, log: logging.Logger | None = None) -> None:
        self.model = model
        self.lo, self.hi = model.lo, model.hi
        self.timeout_ns = int(timeout_ms * 1e6)
        self.max_age_ns = None if max_age_ms is None else int(max_age_ms * 1e6)
        self.hold_safe = hold_safe
        self.safe_pose = np.clip(model.grip(model.safe) if safe_pose is None else safe_pose, self.lo, self.hi)
        self.max_speed = model.max_speed if max_speed is None else max_speed
        self.clock = clock
        self.counters = counters if counters is not None else Counter()
        self.log = log or logging.getLogger("emgflow.hand")
        self.pose = self.safe_pose.copy()
        self.target = self.safe_pose.copy()
        self.safe = True
        self.t_acq = 0
        self.events: list[SafetyEvent] = []
        now = clock()
        self._last_step = now
        self._last_fresh = now

    def command(self, target: np.ndarray | None, t_acq: int) -> bool:
        """Offer a target (None: hold); True when accepted. A refused command changes nothing."""
        now = self.clock()
        if self.max_age_ns is not None:
            if t_acq <= 0 or t_acq > now:
                return self._refuse("no_t_acq" if t_acq <= 0 else "future_t_acq",
                                    f"command t_acq={t_acq} is not on this host's clock (now {now})")
            if now - t_acq > self.max_age_ns:
                return self._refuse("stale", f"command {(now - t_acq) / 1e6:.1f} ms old "
                                             f"(max_age_ms {self.max_age_ns / 1e6:g})")
        if target is not None:
            target = np.asarray(target, dtype=float)
            if target.shape != self.lo.shape:
                return self._refuse("bad_shape", f"target shape {target.shape}, expected {self.lo.shape}")
            if not np.all(np.isfinite(target)):
                return self._refuse("nonfinite", "target has NaN or inf")
            clamped = np.clip(target, self.lo, self.hi)
            if not np.array_equal(clamped, target):
                self.counters["clamped"] += 1
        self._last_fresh = now
        self.t_acq = t_acq
        if self.safe:
            self.safe = False
            self.counters["resumes"] += 1
            self.events.append(SafetyEvent("resume", "fresh command", now))
            self.log.info("hand: fresh command, control resumed")
            if target is None:
                self.target = self.pose.copy()  # hold after a safe period: stop where the hand is
        if target is not None:
            self.target = clamped
        self.counters["commands"] += 1
        return True

    def step(self) -> np.ndarray:
        """Run the watchdog, then move the pose toward the target at most at max speed."""
        now = self.clock()
        if not self.safe and now - self._last_fresh > self.timeout_ns:
            silence = (now - self._last_fresh) / 1e6
            self.go_safe(f"watchdog: no fresh command for {silence:.0f} ms (timeout {self.timeout_ns / 1e6:g} ms)")
        dt = min(max(now - self._last_step, 0) / 1e9, self.MAX_DT_S)
        self._last_step = now
        limit = self.max_speed * dt
        self.pose = np.clip(self.pose + np.clip(self.target - self.pose, -limit, limit), self.lo, self.hi)
        return self.pose.copy()

    def go_safe(self, reason: str, expected: bool = False) -> None:
        """Send the hand to its safe pose (or freeze it, with ``hold_safe``) until a fresh command.
        ``expected`` (end of stream) logs at info level instead of warning."""
        if self.safe:
            return
        self.safe = True
        self.t_acq = 0
        self.target = self.pose.copy() if self.hold_safe else self.safe_pose.copy()
        self.counters["safe_events"] += 1
        self.events.append(SafetyEvent("safe", reason, self.clock()))
        self.log.log(logging.INFO if expected else logging.WARNING, "hand: safe pose, %s", reason)

    @property
    def settled(self) -> bool:
        """True when the pose has reached the target."""
        return bool(np.array_equal(self.pose, self.target))

    def take_events(self) -> list[SafetyEvent]:
        events, self.events = self.events, []
        return events

    def _refuse(self, key: str, why: str) -> bool:
        self.counters[key] += 1
        level = logging.WARNING if self.counters[key] == 1 else logging.DEBUG
        self.log.log(level, "hand: command refused (%s): %s", key, why)
        return False
