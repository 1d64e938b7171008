"""A controllable now_ns stand-in for the hand-output tests (no sleeping, no timing flakiness)."""

from __future__ import annotations

MS = 1_000_000


class FakeClock:
    """A now_ns stand-in that only moves when told to."""

    def __init__(self, t_ns: int = 10_000 * MS) -> None:
        self.t = t_ns

    def __call__(self) -> int:
        return self.t

    def advance(self, ms: float) -> int:
        self.t += int(ms * MS)
        return self.t
