"""Place a device's notifications on the sample axis: duplicates dropped, lost ones skipped.

For devices that send a fixed number of samples per notification, rotating over a few handles
(BLE characteristics), without a sequence number: the rotation and the fitted
:class:`~emgflow.acquisition.sample_clock.SampleClock` are all there is to tell a loss.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .sample_clock import SampleClock


@dataclass(frozen=True)
class Placement:
    """Where a notification's samples go: ``start`` index of its first sample and ``t_acq``, the
    fitted acquisition time of its newest sample (ns)."""

    start: int
    t_acq: int


class NotificationSequencer:
    """Place each notification on the sample axis, dropping duplicates and skipping lost ones.

    - Duplicate: pyomyo dispatches an event that arrives while a command waits twice, as the
      same packet object, so a ``token`` identical (``is``) to the previous one is dropped.
    - Loss: notifications rotate over ``handles`` (the four raw EMG characteristics), so the
      handle gives the notification number modulo the rotation and a skip of 1 to 3 is exact.
      A skip that the clock says is impossible (the notification would have arrived more than a
      period before its newest sample was acquired) is counted as ``rotation_mismatch`` and the
      rotation is re-anchored instead.
    - Known gap: after ``expect_gap()`` (bytes were lost on the line) or ``new_segment()`` (the
      link was re-established), the next notification is placed by time: the latest number, in
      the rotation, whose newest sample the fitted clock puts no later than its arrival (half a
      period of tolerance). After a new segment the clock fit then restarts.
    - Unnoticed skip of whole rotations (or any skip when there is one handle): the rotation
      stays intact but every later arrival is late against the fitted clock by those rotations.
      Once every arrival for ``late_s`` s is at least one rotation late, and steadily so (the
      least lateness of the window's second half is not below that of its first half), the
      index jumps by the whole rotations of that lateness (``reindexed``). A latency spike is
      not steady: its backlog drains faster than real time and catches up with the clock.
    """

    def __init__(self, rate: float, per_notification: int, handles: tuple[int, ...], *, late_s: float = 0.2,
                 count: Callable[[str, int], None] | None = None) -> None:
        self.per, self.handles, self.late_s = per_notification, handles, late_s
        self.period = 1e9 * per_notification / rate
        self.clock = SampleClock(rate, block=max(1, round(0.5 * rate / per_notification)))
        self._count = count or (lambda key, n=1: None)
        self._last_token: object = None
        self._number: int | None = None
        self._rot0 = 0
        self._resync: str | None = None
        self._late: deque[tuple[int, float]] = deque()

    def new_segment(self) -> None:
        """The link was re-established: place the next notification by time, then refit the clock."""
        if self._number is not None:
            self._resync = "segment"
        self._last_token = None

    def expect_gap(self) -> None:
        """Bytes were lost: place the next notification by time."""
        if self._number is not None and self._resync is None:
            self._resync = "gap"

    def feed(self, token: object, handle: int, arrival_ns: int) -> Placement | None:
        """Place one notification received on ``handle`` at ``arrival_ns``; None for a duplicate."""
        if token is self._last_token:
            self._count("duplicates", 1)
            return None
        self._last_token = token
        rot = self.handles.index(handle)
        if self._number is None:
            number, self._rot0 = 0, rot
        elif self._resync is not None:
            number = self._by_time(rot, arrival_ns)
            if self._resync == "segment":
                self.clock.reset()
            self._resync = None
            self._late.clear()
        else:
            number = self._by_rotation(rot, arrival_ns)
        lost = 0 if self._number is None else number - self._number - 1
        if lost:
            self._count("lost_notifications", lost)
            self._count("lost_samples", lost * self.per)
        self._number = number
        self.clock.add(self._newest(number), arrival_ns)
        return Placement(number * self.per, self.clock.time_ns(self._newest(number)))

    def _newest(self, number: int) -> int:
        return number * self.per + self.per - 1

    def _first_in_rotation(self, rot: int) -> int:
        """The first number after the last one that the handle's rotation slot allows."""
        expected = self._number + 1
        return expected + (rot - self._rot0 - expected) % len(self.handles)

    def _by_time(self, rot: int, arrival_ns: int) -> int:
        first, size = self._first_in_rotation(rot), len(self.handles)
        acquired_now = (self.clock.index_at(arrival_ns) - (self.per - 1)) / self.per
        return first + size * max(0, math.floor((acquired_now + 0.5 - first) / size))

    def _by_rotation(self, rot: int, arrival_ns: int) -> int:
        expected, size = self._number + 1, len(self.handles)
        number = self._first_in_rotation(rot)
        if number != expected and arrival_ns < self.clock.time_ns(self._newest(number)) - self.period:
            self._count("rotation_mismatch", 1)
            self._rot0 = (rot - expected) % size
            number = expected
        late = arrival_ns - self.clock.time_ns(self._newest(number))
        if late < size * self.period - self.period / 2:
            self._late.clear()
            return number
        self._late.append((arrival_ns, late))
        if arrival_ns - self._late[0][0] < self.late_s * 1e9:
            return number
        middle = arrival_ns - self.late_s * 1e9 / 2
        first = min(d for t, d in self._late if t < middle)
        second = min(d for t, d in self._late if t >= middle)
        if second < first - self.period / 2:  # a backlog draining, not a loss: look again later
            while arrival_ns - self._late[0][0] >= self.late_s * 1e9:
                self._late.popleft()
            return number
        self._late.clear()
        self._count("reindexed", 1)
        return number + size * int((second + self.period / 2) // (size * self.period))
