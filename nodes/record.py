"""Lossless recorders. Both flush every `flush_s`, so a killed recorder leaves a readable file
holding everything up to its last flush."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from emgflow import In, Msg, Node, Param


def _rows(msg: Msg) -> np.ndarray:
    return msg.data.reshape(len(msg.data), -1) if msg.data.ndim != 2 else msg.data


class Csv(Node):
    """Append rows to a CSV file: a `sample` column (stream index) then one column per channel."""

    kind = "csv"
    path = Param(str, help="output .csv file (relative to the graph file)", path=True)
    flush_s = Param(float, 0.5, gt=0, unit="s", help="flush to disk at least this often")
    precision = Param(int, 6, ge=1, le=17, help="significant digits written")
    in_ = In(policy="all", help="stream to record (lossless)")

    def setup(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "w")
        self.header_written = False
        self.last_flush = time.monotonic()

    def process(self, msg: Msg) -> None:
        rows = _rows(msg)
        if not self.header_written:
            names = msg.meta.get("channels") or [f"ch{i}" for i in range(rows.shape[1])]
            self.file.write("sample," + ",".join(map(str, names)) + "\n")
            self.header_written = True
        index = np.arange(msg.start, msg.start + len(rows))[:, None]
        np.savetxt(self.file, np.hstack([index, rows]), delimiter=",",
                   fmt=["%d"] + [f"%.{self.precision}g"] * rows.shape[1])
        if time.monotonic() - self.last_flush >= self.flush_s:
            self.file.flush()
            self.last_flush = time.monotonic()

    def teardown(self) -> None:
        if getattr(self, "file", None):
            self.file.close()


class Npz(Node):
    """Record streams to an .npz that `replay` reads back: keys `emg` (N, C), `rate`, `start`,
    and `label` / `target` when those optional inputs are wired (aligned by sample index).

    The file is rewritten atomically (temp file + rename) at every flush, so it is always complete."""

    kind = "npz"
    path = Param(str, help="output .npz file (relative to the graph file)", path=True)
    flush_s = Param(float, 1.0, gt=0, unit="s", help="rewrite the file at least this often")
    in_ = In(policy="all", help="main stream, saved as `emg`")
    label = In(policy="all", optional=True, help="per-sample labels, saved as `label`")
    target = In(policy="all", optional=True, help="per-sample targets (glove, force), saved as `target`")

    def setup(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.parts: dict[str, list[np.ndarray]] = {"emg": [], "label": [], "target": []}
        self.first: dict[str, int] = {}
        self.rate = 0.0
        self.last_flush = time.monotonic()

    def _add(self, key: str, msg: Msg) -> None:
        self.first.setdefault(key, msg.start)
        self.parts[key].append(np.array(_rows(msg)))
        if time.monotonic() - self.last_flush >= self.flush_s:
            self.flush()

    def on_in(self, msg: Msg) -> None:
        self.rate = msg.rate
        self._add("emg", msg)

    def on_label(self, msg: Msg) -> None:
        self._add("label", msg)

    def on_target(self, msg: Msg) -> None:
        self._add("target", msg)

    def flush(self) -> None:
        arrays = {k: np.concatenate(v) for k, v in self.parts.items() if v}
        if "emg" not in arrays:
            return
        tmp = f"{self.path}.tmp.npz"
        np.savez(tmp, rate=np.float64(self.rate), start=np.int64(self.first["emg"]), **arrays)
        os.replace(tmp, self.path)
        self.last_flush = time.monotonic()

    def teardown(self) -> None:
        if hasattr(self, "parts"):
            self.flush()
