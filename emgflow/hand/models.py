"""Hand models: joints with limits, and the named poses every model shares.

Poses are described once, in a model-independent *finger space* (flexion 0..1 of thumb, index,
middle, ring and little finger, plus thumb opposition 0..1), and each model maps finger space
onto its own joints; so one grip table serves every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from emgflow.errors import ParamError

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
