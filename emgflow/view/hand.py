"""The hand's current pose as the simulated hand is drawn: the newest complete frame each
``hand_view`` node wrote.

hand_view draws hand_sim's poses in its own process to ``out_dir/frame_NNNNN.png`` (at most ``fps`` a
second); showing those files shows exactly that drawing, at no cost to the graph.
"""

from __future__ import annotations

from pathlib import Path

from ..graph import Graph
from ..nodes.hand_view import HandView

_PNG_END = b"IEND\xaeB`\x82"   # a PNG's last chunk: a frame still being written does not end with it


class HandFrames:
    """Per hand_view node, follows its numbered frames and returns the newest complete one."""

    def __init__(self, graph: Graph) -> None:
        self.folders = {nid: Path(spec.params.get("out_dir", HandView.params["out_dir"].default))
                        for nid, spec in graph.nodes.items() if issubclass(spec.cls, HandView)}
        self.next = {nid: 0 for nid in self.folders}

    def _path(self, nid: str, i: int) -> Path:
        return self.folders[nid] / f"frame_{i:05d}.png"

    def latest(self) -> dict[str, int]:
        """Node -> index of its newest frame file (-1: none yet)."""
        for nid in self.folders:
            if self.next[nid] and not self._path(nid, self.next[nid] - 1).exists():
                self.next[nid] = 0   # the node cleared its folder (a restart, or frames of an earlier run)
            while self._path(nid, self.next[nid]).exists():
                self.next[nid] += 1
        return {nid: n - 1 for nid, n in self.next.items()}

    def png(self, nid: str) -> bytes | None:
        """The newest frame of ``nid`` that is completely written, or None."""
        if nid not in self.folders:
            return None
        for i in range(self.latest()[nid], max(-1, self.next[nid] - 3), -1):
            try:
                data = self._path(nid, i).read_bytes()
            except OSError:
                continue
            if data.endswith(_PNG_END):
                return data
        return None
