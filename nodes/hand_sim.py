"""A simulated hand: the actuator is a record of every pose it is sent.

Each published pose carries in its meta what a picture of the hand shows (target, state,
command in force, why), so a ``hand_view`` node fed by ``pose`` draws the frames in its own
supervised process, the runtime handing it only the newest pose (``policy: latest``). At the
end of the stream this node writes ``trace.png``, every joint value over time: only the actuator
sees every pose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emgflow import Param
from emgflow.hand.artifacts import trace_png
from emgflow.hand.output import HandCommand, HandOutput


class HandSim(HandOutput):
    """A simulated hand: every pose recorded, published with its drawing context, traced to
    ``trace.png`` in ``out_dir`` at the end (frames: a ``hand_view`` node on ``pose``)."""

    kind = "hand_sim"

    out_dir = Param(str, "hand_sim", path=True, help="folder for trace.png")
    trace = Param(bool, True, help="write trace.png, joint values over time, at the end")

    def open_device(self) -> None:
        if self.trace:
            import matplotlib.figure  # noqa: F401  (fail at start, not after the run, if missing)

        self.folder = Path(self.out_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._rec_t: list[int] = []
        self._rec_pose: list[np.ndarray] = []
        self._rec_target: list[np.ndarray] = []
        self._rec_safe: list[bool] = []
        self._reason = "safe pose at start"

    def write(self, cmd: HandCommand) -> bool:
        self._rec_t.append(cmd.t_ns)
        self._rec_pose.append(cmd.pose)
        self._rec_target.append(cmd.target)
        self._rec_safe.append(cmd.safe)
        if cmd.event is not None:
            self._reason = cmd.event.reason
        return True

    def pose_meta(self, cmd: HandCommand) -> dict[str, Any]:
        return {"t_ns": cmd.t_ns, "target": cmd.target.tolist(), "safe": cmd.safe, "gesture": cmd.gesture,
                "class": cmd.cls, "reason": self._reason}

    def finish(self) -> Any:
        out = super().finish()
        if self.trace and len(self._rec_t) > 1:
            t = (np.array(self._rec_t) - self._rec_t[0]) / 1e9
            trace_png(self.folder / "trace.png", self.hand_model, t, np.array(self._rec_pose),
                      np.array(self._rec_target), np.array(self._rec_safe))
        return out
