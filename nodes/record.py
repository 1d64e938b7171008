"""Lossless recorders: emgrec (append-only, for takes of any length), npz and csv.

All write at least every ``flush_s``, on a message or, while the stream stalls, on the tick
(every ``TICK_MS``), so a killed recorder leaves a readable file holding at least everything it
received more than ``flush_s`` + 0.1 s before the kill. emgrec and csv only append, and cut a
write that fails (a full disk) back off before stopping with the error, so the file keeps every
earlier row and ends where a reader expects; npz records to an .emgrec and exports the .npz when it stops."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import ClassVar

import numpy as np

from emgflow import In, Msg, Node, Param
from emgflow.emgrec import AppendFile, Writer
from emgflow.errors import ParamError
from emgflow.npzexport import export_npz

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


class Emgrec(_Recorder):
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
    in_ = In(policy="all", help="main stream, saved as `emg`")
    label = In(policy="all", optional=True, help="per-sample labels, saved as `label`")
    repetition = In(policy="all", optional=True, help="per-sample repetition numbers, saved as `repetition`")
    target = In(policy="all", optional=True, help="per-sample targets (glove, force), saved as `target`")

    @property
    def log_path(self) -> str:
        """The .emgrec file written during the take."""
        return self.path

    def setup(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.writer = Writer(self.log_path)
        self.layouts: dict[str, tuple[int, np.dtype]] = {}
        self.ends: dict[str, int] = {}
        self._start_clock()

    def on_in(self, msg: Msg) -> None:
        self._add("emg", msg)

    def on_label(self, msg: Msg) -> None:
        self._add("label", msg)

    def on_repetition(self, msg: Msg) -> None:
        self._add("repetition", msg)

    def on_target(self, msg: Msg) -> None:
        self._add("target", msg)

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


class Npz(Emgrec):
    """Record a stream, and optional label / repetition / target streams, to an .npz that np.load,
    emgflow.recordings.load and `replay` read. Arrays keep the stream's dtype; 1-D payloads become
    one column.

    Layout: ``emg`` (N, C) the `in` stream; ``rate`` (float64, Hz); ``start`` (int64, stream index of
    emg row 0); ``channel_names`` (C,) when the stream names its channels; ``meta`` (JSON object: the
    first message's meta, plus ``stream_names``); per wired extra stream ``label`` / ``repetition`` /
    ``target`` (M, k)
    with its own ``<name>_start`` and ``<name>_rate``. Streams keep their own spans: load() aligns
    them at emg's rate by sample index and keeps the span all of them cover. A jump in a stream's
    ``start`` (lost samples, a restarted producer) is counted as ``<name>_gaps``, not filled, and
    listed in ``meta["gaps"]`` as ``{name: [[row, samples jumped], ...]}``; a message of another
    width or dtype is counted as ``<name>_malformed`` and dropped.

    A zip cannot grow without rewriting it, so during the take this records to ``<path>.emgrec``
    exactly as the `emgrec` recorder does (flat memory, every flushed row survives a kill or a full
    disk, and load / replay read it), then exports ``path`` when it stops (streamed, memory holds one
    flush of rows; the disk holds the take twice only for that moment) and removes the .emgrec. A
    killed recorder leaves the .emgrec, a failed export (a full disk) keeps it whole."""

    kind = "npz"
    path = Param(str, help="output .npz file (relative to the graph file)", path=True)
    flush_s = Param(float, 1.0, gt=0, unit="s",
                    help="append to <path>.emgrec at least this often, also while the stream stalls")

    @property
    def log_path(self) -> str:
        return f"{self.path}.emgrec"

    def teardown(self) -> None:
        super().teardown()
        if Path(self.log_path).exists():
            export_npz(self.log_path, self.path)
            Path(self.log_path).unlink()
