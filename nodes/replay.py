"""Replay a recorded file as a live source: the messages a device would send, paced in real time.

Pacing is against one fixed start time ``t0``: the chunk whose last row is row ``end - 1`` leaves at
``t0 + end / (rate * speed)`` and carries that time as ``t_acq``, so delays never accumulate.
The generator sleeps at most ``MAX_SLEEP_S`` at a time and yields ``None`` in between, so the
runtime stays responsive to control messages even with large chunks or slow playback.
"""

from __future__ import annotations

import time
from typing import Any, Iterator, Mapping

from emgflow.codec import MESSAGE_ROWS, MESSAGE_S, max_rows
from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo, now_ns
from emgflow.node import Node, Output
from emgflow.params import Param
from emgflow.ports import Out
from emgflow.recordings import FORMATS, Recording, RecordingError, load

MAX_SLEEP_S = 0.02


class Replay(Node):
    """Play a recording (any format emgflow.recordings reads) as live streams at ``speed`` x real time.

    Every step emits one chunk of ``chunk`` rows on ``emg`` and on each extra stream the recording
    has (label, repetition, glove, force, acc, angles), all with the same ``start``. Outputs the
    recording lacks are never emitted, and ``describe()`` leaves them out so a graph wiring one
    is refused. The first message of each stream carries the recording's metadata (channel and
    class names, dataset, source, ``offset`` = first replayed row); later ones carry ``{}``, or
    ``{"loop": k}`` on the first chunk of the k-th repeat.
    """

    kind = "replay"

    path = Param(str, help="recording file, any format emgflow.recordings.load reads", path=True)
    speed = Param(float, 1.0, ge=0, unit="x",
                  help="playback speed: 1 real time, 2 twice as fast, 0 as fast as possible")
    chunk = Param(int, 2, ge=1, unit="samples", help="rows per message (a Myo BLE notification carries 2)")
    loop = Param(bool, False, help="start again at the end; start indices keep counting up")
    start_s = Param(float, None, ge=0, nullable=True, unit="s", help="replay from this time in the recording")
    stop_s = Param(float, None, gt=0, nullable=True, unit="s",
                   help="replay up to this time (exclusive; clipped to the recording's end)")
    format = Param(str, "auto", choices=("auto", *FORMATS), help="recording format; auto detects it from the file")
    rate = Param(float, None, gt=0, nullable=True, unit="Hz", help="sample rate, only for generic CSV files")

    emg = Out(help="EMG samples x channels, float32")
    label = Out(help="class label per sample, int32 (N, 1)")
    repetition = Out(help="repetition index per sample, int32 (N, 1)")
    glove = Out(help="data-glove sensors per sample, float32")
    force = Out(help="force per sample, float32")
    acc = Out(help="accelerometer per sample, float32")
    angles = Out(help="joint angles per sample, float32 (NaN where not tracked)")
    target = Out(help="the target stream of an emgflow npz recording (what its recorder got on `target`)")

    _recording: Recording | None = None

    def check(self) -> None:
        if self.start_s is not None and self.stop_s is not None and self.stop_s <= self.start_s:
            raise ParamError("stop_s", f"{self.stop_s} s must be after start_s = {self.start_s} s")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        rec = self._load()
        self._span(rec)
        if self.chunk > max_rows(rec.rate):
            raise ParamError("chunk", f"{self.chunk} rows per message exceed the {max_rows(rec.rate)} an edge of "
                                      f"this {rec.rate:g} Hz stream carries",
                             f"a message carries at most {MESSAGE_S:g} s of its stream or {MESSAGE_ROWS} rows")
        stream_names = rec.meta.get("stream_names", {})
        infos = {"emg": StreamInfo(rec.rate, rec.emg.shape[1], tuple(rec.channel_names))}
        for port, array in rec.streams.items():
            if port in self.outputs:
                names = stream_names.get(port)
                infos[port] = StreamInfo(rec.rate, array.shape[1], tuple(names) if names else None)
        return infos

    def setup(self) -> None:
        rec = self._load()
        ignored = sorted(set(rec.streams) - set(self.outputs))
        if ignored:
            self.log.info("streams with no replay output, not replayed: %s", ", ".join(ignored))

    def generate(self) -> Iterator[Output]:
        rec = self._load()
        first, stop = self._span(rec)
        arrays = {"emg": rec.emg[first:stop]}
        arrays.update({port: a[first:stop] for port, a in rec.streams.items() if port in self.outputs})
        n = stop - first
        ns_per_row = 1e9 / (rec.rate * self.speed) if self.speed else 0.0
        sent, repeat = 0, 0
        t0 = now_ns()
        while True:
            for a in range(0, n, self.chunk):
                b = min(a + self.chunk, n)
                end = sent + b - a
                if ns_per_row:
                    t_acq = t0 + round(end * ns_per_row)
                    while (wait := t_acq - now_ns()) > 0:
                        if wait > MAX_SLEEP_S * 1e9:
                            time.sleep(MAX_SLEEP_S)
                            yield None
                        else:
                            time.sleep(wait / 1e9)
                else:
                    t_acq = now_ns()
                yield {port: Msg(data=array[a:b].copy(), rate=rec.rate, start=sent, t_acq=t_acq,
                                 meta=self._header(rec, port, first, sent, repeat, a))
                       for port, array in arrays.items()}
                sent = end
            repeat += 1
            if not self.loop:
                return

    # --- helpers -------------------------------------------------------------------------------
    def _load(self) -> Recording:
        if self._recording is None:
            try:
                self._recording = load(self.path, self.format, rate=self.rate)
            except RecordingError as exc:
                raise ParamError("path", str(exc)) from exc
        return self._recording

    def _span(self, rec: Recording) -> tuple[int, int]:
        """Rows [first, stop) selected by start_s / stop_s."""
        n = len(rec.emg)
        first = round(self.start_s * rec.rate) if self.start_s is not None else 0
        stop = min(round(self.stop_s * rec.rate), n) if self.stop_s is not None else n
        if first >= n:
            raise ParamError("start_s", f"{self.start_s} s is past the end of the recording ({rec.duration:.3f} s)")
        if stop <= first:
            raise ParamError("stop_s", f"{self.stop_s} s selects no samples after start_s")
        return first, stop

    @staticmethod
    def _header(rec: Recording, port: str, first: int, sent: int, repeat: int, row: int) -> dict[str, Any]:
        """Full metadata on a stream's first message; ``{"loop": k}`` when a repeat begins; else empty."""
        if sent == 0:
            names = rec.channel_names if port == "emg" else rec.meta.get("stream_names", {}).get(port)
            header = {**rec.meta, "source": str(rec.source), "offset": first}
            if names:
                header["channel_names"] = list(names)
            return header
        return {"loop": repeat} if row == 0 else {}
