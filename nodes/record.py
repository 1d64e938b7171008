"""Lossless recorders: emgrec (append-only, for takes of any length), npz and csv.

All write at least every ``flush_s``, on a message or, while the stream stalls, on the tick
(every ``TICK_MS``), so a killed recorder leaves a readable file holding at least everything it
received more than ``flush_s`` + 0.1 s before the kill. emgrec and csv only append, and cut a
write that fails (a full disk) back off before stopping with the error, so the file keeps every
earlier row and ends where a reader expects; npz rewrites the whole take at each flush."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from emgflow import In, Msg, Node, Param
from emgflow.emgrec import AppendFile, Writer
from emgflow.errors import ParamError

TICK_MS = 100.0
"""How often a recorder checks whether a flush is due while no message arrives."""


def _rows(msg: Msg) -> np.ndarray:
    """The payload as (n, k) rows: 1-D is one column, 0-d one row (as ``Msg.end`` counts it),
    trailing axes are flattened."""
    data = msg.data
    if data.ndim == 2:
        return data
    return data.reshape(data.shape[0] if data.ndim else 1, int(np.prod(data.shape[1:])))


def _channel_names(msg: Msg, width: int) -> list[str] | None:
    """The stream's channel names (sources send them in the first message's meta), if they fit its width."""
    names = msg.meta.get("channel_names")
    return [str(n) for n in names] if isinstance(names, (list, tuple)) and len(names) == width else None


def _lossless_digits(dtype: np.dtype) -> int:
    """Significant digits that read back to the same float: 5 for float16, 9 for float32, else 17."""
    return {2: 5, 4: 9}.get(dtype.itemsize, 17)


class _Recorder(Node):
    """Flush bookkeeping shared by the recorders: write when ``flush_s`` has passed since the last
    write and something is pending, checked on every message and on every tick."""

    tick_ms: ClassVar[float | None] = TICK_MS
    accepts_nonfinite: ClassVar[bool] = True  # a recording keeps what arrived, NaN included
    path: str
    flush_s: float

    def check(self) -> None:
        """Refuse at validation a path the first flush could not write: a folder, a file below a file,
        or a place where no file can be created (``/proc/x.npz``, a read-only mount)."""
        target = Path(self.path)
        if target.is_dir():
            raise ParamError("path", f"{target} is a folder; expected a file to write", "name a file inside it")
        folder = target.parent
        while not folder.exists():
            folder = folder.parent
        try:
            if target.exists():
                os.close(os.open(target, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))  # asks, writes nothing
            elif not folder.is_dir():
                raise ParamError("path", f"{folder} is a file, so {target} cannot be created")
            else:
                tempfile.TemporaryFile(dir=folder).close()  # the folder takes new files (left nothing)
        except OSError as exc:
            raise ParamError("path", f"cannot write {target}: {exc.strerror} ({folder})",
                             "record to a folder you can write") from None

    def _start_clock(self) -> None:
        self.pending = False
        self.last_flush = time.monotonic()

    def _received(self) -> None:
        self.pending = True
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        if self.pending and time.monotonic() - self.last_flush >= self.flush_s:
            self.flush()
            self.pending = False
            self.last_flush = time.monotonic()

    def tick(self) -> None:
        self._flush_if_due()

    def flush(self) -> None:
        """Write everything received so far."""
        raise NotImplementedError


class Csv(_Recorder):
    """Append rows to a CSV file: a `sample` column (stream index) then one column per channel, named
    after the stream's `channel_names` (ch0, ch1, ... when it sends none).

    Lossless by default: integers as integers, floats with the digits that read back the same value
    (9 significant for float32, 17 for float64); set `precision` to trade that for size. Rows are
    kept in memory between flushes and written whole, so the file only ever ends with a full row.
    A message of another width than the first (or not numeric) is counted as `malformed` and dropped.
    Each flush is one append; a failed one (a full disk) is cut back off and stops the node."""

    kind = "csv"
    path = Param(str, help="output .csv file (relative to the graph file)", path=True)
    flush_s = Param(float, 0.5, gt=0, unit="s", help="write to disk at least this often, also while the stream stalls")
    precision = Param(int, None, ge=1, le=17, nullable=True,
                      help="significant digits of float values; null: as many as the dtype needs to be lossless")
    in_ = In(policy="all", help="stream to record (lossless)")

    def setup(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.file = AppendFile(self.path)
        self.width: int | None = None
        self.lines: list[str] = []
        self._start_clock()

    def process(self, msg: Msg) -> None:
        rows = _rows(msg)
        if rows.dtype.kind not in "biuf" or (self.width is not None and rows.shape[1] != self.width):
            self.count("malformed")
            return
        if self.width is None:
            self.width = rows.shape[1]
            names = _channel_names(msg, self.width) or [f"ch{i}" for i in range(self.width)]
            self.lines.append("sample," + ",".join(names) + "\n")
        cell = "%d" if rows.dtype.kind in "biu" else f"%.{self.precision or _lossless_digits(rows.dtype)}g"
        line = "%d" + ("," + cell) * self.width + "\n"
        self.lines.append("".join(line % (i, *row) for i, row in enumerate(rows.tolist(), msg.start)))
        self._received()

    def flush(self) -> None:
        text, self.lines = "".join(self.lines), []
        self.file.write(text.encode())

    def teardown(self) -> None:
        if getattr(self, "file", None) and not self.file.closed:
            self.flush()
            self.file.close()


class _Streams(_Recorder):
    """Ports of the recorders that write recordings (npz, emgrec): `emg`, optional label, repetition
    and target."""

    in_ = In(policy="all", help="main stream, saved as `emg`")
    label = In(policy="all", optional=True, help="per-sample labels, saved as `label`")
    repetition = In(policy="all", optional=True, help="per-sample repetition numbers, saved as `repetition`")
    target = In(policy="all", optional=True, help="per-sample targets (glove, force), saved as `target`")

    def on_in(self, msg: Msg) -> None:
        self._add("emg", msg)

    def on_label(self, msg: Msg) -> None:
        self._add("label", msg)

    def on_repetition(self, msg: Msg) -> None:
        self._add("repetition", msg)

    def on_target(self, msg: Msg) -> None:
        self._add("target", msg)

    def _add(self, key: str, msg: Msg) -> None:
        raise NotImplementedError


@dataclass
class _Stream:
    """One recorded stream: its rows so far and where they sit in the stream's sample index."""

    start: int
    rate: float
    width: int
    names: list[str] | None
    end: int
    parts: list[np.ndarray] = field(default_factory=list)
    n: int = 0                                              # rows so far
    gaps: list[list[int]] = field(default_factory=list)     # [row, samples jumped] before that row

    def rows(self) -> np.ndarray:
        """All rows as one array (joined once, so later flushes join one array and the new parts)."""
        if len(self.parts) > 1:
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0]


