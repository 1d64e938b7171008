"""A simulated hand you can look at: poses drawn as a 2-D kinematic hand, saved as PNG frames.

The node records every pose it is sent (that is the simulated actuator) and hands a snapshot to
a separate render process at most ``fps`` times a second (non-blocking pipe writes), so drawing
never delays a command nor holds this process's GIL; a busy renderer draws only the newest
snapshot waiting and counts the others as skipped. At the
end of the stream it writes a contact sheet, an animated GIF and a trace of joint values over
time. Drawing needs matplotlib (Agg, no display) and pillow, both imported in ``setup()``.

The drawing is a palm view of a right hand: each finger is a chain of phalanges whose flexion
is shown by foreshortening (a segment bent towards the viewer shortens, past 90 degrees it folds
down over the palm, drawn darker); the thumb swings across the palm as it opposes and flexes.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import select
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emgflow import Param

from .hand import HandCommand, HandModel, HandOutput

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


def trace_png(path: Path, model: HandModel, t_s: np.ndarray, poses: np.ndarray, targets: np.ndarray,
              safe: np.ndarray) -> None:
    """Joint values (solid) and targets (dashed) over time, one panel per joint, safe periods shaded."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(model.joints)
    fig = Figure(figsize=(10, 1.1 * n + 1.2), dpi=100, facecolor="white")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    edges = np.flatnonzero(np.diff(np.r_[0, safe.astype(int), 0]))
    spans = [(t_s[a], t_s[min(b, len(t_s) - 1)]) for a, b in zip(edges[::2], edges[1::2])]
    spans = [(a, b) for a, b in spans if b > a]  # the instant at start-up is not a period
    for ax, j, k in zip(axes, model.joints, range(n)):
        color = FINGER_COLORS.get(j.fingers[0], "#444444")
        for a, b in spans:
            ax.axvspan(a, b, color="#d62728", alpha=0.12, linewidth=0)
        ax.plot(t_s, targets[:, k], "--", color="#777777", linewidth=0.9)
        ax.plot(t_s, poses[:, k], color=color, linewidth=1.6)
        ax.set_ylim(j.lo - 0.05 * (j.hi - j.lo), j.hi + 0.05 * (j.hi - j.lo))
        ax.set_ylabel(j.name, rotation=0, ha="right", va="center", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"hand_sim trace: {model.name} ({model.unit}); solid = pose sent, dashed = target, "
                 f"red = safe pose ({len(spans)} period{'s' if len(spans) != 1 else ''})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)


def contact_sheet(frames: list[Path], path: Path, count: int = 12, columns: int = 4, scale: float = 0.4) -> None:
    """Up to ``count`` frames, evenly spaced over the run, tiled into one PNG."""
    from PIL import Image

    picks = [frames[int(i)] for i in np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round())]
    tiles = []
    for p in picks:
        with Image.open(p) as im:
            tiles.append(im.convert("RGB").resize((int(im.width * scale), int(im.height * scale)), Image.LANCZOS))
    w, h = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (w * min(columns, len(tiles)), h * rows), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * w, (i // columns) * h))
    sheet.save(path)


def animated_gif(frames: list[Path], path: Path, fps: float, max_frames: int = 150, scale: float = 0.75) -> None:
    """An animated GIF of the frames (every k-th frame past ``max_frames``, timing preserved)."""
    from PIL import Image

    step = max(1, math.ceil(len(frames) / max_frames))
    images = []
    for p in frames[::step]:
        with Image.open(p) as im:
            small = im.convert("RGB").resize((int(im.width * scale), int(im.height * scale)), Image.BILINEAR)
            images.append(small.quantize(colors=128, method=Image.Quantize.FASTOCTREE))
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(round(1000 * step / fps)), loop=0)


def _render_main() -> None:
    """The render process: stdin carries length-prefixed pickles, first ``(model, folder)``, then
    snapshots. It prints ``ready`` once its figure exists, draws only the newest snapshot waiting
    (older ones count as skipped), and at end of input prints ``{"frames": n, "skipped": k,
    "errors": e}`` as JSON on stdout."""
    fd = sys.stdin.buffer.fileno()
    buf, config, figure = b"", None, None
    frames = skipped = errors = 0
    eof = False
    while not eof:
        chunk = os.read(fd, 1 << 16)  # wait for input
        eof = not chunk
        buf += chunk
        while not eof and select.select([fd], [], [], 0)[0]:  # then take everything already sent
            chunk = os.read(fd, 1 << 16)
            eof = not chunk
            buf += chunk
        messages = []
        while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "little"):
            size = int.from_bytes(buf[:4], "little")
            messages.append(pickle.loads(buf[4:4 + size]))
            buf = buf[4 + size:]
        if config is None and messages:
            config, messages = messages[0], messages[1:]
            figure = HandFigure(config[0])
            print("ready", flush=True)
        if not messages:
            continue
        skipped += len(messages) - 1
        try:
            folder = config[1]
            figure.draw(messages[-1])
            figure.save(Path(folder) / f"frame_{frames:05d}.png")
            frames += 1
        except Exception:  # report once on stderr (the node's console) and keep the process alive
            errors += 1
            if errors == 1:
                traceback.print_exc()
    print(json.dumps({"frames": frames, "skipped": skipped, "errors": errors}), flush=True)


