"""Lab Streaming Layer bridge: ``lsl_out`` publishes a stream as an LSL outlet, ``lsl_in`` reads an
LSL stream into the graph.

Clocks: LSL time stamps are ``pylsl.local_clock()`` seconds (C++ ``steady_clock``, which is
CLOCK_MONOTONIC on Linux, the clock ``now_ns()`` reads). The offset between the two is measured
once at setup (:func:`clock_offset`, about zero on Linux) rather than assumed. ``lsl_out`` stamps
every row: the newest row at ``t_acq``, earlier ones ``1 / rate`` apart. ``lsl_in`` adds the
inlet's ``time_correction()`` (sender clock -> this host's clock) and gives the newest row's time
as ``t_acq``.

LSL delivers only what is pushed after an inlet has connected, so the first samples of an
outlet with no consumer yet are gone; LSL carries no sample index, so ``lsl_in`` numbers rows
as they arrive (TCP delivery loses nothing while its buffer, ``buffer_s``, holds).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo, now_ns
from emgflow.node import Node, Output
from emgflow.params import Param
from emgflow.ports import In, Out

POLL_S = 0.02
"""Longest lsl_in waits for data (or for the stream to appear) before yielding to the runtime."""


def clock_offset(local_clock: Callable[[], float], clock_ns: Callable[[], int] = now_ns, tries: int = 7) -> float:
    """``local_clock() - clock_ns() / 1e9`` in seconds, from the tightest of ``tries`` sandwiched reads."""
    best_width, best = float("inf"), 0.0
    for _ in range(tries):
        a = clock_ns()
        lsl = local_clock()
        b = clock_ns()
        if b - a < best_width:
            best_width, best = b - a, lsl - (a + b) / 2e9
    return best


def _no_quotes(param: str, value: str | None) -> None:
    if value is not None and ("'" in value or '"' in value):
        raise ParamError(param, f"must not contain quotes (it goes into an LSL query): {value!r}")


class LslOut(Node):
    """Publish the input as an LSL outlet (float32), every row stamped with its acquisition time.

    The outlet is created on the first message, which fixes the channel count and nominal rate;
    later messages of another width are dropped and counted (``malformed``), as are non-2-D ones.
    Channel names from the first message's ``meta["channel_names"]`` go into the stream description.
    """

    kind = "lsl_out"

    stream = Param(str, "emgflow", help="LSL stream name, what inlets resolve by")
    stream_type = Param(str, "EMG", help="LSL content type (EMG, EEG, Markers, ...)")
    source_id = Param(str, None, nullable=True,
                      help="LSL source id, lets inlets recover after a restart; null = emgflow:<stream>")

    in_ = In(help="any numeric stream, rows = samples")

    def check(self) -> None:
        if not self.stream:
            raise ParamError("stream", "an LSL stream needs a name")

    def setup(self) -> None:
        import pylsl

        self._pylsl = pylsl
        self._offset = clock_offset(pylsl.local_clock)
        self._outlet: Any = None
        self._channels = 0
        self._next_start: int | None = None

    def process(self, msg: Msg) -> None:
        data = np.asarray(msg.data)
        if data.ndim != 2 or data.shape[1] == 0 or not np.issubdtype(data.dtype, np.number):
            self.count("malformed")
            self.log.warning("dropped a message of shape %s, dtype %s: LSL needs (N, C) numbers",
                             data.shape, data.dtype)
            return None
        if self._outlet is None:
            self._open(msg, data.shape[1])
        if data.shape[1] != self._channels:
            self.count("malformed")
            self.log.warning("dropped %d rows of %d channels: the outlet has %d", len(data), data.shape[1],
                             self._channels)
            return None
        if self._next_start is not None and msg.start != self._next_start:
            self.count("gaps")
        self._next_start = msg.end
        if len(data) == 0:
            return None
        self._outlet.push_chunk(np.ascontiguousarray(data, np.float32), self._stamps(msg, len(data)))
        self.count("samples", len(data))
        return None

    def teardown(self) -> None:
        self._outlet = None  # the outlet closes when collected

    def _stamps(self, msg: Msg, n: int) -> float | list[float]:
        """Per-row local_clock() times; 0.0 (LSL stamps on push) when the acquisition time is unknown."""
        if not msg.t_acq:
            return 0.0
        newest = msg.t_acq / 1e9 + self._offset
        if msg.rate <= 0:
            return [newest] * n
        return list(newest - np.arange(n - 1, -1, -1) / msg.rate)

    def _open(self, msg: Msg, channels: int) -> None:
        pylsl = self._pylsl
        info = pylsl.StreamInfo(self.stream, self.stream_type, channels, msg.rate or pylsl.IRREGULAR_RATE,
                                pylsl.cf_float32, self.source_id or f"emgflow:{self.stream}")
        names = msg.meta.get("channel_names")
        if isinstance(names, list) and len(names) == channels:
            node = info.desc().append_child("channels")
            for name in names:
                node.append_child("channel").append_child_value("label", str(name))
        self._outlet = pylsl.StreamOutlet(info)
        self._channels = channels
        self.log.info("LSL outlet %r (%s, %d channels, %g Hz)", self.stream, self.stream_type, channels, msg.rate)


class LslIn(Node):
    """Read an LSL stream (resolved by name, type and/or source id) into the graph.

    Keeps looking until the stream appears, yielding meanwhile; rows keep arriving after an
    outlet restart with the same source id (LSL recovery). ``t_acq`` is the newest row's LSL time
    stamp mapped through ``time_correction()`` onto this host's ``now_ns()`` clock. The first
    message carries the stream's name, type, source id, host and channel labels in ``meta``.
    """

    kind = "lsl_in"

    stream = Param(str, None, nullable=True, help="LSL stream name to resolve; null = any name")
    stream_type = Param(str, None, nullable=True, help="LSL content type to resolve (EMG, ...); null = any type")
    source_id = Param(str, None, nullable=True, help="LSL source id to resolve; null = any")
    buffer_s = Param(float, 10.0, gt=0, unit="s", help="how much the inlet buffers while the graph is busy")

    out = Out(help="the stream's samples (N, C) float32")

    def check(self) -> None:
        if self.stream is None and self.stream_type is None and self.source_id is None:
            raise ParamError("stream", "give at least one of stream, stream_type or source_id to resolve")
        for name in ("stream", "stream_type", "source_id"):
            _no_quotes(name, getattr(self, name))

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        return {"out": StreamInfo()}  # known only once the stream is resolved

    @property
    def connected(self) -> bool:
        """True once the stream is resolved and its inlet open."""
        return getattr(self, "_inlet", None) is not None

    def query(self) -> str:
        """The XPath predicate the resolver matches stream descriptions against."""
        terms = [f"{key}='{value}'" for key, value in
                 (("name", self.stream), ("type", self.stream_type), ("source_id", self.source_id)) if value]
        return " and ".join(terms)

    def setup(self) -> None:
        import pylsl

        self._pylsl = pylsl
        self._offset = clock_offset(pylsl.local_clock)
        self._resolver = pylsl.ContinuousResolver(pred=self.query())
        self._inlet: Any = None
        self._rows = 0
        self._header: dict[str, Any] = {}

    def generate(self) -> Iterator[Output]:
        looked_since = time.monotonic()
        while self._inlet is None:
            found = self._resolver.results()
            if found:
                self._open(found)
                break
            if time.monotonic() - looked_since > 5.0:
                self.log.warning("no LSL stream matches %s yet; still looking", self.query())
                looked_since = time.monotonic()
            time.sleep(POLL_S)
            yield None
        try:
            correction = self._inlet.time_correction(timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - the sender stopped answering clock queries
            self.log.warning("no LSL time correction yet (%s); assuming 0 until one arrives", exc)
            correction = 0.0
        while True:
            data, stamps = self._inlet.pull_chunk(timeout=POLL_S, max_samples=4096, min_samples=1, as_numpy=True)
            if len(stamps) == 0:
                yield None
                continue
            try:
                correction = self._inlet.time_correction(timeout=0.0)
            except Exception:  # noqa: BLE001 - keep the last estimate while a new one is pending
                pass
            t_acq = round((stamps[-1] + correction - self._offset) * 1e9)
            msg = Msg(data=np.asarray(data, np.float32).reshape(len(stamps), -1), rate=self._rate,
                      start=self._rows, t_acq=t_acq, meta=self._header)
            self._rows += len(stamps)
            self._header = {}
            yield msg

    def teardown(self) -> None:
        self._inlet = None
        self._resolver = None

    def _open(self, found: list[Any]) -> None:
        pylsl = self._pylsl
        if len(found) > 1:
            self.log.warning("%d LSL streams match %s; using the first (%s on %s)", len(found), self.query(),
                             found[0].source_id(), found[0].hostname())
        if found[0].channel_format() == pylsl.cf_string:
            raise RuntimeError(f"LSL stream {found[0].name()!r} carries strings; lsl_in reads numeric streams")
        self._inlet = pylsl.StreamInlet(found[0], max_buflen=max(1, round(self.buffer_s)), recover=True)
        self._inlet.open_stream(timeout=5.0)
        info = self._inlet.info(timeout=5.0)
        self._rate = info.nominal_srate()
        self._header = {"lsl_name": info.name(), "lsl_type": info.type(), "source_id": info.source_id(),
                        "hostname": info.hostname()}
        labels, channel = [], info.desc().child("channels").child("channel")
        while not channel.empty():
            labels.append(channel.child_value("label"))
            channel = channel.next_sibling()
        if len(labels) == info.channel_count():
            self._header["channel_names"] = labels
        self.log.info("LSL inlet on %r from %s (%d channels, %g Hz)", info.name(), info.hostname(),
                      info.channel_count(), self._rate)