class Npz(_Streams):
    """Record a stream, and optional label / repetition / target streams, to an .npz that
    emgflow.recordings.load reads and `replay` plays back. Arrays keep the stream's dtype; 1-D
    payloads become one column.

    Layout: ``emg`` (N, C) the `in` stream; ``rate`` (float64, Hz); ``start`` (int64, stream index of
    emg row 0); ``channel_names`` (C,) when the stream names its channels; ``meta`` (JSON object: the
    first message's meta, plus ``stream_names``); per wired extra stream ``label`` / ``repetition`` /
    ``target`` (M, k) with its own ``<name>_start`` and ``<name>_rate``. Streams keep their own spans (a
    killed recorder may hold more emg rows than label rows): load() aligns those at emg's rate by sample
    index and keeps the span all of them cover. A jump in a stream's ``start`` (a device's lost samples,
    a restarted producer) is counted as ``<name>_gaps``, not filled, and listed in ``meta["gaps"]`` as
    ``{name: [[row, samples jumped], ...]}``; a message of another width is counted as
    ``<name>_malformed`` and dropped.

    Each flush rewrites the whole file to ``<path>.tmp.npz`` and renames it over ``path`` (atomic),
    so a reader or a killed recorder always finds a complete file; a temp file left by a killed run
    is removed at setup, and one cut short by a full disk at once (the node then stops with the
    error, the previous file intact). The cost grows with the length: the whole take stays in memory
    and the disk needs room for it twice; a 10-minute take of 16 float32 channels at 200 Hz is
    7.7 MB, rewritten in about 15 ms (measured on a 2-core VM). For long takes, use `emgrec`."""

    kind = "npz"
    path = Param(str, help="output .npz file (relative to the graph file)", path=True)
    flush_s = Param(float, 1.0, gt=0, unit="s",
                    help="rewrite the file at least this often, also while the stream stalls")

    def setup(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        Path(self.temp_path).unlink(missing_ok=True)
        self.streams: dict[str, _Stream] = {}  # emg, label, repetition, target
        self.meta: dict[str, Any] = {}
        self._start_clock()

    @property
    def temp_path(self) -> str:
        return f"{self.path}.tmp.npz"

    def _add(self, key: str, msg: Msg) -> None:
        rows = _rows(msg)
        stream = self.streams.get(key)
        if stream is not None and rows.shape[1] != stream.width:
            self.count(f"{key}_malformed")
            return
        if stream is None:
            stream = self.streams[key] = _Stream(msg.start, msg.rate, rows.shape[1],
                                                 _channel_names(msg, rows.shape[1]), msg.start)
            if key == "emg":
                self.meta = {k: v for k, v in msg.meta.items() if k != "channel_names"}
        elif msg.start != stream.end:
            self.count(f"{key}_gaps")
            stream.gaps.append([stream.n, msg.start - stream.end])
        stream.parts.append(np.array(rows))  # a copy: the payload may be a view of a reused buffer
        stream.n += len(rows)
        stream.end = msg.start + len(rows)
        self._received()

    def flush(self) -> None:
        """Rewrite the file with everything received (nothing is written before the main stream starts)."""
        emg = self.streams.get("emg")
        if emg is None:
            return
        meta = dict(self.meta)
        stream_names = {k: s.names for k, s in self.streams.items() if k != "emg" and s.names}
        if stream_names:
            meta["stream_names"] = stream_names
        gaps = {k: s.gaps for k, s in self.streams.items() if s.gaps}
        if gaps:  # as emgrec lists them: a discontinuity is in the file, never a silent shift
            meta["gaps"] = gaps
        arrays = {"emg": emg.rows(), "rate": np.float64(emg.rate), "start": np.int64(emg.start),
                  "meta": np.array(json.dumps(meta, default=str))}
        if emg.names:
            arrays["channel_names"] = np.array(emg.names)
        for key, stream in self.streams.items():
            if key != "emg":
                arrays.update({key: stream.rows(), f"{key}_start": np.int64(stream.start),
                               f"{key}_rate": np.float64(stream.rate)})
        try:
            np.savez(self.temp_path, **arrays)
        except OSError as exc:
            Path(self.temp_path).unlink(missing_ok=True)
            raise OSError(exc.errno, f"{self.path}: {exc.strerror} while saving; the file keeps its last "
                                     f"flush (the temp file is removed)") from None
        os.replace(self.temp_path, self.path)

    def teardown(self) -> None:
        if getattr(self, "pending", False):
            self.flush()


class Emgrec(_Streams):
    """Record a stream, and optional label / repetition / target streams, to an append-only .emgrec file
    (emgflow.emgrec) that emgflow.recordings.load reads and `replay` plays back, as it does an npz
    from the npz recorder. For takes of any length: each flush appends only the rows received since
    the last one, so memory holds at most ``flush_s`` of rows, the disk never holds the take twice,
    and a kill, a crash or a full disk leaves every flushed row readable. Arrays keep the stream's
    dtype; 1-D payloads become one column. A jump in a stream's ``start`` is counted as
    ``<name>_gaps`` and kept in the file as it happened; a message of another width or dtype is
    counted as ``<name>_malformed`` and dropped. A failed write (a full disk) stops the node with the error."""

    kind = "emgrec"
    path = Param(str, help="output .emgrec file (relative to the graph file)", path=True)
    flush_s = Param(float, 1.0, gt=0, unit="s", help="append to the file at least this often, also while the stream stalls")

    def setup(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.writer = Writer(self.path)
        self.layouts: dict[str, tuple[int, np.dtype]] = {}
        self.ends: dict[str, int] = {}
        self._start_clock()

    def _add(self, key: str, msg: Msg) -> None:
        rows = _rows(msg)
        layout = self.layouts.get(key)
        if layout is None:
            self.layouts[key] = (rows.shape[1], rows.dtype)
            meta = {k: v for k, v in msg.meta.items() if k != "channel_names"} if key == "emg" else {}
            self.writer.declare(key, msg.rate, rows.dtype, rows.shape[1], _channel_names(msg, rows.shape[1]), meta)
        elif (rows.shape[1], rows.dtype) != layout:  # the file declares one width and dtype per stream
            self.count(f"{key}_malformed")
            return
        elif msg.start != self.ends[key]:
            self.count(f"{key}_gaps")
        self.writer.append(key, msg.start, rows)
        self.ends[key] = msg.start + len(rows)
        self._received()

    def flush(self) -> None:
        self.writer.flush()

    def teardown(self) -> None:
        if getattr(self, "writer", None) and not self.writer.file.closed:
            self.flush()
            self.writer.close()