class HandSim(HandOutput):
    """A simulated hand drawn to PNG frames (at most ``fps`` a second), plus a contact sheet, a GIF
    and a joint trace at the end of the stream, in ``out_dir``."""

    kind = "hand_sim"
    READY_TIMEOUT_S = 60.0

    out_dir = Param(str, "hand_sim", path=True, help="folder for frame_NNNNN.png, sheet.png, hand.gif, trace.png")
    fps = Param(float, 10.0, gt=0, le=60, unit="frames/s", help="frames rendered per second of run time, at most")
    max_frames = Param(int, 3000, ge=1, help="stop writing frames after this many (disk guard)")
    gif = Param(bool, True, help="write hand.gif from the frames at the end")
    sheet = Param(bool, True, help="write sheet.png, a contact sheet of 12 frames, at the end")
    trace = Param(bool, True, help="write trace.png, joint values over time, at the end")

    def open_device(self) -> None:
        import matplotlib.figure  # noqa: F401  (fail here, not in the render process, if missing)
        import PIL  # noqa: F401

        self.folder = Path(self.out_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("frame_*.png"):
            old.unlink()  # frames from an earlier run would mix into the GIF and sheet
        self.frames: list[Path] = []
        self._rec_t: list[int] = []
        self._rec_pose: list[np.ndarray] = []
        self._rec_target: list[np.ndarray] = []
        self._rec_safe: list[bool] = []
        self._reason = "safe pose at start"
        self._t0: int | None = None
        self._next_frame = 0
        self._sent = 0
        self._proc = subprocess.Popen([sys.executable, "-c", "from emgflow.nodes.hand_sim import _render_main; _render_main()"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._send((self.hand_model, str(self.folder)))
        ready = select.select([self._proc.stdout], [], [], self.READY_TIMEOUT_S)[0]
        if not ready or self._proc.stdout.readline().strip() != b"ready":
            self._proc.kill()
            raise RuntimeError("hand_sim: the render process did not start (see its error above)")
        os.set_blocking(self._proc.stdin.fileno(), False)  # a busy renderer never blocks a write

    def write(self, cmd: HandCommand) -> bool:
        if self._t0 is None:
            self._t0 = cmd.t_ns
        self._rec_t.append(cmd.t_ns)
        self._rec_pose.append(cmd.pose)
        self._rec_target.append(cmd.target)
        self._rec_safe.append(cmd.safe)
        if cmd.event is not None:
            self._reason = cmd.event.reason
        if cmd.t_ns >= self._next_frame:
            self._next_frame = cmd.t_ns + int(1e9 / self.fps)
            self._submit(self._snapshot(cmd.t_ns, cmd.pose, cmd.target, cmd.safe, cmd.gesture, cmd.cls))
        return True

    def finish(self) -> Any:
        out = super().finish()
        # The last frame shows the settled end-of-stream pose, whatever the frame clock says.
        self._submit(self._snapshot(self._rec_t[-1], self._rec_pose[-1], self._rec_target[-1], True, "safe", None),
                     force=True)
        self._stop_renderer()
        if self.frames and self.sheet:
            contact_sheet(self.frames, self.folder / "sheet.png")
        if self.frames and self.gif:
            animated_gif(self.frames, self.folder / "hand.gif", self.fps)
        if self.trace and len(self._rec_t) > 1:
            t = (np.array(self._rec_t) - self._rec_t[0]) / 1e9
            trace_png(self.folder / "trace.png", self.hand_model, t, np.array(self._rec_pose),
                      np.array(self._rec_target), np.array(self._rec_safe))
        self.log.info("hand_sim: %d frames in %s", len(self.frames), self.folder)
        return out

    def close_device(self) -> None:
        if getattr(self, "_proc", None) is not None:
            self._stop_renderer()

    # --- the render process -------------------------------------------------------------------
    def _snapshot(self, t_ns: int, pose: np.ndarray, target: np.ndarray, safe: bool, gesture: str,
                  cls: int | None) -> Snapshot:
        return Snapshot(t_s=(t_ns - (self._t0 or t_ns)) / 1e9, pose=pose, target=target, safe=safe,
                        gesture=gesture, cls=cls, reason=self._reason)

    def _submit(self, snap: Snapshot, force: bool = False) -> None:
        if self._sent >= self.max_frames and not force:
            self.count("frames_over_max")
            return
        if self._send(snap):
            self._sent += 1

    def _send(self, obj: Any) -> bool:
        """One length-prefixed pickle; under PIPE_BUF bytes, so a non-blocking write is all or nothing."""
        body = pickle.dumps(obj)
        try:
            os.write(self._proc.stdin.fileno(), len(body).to_bytes(4, "little") + body)
            return True
        except BlockingIOError:  # the renderer is far behind: drop this frame
            self.count("frames_skipped")
        except BrokenPipeError:
            self._bad("render_errors", "the render process has exited; no more frames")
        return False

    def _stop_renderer(self) -> None:
        proc, self._proc = self._proc, None
        os.set_blocking(proc.stdin.fileno(), True)
        try:
            out, _ = proc.communicate(timeout=60)
            stats = json.loads(out.decode().strip().splitlines()[-1])
            self.count("frames_skipped", stats["skipped"])
            if stats["errors"]:
                self.count("render_errors", stats["errors"])
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            proc.kill()
            proc.wait()
            self._bad("render_errors", "the render process did not finish cleanly")
        self.frames = sorted(self.folder.glob("frame_*.png"))
