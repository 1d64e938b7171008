"""Hand models and the safety core shared by every hand output node (serial, UDP, sim).

A hand output turns a stream of commands (classifier decisions or joint targets) into poses
written to a device. Whatever the device, the same :class:`HandSafety` stands between the
stream and the hand: it clamps every command to the joint limits, refuses commands older than
a deadline, limits joint speed using real elapsed time, and drives the hand to a safe pose when
commands stop arriving (watchdog). :class:`HandOutput` is the node base class that wires it:
subclasses only open, write to and close their device.

Poses are described once, in a model-independent *finger space* (flexion 0..1 of thumb, index,
middle, ring and little finger, plus thumb opposition 0..1), and each model maps finger space
onto its own joints; so one grip table serves every model.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from emgflow import In, Msg, Node, Out, Param, ParamError, StreamInfo, now_ns

FINGERS = ("thumb", "index", "middle", "ring", "little", "thumb_rot")
"""Finger-space coordinates: flexion of each finger (0 open, 1 closed) and thumb opposition."""

HOLD = "hold"
"""Pose name meaning "keep the current target" (also what class -1, no decision, does)."""


@dataclass(frozen=True)
class Joint:
    """One controllable joint or actuator.

    ``lo``/``hi``: hard limits in the model's unit. ``fingers``: the finger-space coordinates that
    drive it in grips (averaged). ``open``/``closed``: its value at finger-space 0 and 1.
    ``segment``: which phalanx it moves (``all``, ``mcp``, ``pip``, ``ip``), used for drawing.
    """

    name: str
    lo: float
    hi: float
    fingers: tuple[str, ...]
    open: float
    closed: float
    segment: str = "all"


@dataclass(frozen=True)
class HandModel:
    """A hand: named joints with limits, a unit, a maximum joint speed and a safe pose (grip name)."""

    name: str
    unit: str
    joints: tuple[Joint, ...]
    max_speed: float
    """Largest joint speed the rate limiter allows, in ``unit`` per second."""
    safe: str = "rest"
    description: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def lo(self) -> np.ndarray:
        return np.array([j.lo for j in self.joints])

    @property
    def hi(self) -> np.ndarray:
        return np.array([j.hi for j in self.joints])

    def from_fingers(self, fingers: Mapping[str, float]) -> np.ndarray:
        """The joint vector of a finger-space pose (missing coordinates count as 0)."""
        out = np.empty(len(self.joints))
        for i, j in enumerate(self.joints):
            flex = float(np.mean([fingers.get(f, 0.0) for f in j.fingers]))
            out[i] = j.open + flex * (j.closed - j.open)
        return np.clip(out, self.lo, self.hi)

    def grip(self, name: str) -> np.ndarray:
        """The joint vector of a named grip (see ``GRIPS``)."""
        return self.from_fingers(GRIPS[name])


def _finger_moves() -> dict[str, dict[str, float]]:
    """Single-finger movements of Ninapro exercise A, each relative to the relaxed rest pose."""
    moves = {}
    for f in ("index", "middle", "ring", "little"):
        moves[f"{f}_flex"] = {**_REST, f: 1.0}
        moves[f"{f}_ext"] = {**_REST, f: 0.0}
    moves["thumb_add"] = {**_REST, "thumb": 0.3, "thumb_rot": 0.0}
    moves["thumb_abd"] = {**_REST, "thumb": 0.0, "thumb_rot": 0.8}
    moves["thumb_flex"] = {**_REST, "thumb": 1.0, "thumb_rot": 0.5}
    moves["thumb_ext"] = {**_REST, "thumb": 0.0, "thumb_rot": 0.0}
    return moves


_REST = dict(thumb=0.2, index=0.2, middle=0.25, ring=0.3, little=0.35, thumb_rot=0.3)
GRIPS: dict[str, dict[str, float]] = {
    "open": dict(thumb=0.0, index=0.0, middle=0.0, ring=0.0, little=0.0, thumb_rot=0.0),
    "rest": _REST,
    "power": dict(thumb=0.65, index=1.0, middle=1.0, ring=1.0, little=1.0, thumb_rot=0.5),
    "pinch": dict(thumb=0.55, index=0.6, middle=0.0, ring=0.0, little=0.0, thumb_rot=1.0),
    "tripod": dict(thumb=0.6, index=0.6, middle=0.6, ring=0.1, little=0.1, thumb_rot=1.0),
    "point": dict(thumb=0.6, index=0.0, middle=1.0, ring=1.0, little=1.0, thumb_rot=0.7),
    "hook": dict(thumb=0.0, index=0.75, middle=0.75, ring=0.75, little=0.75, thumb_rot=0.0),
    "key": dict(thumb=0.6, index=0.85, middle=0.9, ring=0.95, little=1.0, thumb_rot=0.0),
    **_finger_moves(),
}
"""Named poses in finger space, shared by every model."""


def _fraction_joint(name: str, *fingers: str) -> Joint:
    return Joint(name, 0.0, 1.0, fingers or (name,), 0.0, 1.0)


MODELS: dict[str, HandModel] = {
    m.name: m for m in (
        HandModel("brunel", "fraction closed",
                  tuple(_fraction_joint(f) for f in ("thumb", "index", "middle", "ring", "little")),
                  max_speed=2.0,
                  description="5 fingers, position 0 (open) .. 1 (closed) each: an Open Bionics "
                              "Brunel/Ada-style hand driven by FingerLib serial commands."),
        HandModel("brunel4", "fraction closed",
                  (_fraction_joint("thumb"), _fraction_joint("index"), _fraction_joint("middle"),
                   _fraction_joint("ring_little", "ring", "little")),
                  max_speed=2.0,
                  description="The 4 motors of a real Brunel hand on a Chestnut board (Beetroot "
                              "firmware): thumb, index, middle, ring+little, 0..1 each."),
        HandModel("ability", "deg",
                  (Joint("index", 0, 100, ("index",), 0, 90),
                   Joint("middle", 0, 100, ("middle",), 0, 90),
                   Joint("ring", 0, 100, ("ring",), 0, 90),
                   Joint("pinky", 0, 100, ("little",), 0, 90),
                   Joint("thumb_flexor", 0, 100, ("thumb",), 0, 60),
                   Joint("thumb_rotator", -100, 0, ("thumb_rot",), 0, -80)),
                  max_speed=400.0,
                  description="PSYONIC Ability-Hand-style 6 DOF in degrees, in the order of its "
                              "position frame: index, middle, ring, pinky, thumb flexor (0..100), "
                              "thumb rotator (0..-100)."),
        HandModel("glove10", "deg",
                  (Joint("thumb_mcp", 0, 70, ("thumb",), 0, 50, "mcp"),
                   Joint("thumb_ip", 0, 90, ("thumb",), 0, 70, "ip"),
                   Joint("index_mcp", 0, 95, ("index",), 0, 85, "mcp"),
                   Joint("index_pip", 0, 110, ("index",), 0, 100, "pip"),
                   Joint("middle_mcp", 0, 95, ("middle",), 0, 85, "mcp"),
                   Joint("middle_pip", 0, 110, ("middle",), 0, 100, "pip"),
                   Joint("ring_mcp", 0, 95, ("ring",), 0, 85, "mcp"),
                   Joint("ring_pip", 0, 110, ("ring",), 0, 100, "pip"),
                   Joint("little_mcp", 0, 95, ("little",), 0, 85, "mcp"),
                   Joint("little_pip", 0, 110, ("little",), 0, 100, "pip")),
                  max_speed=400.0,
                  description="The 10 finger joint angles the regression models output (CyberGlove "
                              "II sensors 1,2,4,5,7,8,11,12,15,16: thumb MCP/IP, MCP and PIP of "
                              "the four fingers), in degrees."),
    )
}

GESTURE_PRESETS: dict[str, dict[int, str]] = {
    "ninapro-e1": {0: "rest", 1: "index_flex", 2: "index_ext", 3: "middle_flex", 4: "middle_ext",
                   5: "ring_flex", 6: "ring_ext", 7: "little_flex", 8: "little_ext", 9: "thumb_add",
                   10: "thumb_abd", 11: "thumb_flex", 12: "thumb_ext"},
    "libemg-myo": {0: "power", 1: "open", 2: HOLD, 3: HOLD, 4: HOLD},
    "coteallard": {0: HOLD, 1: HOLD, 2: HOLD, 3: HOLD, 4: HOLD, 5: "power", 6: "open"},
}
"""Class id -> pose maps: Ninapro exercise A (DB1/DB5 E1 labels 0..12), LibEMG's
OneSubjectMyo classes (0 close, 1 open, 2 no motion, 3/4 wrist moves, which a hand holds) and
the Côté-Allard Myo set (0 neutral, 1 radial deviation, 2 wrist flexion, 3 ulnar deviation,
4 wrist extension: all held, as a hand without a wrist keeps its grip; 5 hand close, 6 hand open)."""


def resolve_pose(model: HandModel, spec: Any, param: str) -> np.ndarray | None:
    """A pose from a grip name, ``"hold"`` (None) or a joint list; ParamError names ``param``."""
    if spec == HOLD:
        return None
    if isinstance(spec, str):
        if spec not in GRIPS:
            raise ParamError(param, f"unknown grip {spec!r}; known: {', '.join(sorted(GRIPS))}, {HOLD}")
        return model.grip(spec)
    if isinstance(spec, (list, tuple)):
        try:
            pose = np.asarray(spec, dtype=float)
        except (TypeError, ValueError):
            raise ParamError(param, f"pose {spec!r} is not a list of numbers") from None
        if pose.shape != (len(model.joints),) or not np.all(np.isfinite(pose)):
            raise ParamError(param, f"pose {spec!r} must be {len(model.joints)} finite numbers "
                                    f"({', '.join(model.names)})")
        bad = [n for n, v, lo, hi in zip(model.names, pose, model.lo, model.hi) if not lo <= v <= hi]
        if bad:
            raise ParamError(param, f"pose {spec!r} is outside the limits of {', '.join(bad)} "
                                    f"(model {model.name})")
        return pose
    raise ParamError(param, f"a pose is a grip name, {HOLD!r} or a list of joint values, got {spec!r}")


def resolve_gestures(model: HandModel, spec: str | Mapping[Any, Any]) -> dict[int, tuple[str, np.ndarray | None]]:
    """Class id -> (display name, pose or None for hold), from a preset name or a dict."""
    if isinstance(spec, str):
        if spec not in GESTURE_PRESETS:
            raise ParamError("gestures", f"unknown preset {spec!r}; known: {', '.join(GESTURE_PRESETS)} "
                                         "(or give a dict class -> grip name or pose)")
        spec = GESTURE_PRESETS[spec]
    out: dict[int, tuple[str, np.ndarray | None]] = {}
    for key, value in spec.items():
        try:
            cls = int(key)
        except (TypeError, ValueError):
            raise ParamError("gestures", f"class {key!r} is not an integer") from None
        if cls < 0 or str(cls) != str(key).strip():
            raise ParamError("gestures", f"class {key!r} must be an integer >= 0 (-1 always means hold)")
        name = value if isinstance(value, str) else "pose"
        out[cls] = (name, resolve_pose(model, value, "gestures"))
    return out


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

    # --- lifecycle ------------------------------------------------------------------------------
    def setup(self) -> None:
        self.safety = HandSafety(self.hand_model, timeout_ms=self.timeout_ms, max_age_ms=self.max_age_ms,
                                 safe_pose=self.safe_target, hold_safe=self.hold_safe,
                                 max_speed=self.max_speed, clock=self.clock, counters=self.counters,
                                 log=self.log)
        self._cls: int | None = None
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
        self.safety.go_safe("end of stream", expected=True)
        rows, events, t_acq = [], [], 0
        deadline = self.clock() + int(self.SETTLE_S * 1e9)
        while True:
            row, evs, t_acq = self._advance(fresh=False)
            rows += row
            events += evs
            if self.safety.settled or self.clock() >= deadline:
                break
            self.sleep(self.tick_ms / 1000)
        return self._publish(rows, events, t_acq)

    def teardown(self) -> None:
        self.close_device()

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

    def _advance(self, fresh: bool) -> tuple[list[np.ndarray], list[SafetyEvent], int]:
        """One safety step and one device write: (pose rows written, events, t_acq in force)."""
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
        return ([pose] if written else []), events, cmd.t_acq

    def _publish(self, rows: list[np.ndarray], events: list[SafetyEvent], t_acq: int) -> dict[str, Msg]:
        out = {}
        if rows:
            out["pose"] = Msg(data=np.vstack(rows), start=self._pose_start, t_acq=t_acq)
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
