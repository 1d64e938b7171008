"""The base of every hand output node (serial, UDP, sim): commands in, safe poses out to a device.

:class:`HandOutput` decodes commands (classifier decisions or joint targets), runs them through
:class:`~emgflow.hand.safety.HandSafety` and hands each step to its subclass as a
:class:`HandCommand`; subclasses only open, write to and close their device.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo, now_ns
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out

from .models import GESTURE_PRESETS, HOLD, MODELS, resolve_gestures, resolve_pose
from .safety import HandSafety, SafetyEvent


@dataclass(frozen=True)
class HandCommand:
    """What a hand output writes on one step: the rate-limited pose and its context."""

    pose: np.ndarray
    target: np.ndarray
    safe: bool
    fresh: bool
    """A command was accepted on this step (devices with action semantics send only then)."""
    cls: int | None
    """Class id in force for class input (-1 hold); None for joint input or in the safe state."""
    gesture: str
    event: SafetyEvent | None
    t_acq: int
    t_ns: int

    @property
    def settled(self) -> bool:
        """The pose has reached the target: a device that throttles writes must send this one."""
        return bool(np.array_equal(self.pose, self.target))


class HandOutput(Node):
    """Base of the hand output nodes: decode commands, run :class:`HandSafety`, write poses.

    Subclasses implement ``open_device``, ``write`` and ``close_device``. ``write`` is called
    every ``tick_ms`` and on every accepted command. ``clock`` and ``sleep`` are class attributes
    so tests can replace them on an instance before ``setup()``.
    """

    tick_ms: ClassVar[float | None] = 10.0
    clock: Callable[[], int] = staticmethod(now_ns)
    sleep: Callable[[float], None] = staticmethod(time.sleep)
    SETTLE_S: ClassVar[float] = 2.0
    """Longest time ``finish()`` spends moving the hand to its safe pose at max speed."""

    model = Param(str, "brunel", choices=tuple(MODELS), help="hand model (joints, limits, max speed)")
    input = Param(str, "class", choices=("class", "joints"),
                  help="class: (N,1) class ids mapped to poses by `gestures`; joints: (N,J) joint targets")
    gestures = Param((str, dict), "ninapro-e1",
                     help="class id -> grip name, 'hold' or joint list; or a preset: "
                          + ", ".join(GESTURE_PRESETS) + ". Class -1 (no decision) always holds")
    safe_pose = Param((str, list), None, nullable=True,
                      help="pose the watchdog drives to: grip name, joint list or 'hold' (freeze); "
                           "null = the model's safe pose")
    timeout_ms = Param(float, 250.0, gt=0, unit="ms",
                       help="watchdog: no accepted command for this long sends the hand to its safe pose")
    max_age_ms = Param(float, 100.0, gt=0, nullable=True, unit="ms",
                       help="commands whose t_acq is older than this are refused; null disables the check "
                            "(and accepts commands without t_acq)")
    max_speed = Param(float, None, gt=0, nullable=True, unit="model unit/s",
                      help="joint speed limit; null = the model's max_speed")
    input_range = Param(list, None, nullable=True,
                        help="joints input: one (lo, hi) pair for all joints, or J pairs, mapped linearly "
                             "onto each joint's limits; null = targets already in model units")

    in_ = In(policy="latest", queue=1, help="commands; only the freshest row of the freshest message is used")
    pose = Out(help="(1,J) pose written to the hand, one row per write, t_acq of the command in force")
    event = Out(help="(1,1) safety events: 1 = safe pose engaged, 0 = control resumed; meta event/reason")

    # --- configuration -------------------------------------------------------------------------
    def check(self) -> None:
        self.hand_model = MODELS[self.model]
        self.gesture_map = resolve_gestures(self.hand_model, self.gestures)
        self.hold_safe = self.safe_pose == HOLD
        self.safe_target = None if self.safe_pose in (None, HOLD) else resolve_pose(
            self.hand_model, self.safe_pose, "safe_pose")
        self.in_lo, self.in_hi = self._input_range()

    def _input_range(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.input_range is None:
            return None, None
        n = len(self.hand_model.joints)
        try:
            r = np.asarray(self.input_range, dtype=float)
        except (TypeError, ValueError):
            raise ParamError("input_range", "expected [lo, hi] or a list of [lo, hi] pairs") from None
        if r.shape == (2,):
            r = np.tile(r, (n, 1))
        if r.shape != (n, 2) or not np.all(np.isfinite(r)) or np.any(r[:, 1] <= r[:, 0]):
            raise ParamError("input_range", f"expected [lo, hi] or {n} pairs with lo < hi, got {self.input_range!r}")
        return r[:, 0], r[:, 1]

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        want = 1 if self.input == "class" else len(self.hand_model.joints)
        if info.channels is not None and info.channels != want:
            what = "1 column of class ids" if self.input == "class" else \
                f"{want} joint targets ({', '.join(self.hand_model.names)})"
            raise ParamError("input", f"input {self.input!r} with model {self.model!r} expects {what}, "
                                      f"the stream has {info.channels} channels")
        return {"pose": StreamInfo(rate=0.0, channels=len(self.hand_model.joints), names=self.hand_model.names),
                "event": StreamInfo(rate=0.0, channels=1, names=("safe",))}

    # --- device hooks ---------------------------------------------------------------------------
    def open_device(self) -> None:
        """Open the device (heavy imports belong here)."""

    def write(self, cmd: HandCommand) -> bool:
        """Send one step to the device; True when something was written."""
        raise NotImplementedError

    def close_device(self) -> None:
        """Release the device."""

    def pose_meta(self, cmd: HandCommand) -> dict[str, Any]:
        """Meta of a ``pose`` message whose newest row is ``cmd``'s (a view of the hand draws from it)."""
        return {}

    # --- lifecycle ------------------------------------------------------------------------------
    def setup(self) -> None:
        self.safety = HandSafety(self.hand_model, timeout_ms=self.timeout_ms, max_age_ms=self.max_age_ms,
                                 safe_pose=self.safe_target, hold_safe=self.hold_safe,
                                 max_speed=self.max_speed, clock=self.clock, counters=self.counters,
                                 log=self.log)
        self._cls: int | None = None
        self._settled = False  # the safe stop has run (finish or teardown)
        self._gesture = "safe"
        self._pose_start = self._event_start = 0
        self.open_device()
        self._advance(fresh=False)  # the hand starts from its safe pose

    def process(self, msg: Msg) -> dict[str, Msg]:
        accepted = self._accept(msg)
        return self._publish(*self._advance(fresh=accepted))

    def tick(self) -> dict[str, Msg]:
        return self._publish(*self._advance(fresh=False))

    def finish(self) -> dict[str, Msg]:
        """End of stream: move the hand to its safe pose at max speed before the node exits."""
        return self._publish(*self._settle("end of stream", expected=True))

    def teardown(self) -> None:
        """However the node stops (end of stream, a signal, its supervisor's death, a crash), the
        device's last commands bring the hand to its safe pose (at most SETTLE_S) before it closes."""
        try:
            if getattr(self, "safety", None) is not None and not self._settled:
                self._settle("node stopping")
        finally:
            self.close_device()

    def _settle(self, reason: str, expected: bool = False) -> tuple[list[np.ndarray], list[SafetyEvent], HandCommand]:
        """Go safe and step until the pose is there or SETTLE_S has passed."""
        self._settled = True
        self.safety.go_safe(reason, expected=expected)
        rows, events = [], []
        deadline = self.clock() + int(self.SETTLE_S * 1e9)
        while True:
            row, evs, cmd = self._advance(fresh=False)
            rows += row
            events += evs
            if self.safety.settled or self.clock() >= deadline:
                return rows, events, cmd
            self.sleep(self.tick_ms / 1000)

    # --- internals ------------------------------------------------------------------------------
    def _accept(self, msg: Msg) -> bool:
        """Decode the freshest row of ``msg`` and offer it to the safety core."""
        data = np.asarray(msg.data)
        want = 1 if self.input == "class" else len(self.hand_model.joints)
        if data.ndim != 2 or data.shape[1] != want or len(data) == 0:
            return self._bad("bad_msg", f"expected (N,{want}) data, got shape {data.shape}")
        if self.input == "joints":
            if not np.issubdtype(data.dtype, np.number):
                return self._bad("bad_msg", f"joint targets must be numbers, got {data.dtype}")
            target = data[-1].astype(float)
            if self.in_lo is not None:
                lo, hi = self.hand_model.lo, self.hand_model.hi
                target = lo + (target - self.in_lo) / (self.in_hi - self.in_lo) * (hi - lo)
            if self.safety.command(target, msg.t_acq):
                self._cls, self._gesture = None, "joints"
                return True
            return False
        value = data[-1, 0]
        if not np.issubdtype(data.dtype, np.number) or not np.isfinite(value) or value != int(value):
            return self._bad("bad_msg", f"class id must be an integer, got {value!r}")
        cls = int(value)
        if cls == -1:
            name, pose = HOLD, None
        elif cls in self.gesture_map:
            name, pose = self.gesture_map[cls]
        else:
            return self._bad("unknown_class", f"class {cls} is not in the gesture map "
                                              f"({sorted(self.gesture_map)}); refused")
        if self.safety.command(pose, msg.t_acq):
            self._cls, self._gesture = cls, name
            return True
        return False

    def _advance(self, fresh: bool) -> tuple[list[np.ndarray], list[SafetyEvent], HandCommand]:
        """One safety step and one device write: (pose rows written, events, the step's command)."""
        pose = self.safety.step()
        events = self.safety.take_events()
        safe = self.safety.safe
        cmd = HandCommand(pose=pose, target=self.safety.target.copy(), safe=safe, fresh=fresh,
                          cls=None if safe else self._cls, gesture="safe" if safe else self._gesture,
                          event=events[-1] if events else None, t_acq=self.safety.t_acq,
                          t_ns=self.clock())
        written = self.write(cmd)
        if written:
            self.count("writes")
        return ([pose] if written else []), events, cmd

    def _publish(self, rows: list[np.ndarray], events: list[SafetyEvent], cmd: HandCommand) -> dict[str, Msg]:
        out = {}
        t_acq = cmd.t_acq
        if rows:
            out["pose"] = Msg(data=np.vstack(rows), start=self._pose_start, t_acq=t_acq, meta=self.pose_meta(cmd))
            self._pose_start += len(rows)
        if events:
            out["event"] = Msg(data=np.array([[1 if e.kind == "safe" else 0] for e in events]),
                               start=self._event_start, t_acq=t_acq,
                               meta={"event": events[-1].kind, "reason": events[-1].reason,
                                     "events": [[e.kind, e.reason] for e in events]})
            self._event_start += len(events)
        return out

    def _bad(self, key: str, why: str) -> bool:
        self.count(key)
        level = logging.WARNING if self.counters[key] == 1 else logging.DEBUG
        self.log.log(level, "hand: message dropped (%s): %s", key, why)
        return False
