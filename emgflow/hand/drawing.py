"""A hand you can look at: poses drawn as a 2-D kinematic hand with joint bars beside it.

The drawing is a palm view of a right hand: each finger is a chain of phalanges whose flexion
is shown by foreshortening (a segment bent towards the viewer shortens, past 90 degrees it folds
down over the palm, drawn darker); the thumb swings across the palm as it opposes and flexes.
matplotlib (Agg, no display) is imported only when a figure is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .models import HandModel

FINGER_COLORS = {"thumb": "#d6604d", "index": "#f4a582", "middle": "#5aae61", "ring": "#4393c3",
                 "little": "#9970ab", "thumb_rot": "#8c510a"}
SKIN, SKIN_DARK, OUTLINE = "#f1cfb4", "#d9a585", "#7a5040"

# Finger base (x, y), in-plane direction (degrees counter-clockwise from +y), phalanx lengths, width.
_FINGERS = {
    "index": ((0.70, 2.02), -7.0, (1.00, 0.62, 0.44), 0.34),
    "middle": ((0.23, 2.12), -1.0, (1.10, 0.70, 0.48), 0.35),
    "ring": ((-0.25, 2.05), 5.0, (1.02, 0.66, 0.46), 0.33),
    "little": ((-0.68, 1.86), 12.0, (0.80, 0.50, 0.40), 0.29),
}
_THUMB = ((0.62, 0.20), (1.00, 0.66, 0.52), 0.40)
_MAX_FLEX = {"mcp": 85.0, "pip": 100.0, "dip": 70.0, "thumb_mcp": 55.0, "thumb_ip": 70.0}
_PALM = [(-0.62, -0.85), (0.58, -0.85), (0.62, 0.05), (0.98, 0.45), (1.02, 1.25), (0.95, 1.95),
         (0.55, 2.18), (0.0, 2.25), (-0.5, 2.18), (-0.9, 1.9), (-0.98, 1.1), (-0.9, 0.15), (-0.66, 0.0)]


def _smooth(points: list[tuple[float, float]], rounds: int = 3) -> np.ndarray:
    """Chaikin corner cutting: a closed polygon with rounded corners."""
    p = np.asarray(points, dtype=float)
    for _ in range(rounds):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return p


def finger_flexion(model: HandModel, pose: np.ndarray) -> dict[str, dict[str, float]]:
    """Flexion fraction (0 open .. 1 closed) per finger and segment, read from a model pose.

    A joint that names its segment (glove10: ``mcp``/``pip``/``ip``) drives that segment; a
    whole-finger joint (brunel, ability) drives every segment of its finger(s). DIP follows PIP.
    """
    per: dict[str, dict[str, list[float]]] = {}
    for joint, value in zip(model.joints, pose):
        span = joint.closed - joint.open
        frac = float(np.clip((value - joint.open) / span, 0.0, 1.0)) if span else 0.0
        for f in joint.fingers:
            per.setdefault(f, {}).setdefault(joint.segment, []).append(frac)
    out = {}
    for f, segs in per.items():
        whole = float(np.mean(segs["all"])) if "all" in segs else 0.0
        out[f] = {s: float(np.mean(segs[s])) if s in segs else whole for s in ("mcp", "pip", "ip")}
        out[f]["all"] = whole
    return out


def hand_geometry(model: HandModel, pose: np.ndarray) -> dict[str, list[tuple[np.ndarray, bool]]]:
    """Per finger, the phalanx segments as (2x2 array of end points, folded over the palm?)."""
    flex = finger_flexion(model, pose)
    geo: dict[str, list[tuple[np.ndarray, bool]]] = {}
    for name, (base, spread, lengths, _) in _FINGERS.items():
        f = flex.get(name, {"mcp": 0.0, "pip": 0.0})
        angles = np.cumsum([f["mcp"] * _MAX_FLEX["mcp"], f["pip"] * _MAX_FLEX["pip"], f["pip"] * _MAX_FLEX["dip"]])
        u = np.array([-math.sin(math.radians(spread)), math.cos(math.radians(spread))])
        p, segs = np.array(base, dtype=float), []
        for length, ang in zip(lengths, angles):
            c = math.cos(math.radians(ang))
            q = p + length * c * u
            segs.append((np.stack([p, q]), c < 0))
            p = q
        geo[name] = segs
    t = flex.get("thumb", {"mcp": 0.0, "ip": 0.0, "all": 0.0})
    # Without a rotation joint (brunel, glove10) the thumb is drawn opposing as it flexes.
    rot = flex["thumb_rot"]["all"] if "thumb_rot" in flex else 0.25 + 0.5 * (t["mcp"] + t["ip"]) / 2
    base, lengths, _ = _THUMB
    psi = [-45.0 + 40.0 * rot]
    psi.append(psi[0] + 10.0 + 1.4 * t["mcp"] * _MAX_FLEX["thumb_mcp"] * (0.5 + rot))
    psi.append(psi[1] + 1.2 * t["ip"] * _MAX_FLEX["thumb_ip"] * (0.5 + rot))
    shrink = [1.0, 1.0 - 0.25 * rot, 1.0 - 0.25 * rot]
    p, segs = np.array(base, dtype=float), []
    for length, ang, k in zip(lengths, psi, shrink):
        q = p + length * k * np.array([-math.sin(math.radians(ang)), math.cos(math.radians(ang))])
        segs.append((np.stack([p, q]), ang > 35.0))  # a thumb swung across the palm lies in front
        p = q
    geo["thumb"] = segs
    return geo


@dataclass(frozen=True)
class Snapshot:
    """What one frame shows."""

    t_s: float
    pose: np.ndarray
    target: np.ndarray
    safe: bool
    gesture: str
    cls: int | None
    reason: str


class HandFigure:
    """A reusable matplotlib figure (Agg, no pyplot state): hand drawing plus joint bars."""

    def __init__(self, model: HandModel, title: str = "") -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Polygon

        self.model = model
        self.fig = Figure(figsize=(9.6, 5.4), dpi=100, facecolor="white")
        FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_axes((0.02, 0.02, 0.44, 0.84))
        self.ax.set_xlim(-1.8, 2.6)
        self.ax.set_ylim(-1.0, 4.5)
        self.ax.set_aspect("equal")
        self.ax.axis("off")
        self.ax.add_patch(Polygon(_smooth(_PALM), closed=True, facecolor=SKIN, edgecolor=OUTLINE,
                                  linewidth=2.0, zorder=1))
        scale = self.ax.get_window_extent().height / 5.5 * 72 / self.fig.dpi  # points per data unit
        self.lines: dict[str, list[tuple[Any, Any]]] = {}
        for name, width in [(n, g[3]) for n, g in _FINGERS.items()] + [("thumb", _THUMB[2])]:
            segs = []
            for _ in range(3):
                edge, = self.ax.plot([], [], color=OUTLINE, linewidth=width * scale + 3, solid_capstyle="round")
                fill, = self.ax.plot([], [], color=SKIN, linewidth=width * scale, solid_capstyle="round")
                segs.append((edge, fill))
            self.lines[name] = segs
        self.knuckles, = self.ax.plot([], [], "o", color=OUTLINE, markersize=3.5, zorder=8)
        self.ax.text(0.0, -0.98, "right hand, palm view", ha="center", va="bottom", fontsize=9, color="#777777")

        n = len(model.joints)
        self.bar_ax = self.fig.add_axes((0.58, 0.08, 0.31, 0.76))
        self.bar_ax.set_xlim(0, 1)
        self.bar_ax.set_ylim(n - 0.5, -0.5)
        self.bar_ax.set_yticks(range(n), [j.name for j in model.joints], fontsize=10)
        self.bar_ax.set_xticks([0, 0.5, 1], ["open", "", "closed"], fontsize=9)
        for side in ("top", "right"):
            self.bar_ax.spines[side].set_visible(False)
        self.bar_ax.barh(range(n), [1] * n, color="#eeeeee", height=0.62)
        colors = [FINGER_COLORS.get(j.fingers[0], "#888888") for j in model.joints]
        self.bars = self.bar_ax.barh(range(n), [0] * n, color=colors, height=0.62)
        self.marks = [self.bar_ax.plot([0, 0], [i - 0.38, i + 0.38], color="black", linewidth=1.6)[0]
                      for i in range(n)]
        self.values = [self.bar_ax.text(1.02, i, "", va="center", fontsize=9, family="monospace")
                       for i in range(n)]
        self.bar_ax.set_title(f"joints ({model.unit}); black tick = target", fontsize=10, loc="left")
        self.fig.text(0.02, 0.955, title or f"emgflow hand_sim: {model.name}", fontsize=13, weight="bold")
        self.banner = self.fig.text(0.98, 0.955, "", fontsize=12, weight="bold", ha="right", color="white",
                                    bbox=dict(boxstyle="round,pad=0.35", facecolor="#2ca02c", edgecolor="none"))
        self.subtitle = self.fig.text(0.02, 0.905, "", fontsize=10, color="#444444")

    def draw(self, snap: Snapshot) -> None:
        """Update every artist to show ``snap``."""
        knuckles = []
        for name, segs in hand_geometry(self.model, snap.pose).items():
            for (edge, fill), (pts, folded) in zip(self.lines[name], segs):
                for line in (edge, fill):
                    line.set_data(pts[:, 0], pts[:, 1])
                edge.set_zorder(4 if folded else 2)
                fill.set_zorder(5 if folded else 3)
                fill.set_color(SKIN_DARK if folded else SKIN)
                knuckles.append(pts[0])
        knuckles = np.array(knuckles)
        self.knuckles.set_data(knuckles[:, 0], knuckles[:, 1])
        for i, j in enumerate(self.model.joints):
            self.bars[i].set_width(self._frac(j, snap.pose[i]))
            x = self._frac(j, snap.target[i])
            self.marks[i].set_xdata([x, x])
            self.values[i].set_text(f"{snap.pose[i]:7.2f}" if self.model.unit != "deg" else f"{snap.pose[i]:6.1f}°")
        if snap.safe:
            self.banner.set_text("SAFE POSE")
            self.banner.get_bbox_patch().set_facecolor("#d62728")
            self.subtitle.set_text(f"t = {snap.t_s:6.2f} s   {snap.reason}")
        else:
            self.banner.set_text("ACTIVE")
            self.banner.get_bbox_patch().set_facecolor("#2ca02c")
            cls = "" if snap.cls is None else f"class {snap.cls}: "
            self.subtitle.set_text(f"t = {snap.t_s:6.2f} s   command: {cls}{snap.gesture}")

    @staticmethod
    def _frac(joint: Any, value: float) -> float:
        """Position of ``value`` between the joint's open end (0) and closed end (1) of its limits."""
        start, end = (joint.lo, joint.hi) if joint.closed >= joint.open else (joint.hi, joint.lo)
        return float(np.clip((value - start) / (end - start), 0.0, 1.0))

    def save(self, path: Path) -> None:
        self.fig.savefig(path, dpi=self.fig.dpi, facecolor="white")
