"""Draw a simulated hand: the newest pose of a ``hand_sim`` as PNG frames, then a contact sheet and
an animated GIF.

Fed by a hand_sim's ``pose`` output with ``policy: latest, queue: 1`` (the port's default): while
a frame is being drawn the runtime keeps only the newest pose and counts the others as dropped,
so drawing never delays the hand and runs in its own supervised process. Frames follow the
hand's clock (``t_ns`` in the pose meta): at most ``fps`` a second, and at most ``still_fps``
while the picture would not change but for its clock, because a hand mostly holds a pose and a
frame costs tens of milliseconds of a core. The GIF shows each frame until the next one's time,
so it plays at the pace of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from emgflow import In, Msg, Node, Param, ParamError, StreamInfo
from emgflow.hand.artifacts import animated_gif, contact_sheet
from emgflow.hand.drawing import HandFigure, Snapshot
from emgflow.hand.models import MODELS


class HandView(Node):
    """Frames of a simulated hand (at most ``fps`` a second, ``still_fps`` while it holds still),
    plus a contact sheet and a GIF at the end of the stream, in ``out_dir``."""

    kind = "hand_view"

    in_ = In(policy="latest", queue=1, help="a hand_sim's pose output; only the newest pose is drawn")
    model = Param(str, "brunel", choices=tuple(MODELS), help="the hand_sim's model")
    out_dir = Param(str, "hand_sim", path=True, help="folder for frame_NNNNN.png, sheet.png, hand.gif")
    fps = Param(float, 10.0, gt=0, le=60, unit="frames/s", help="frames drawn per second of run time, at most")
    still_fps = Param(float, 1.0, gt=0, le=60, unit="frames/s",
                      help="frames per second, at most, while only the clock on the frame would change")
    max_frames = Param(int, 3000, ge=1, help="stop writing frames after this many (disk guard)")
    gif = Param(bool, True, help="write hand.gif from the frames at the end")
    sheet = Param(bool, True, help="write sheet.png, a contact sheet of 12 frames, at the end")

    def check(self) -> None:
        if self.still_fps > self.fps:
            raise ParamError("still_fps", f"{self.still_fps:g} is above fps ({self.fps:g})")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        joints = len(MODELS[self.model].joints)
        channels = inputs.get("in", StreamInfo()).channels
        if channels is not None and channels != joints:
            raise ParamError("model", f"model {self.model!r} has {joints} joints, the pose stream {channels} "
                                      "columns; give the hand_sim's model")
        return {}

    def setup(self) -> None:
        import PIL  # noqa: F401  (fail at start, not at the end of the run, if missing)

        self.hand_model = MODELS[self.model]
        self.figure = HandFigure(self.hand_model)
        self.folder = Path(self.out_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("frame_*.png"):
            old.unlink()  # frames from an earlier run would mix into the GIF and sheet
        self.frames: list[Path] = []
        self._frame_t: list[float] = []
        self._t0: int | None = None
        self._newest: tuple[int, Snapshot] | None = None
        self._drawn: tuple[int, Snapshot] | None = None

    def process(self, msg: Msg) -> None:
        newest = self._read(msg)
        if newest is None:
            return
        self._newest = newest
        if self._due(*newest):
            self._draw(*newest)

    def finish(self) -> None:
        """The last frame shows the settled end-of-stream pose, whatever the frame clock says."""
        if self._newest is not None and self._newest is not self._drawn:
            self._draw(*self._newest)
        if self.frames and self.sheet:
            contact_sheet(self.frames, self.folder / "sheet.png")
        if self.frames and self.gif:
            animated_gif(self.frames, self._frame_t, self.folder / "hand.gif")
        self.log.info("hand_view: %d frames in %s", len(self.frames), self.folder)

    def _read(self, msg: Msg) -> tuple[int, Snapshot] | None:
        """The message's newest pose as ``(t_ns, snapshot)``; None (counted) when malformed."""
        data, meta, n = msg.data, msg.meta, len(self.hand_model.joints)
        try:
            if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1:] != (n,) or not len(data):
                raise ValueError(f"expected ({n} joints) pose rows, got {getattr(data, 'shape', type(data).__name__)}")
            target = np.asarray(meta["target"], dtype=float)
            if target.shape != (n,):
                raise ValueError(f"target {meta['target']!r} is not {n} joint values")
            t_ns, cls = int(meta["t_ns"]), meta["class"]
            snap = Snapshot(t_s=0.0, pose=data[-1].astype(float), target=target, safe=bool(meta["safe"]),
                            gesture=str(meta["gesture"]), cls=None if cls is None else int(cls),
                            reason=str(meta["reason"]))
        except (KeyError, TypeError, ValueError) as exc:
            self.count("in.malformed")
            self.log.warning("hand_view: pose dropped (%s); is the input a hand_sim's pose?", exc)
            return None
        if self._t0 is None:
            self._t0 = t_ns
        return t_ns, Snapshot(**{**vars(snap), "t_s": (t_ns - self._t0) / 1e9})

    def _due(self, t_ns: int, snap: Snapshot) -> bool:
        """A frame is due ``1 / fps`` after the last one, or ``1 / still_fps`` if it would look the same."""
        if self._drawn is None:
            return True
        if len(self.frames) >= self.max_frames:
            self.count("frames_over_max")
            return False
        last = self._drawn[1]
        still = (snap.safe, snap.gesture, snap.cls, snap.reason) == (last.safe, last.gesture, last.cls, last.reason) \
            and np.array_equal(snap.pose, last.pose) and np.array_equal(snap.target, last.target)
        return t_ns - self._drawn[0] >= 1e9 / (self.still_fps if still else self.fps)

    def _draw(self, t_ns: int, snap: Snapshot) -> None:
        self._drawn = (t_ns, snap)
        path = self.folder / f"frame_{len(self.frames):05d}.png"
        try:
            self.figure.draw(snap)
            self.figure.save(path)
        except Exception as exc:  # noqa: BLE001 - a failed frame is counted; the next one may succeed
            self.count("render_errors")
            self.log.warning("hand_view: frame %s not drawn: %s: %s", path.name, type(exc).__name__, exc)
            return
        self.frames.append(path)
        self._frame_t.append(snap.t_s)
        self.count("frames")
