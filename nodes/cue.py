"""Guided calibration: cue a person through gestures on the terminal and label the stream by sample index.

The node sits between an acquisition node and a recorder. It passes the EMG on unchanged (its first
message naming the classes, so the take describes itself) and gives every sample its ``label`` (the
cue on screen for that sample) and ``repetition`` (0 for rest), in the same messages as the EMG rows
they belong to: the three streams share their ``start`` and their gaps, so a recorder keeps them
aligned row by row. The schedule runs on the samples' index (``emgflow.calibration``).

The screen is the terminal the graph runs in: the cue in large letters, a countdown, the repetition
and the time left; ``r`` repeats the last attempt (read from ``/dev/tty``, the process's terminal,
since node processes get no stdin). Without a terminal (CI, a service) it prints one line per phase
and reads no keys. When the session is done it counts ``finished``: ``emgflow calibrate`` stops the
graph on it; ``emgflow run`` goes on recording rest until Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import termios
import tty
from typing import Any, Mapping

from emgflow.calibration import Cue as Shown, Session
from emgflow.errors import ParamError
from emgflow.message import Msg, StreamInfo
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out

REDO_KEYS = b"rR"


class Cue(Node):
    """Cue N gestures x R repetitions (hold, rest, countdown, `r` redoes the last) and label each sample."""

    kind = "cue"
    tick_ms = 100.0
    accepts_nonfinite = True  # the EMG passes through to the recorder as it came

    gestures = Param(list, help="gesture names in class order (classes 1..N; class 0 is rest)")
    reps = Param(int, 5, ge=1, help="repetitions of each gesture, one round of every gesture after another")
    hold_s = Param(float, 3.0, gt=0, unit="s", help="how long each gesture is held")
    rest_s = Param(float, 2.0, gt=0, unit="s", help="rest before each gesture (its countdown) and after the last")

    in_ = In(policy="all", help="the EMG, rows = samples; its sample index is the session's clock")
    emg = Out(help="the input unchanged; the first message's meta adds class_names and the session")
    label = Out(help="(n, 1) int32 class of each sample: the cue shown, 0 = rest")
    repetition = Out(help="(n, 1) int32 repetition of each gesture sample, 0 for rest")

    def check(self) -> None:
        names = self.gestures
        if not names or not all(isinstance(g, str) and g.strip() for g in names) or len(set(names)) != len(names):
            raise ParamError("gestures", f"expected distinct gesture names, got {names!r}", "name each gesture once")
        if "rest" in names:
            raise ParamError("gestures", "rest is class 0, cued between the gestures", "leave rest out of the list")

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        info = inputs.get("in", StreamInfo())
        return {"emg": info, "label": StreamInfo(info.rate, 1, ("label",)),
                "repetition": StreamInfo(info.rate, 1, ("repetition",))}

    @property
    def class_names(self) -> dict[str, str]:
        return {str(i): name for i, name in enumerate(["rest", *self.gestures])}

    def setup(self) -> None:
        self.session: Session | None = None
        self.screen = Screen(["rest", *self.gestures])
        self.keys = Keys.open()

    def process(self, msg: Msg) -> dict[str, Msg]:
        meta: dict[str, Any] = {}
        if self.session is None:
            self.rate = msg.rate
            self.session = Session(len(self.gestures), self.reps, self._samples("hold_s"), self._samples("rest_s"),
                                   first=msg.start)
            meta = {"class_names": self.class_names, "calibration": {
                "gestures": list(self.gestures), "reps": self.reps, "hold_s": self.hold_s, "rest_s": self.rest_s}}
        self.session.advance(msg.end)
        label, rep = self.session.labels(msg.start, msg.end)
        self._keys_and_screen()
        return {"emg": msg.replace(meta={**msg.meta, **meta}) if meta else msg,
                "label": msg.replace(data=label[:, None], meta=dict(meta), trace=list(msg.trace)),
                "repetition": msg.replace(data=rep[:, None], meta=dict(meta), trace=list(msg.trace))}

    def tick(self) -> None:
        if self.session is not None:
            self._keys_and_screen()

    def teardown(self) -> None:
        if getattr(self, "keys", None) is not None:
            self.keys.close()
        if getattr(self, "screen", None) is not None:
            self.screen.close()

    def _samples(self, param: str) -> int:
        """A duration param in samples of the stream (known from its first message)."""
        n = round(getattr(self, param) * self.rate)
        if n < 1:
            raise ParamError(param, f"{getattr(self, param)} s is less than one sample at {self.rate:g} Hz")
        return n

    def _keys_and_screen(self) -> None:
        session = self.session
        if self.keys is not None and any(k in REDO_KEYS for k in self.keys.read()) and session.redo():
            self.count("redos")
        shown = session.cue()
        if shown.phase == "done" and not self.counters["finished"]:
            self.count("finished")
        self.screen.show(shown, self.rate)


class Screen:
    """The cue on the terminal: a large panel redrawn in place (rich), or one line per phase elsewhere."""

    def __init__(self, names: list[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.names = names
        self.console = Console()
        self.live = Live(console=self.console, auto_refresh=False) if self.console.is_terminal else None
        if self.live is not None:
            self.live.start()
        self.last: tuple[Any, ...] | None = None

    def show(self, cue: Shown, rate: float) -> None:
        """Redraw when what is shown changes (a tenth of a second on the countdown); without a terminal,
        print a line when the phase changes."""
        shown = (cue.phase, cue.gesture, cue.number, cue.redos) + ((round(cue.left / rate, 1),) if self.live else ())
        if shown == self.last:
            return
        self.last = shown
        if self.live is not None:
            self.live.update(self._panel(cue, rate), refresh=True)
        else:
            print(self._line(cue, rate), flush=True)

    def _line(self, cue: Shown, rate: float) -> str:
        if cue.phase == "done":
            return f"done: {cue.total} repetitions ({cue.redos} redone)"
        what = (self.names[cue.gesture].upper() if cue.phase == "hold" else
                f"rest, next {self.names[cue.gesture]}" if cue.gesture else "rest, the last one")
        return (f"{cue.phase} {what}  (repetition {cue.number} of {cue.total}, "
                f"ETA {_clock(cue.remaining / rate)})")

    def _panel(self, cue: Shown, rate: float) -> Any:
        """The cue in FIGlet letters on its phase's colour, what to do and for how long, the target pose
        of a gesture named after a grip, and the progress line."""
        from pyfiglet import figlet_format
        from rich.align import Align
        from rich.console import Group
        from rich.panel import Panel
        from rich.text import Text

        if cue.phase == "done":
            big, style, sub = "done", "bold white on blue", f"{cue.total} repetitions recorded ({cue.redos} redone)"
        elif cue.phase == "hold":
            big, style, sub = self.names[cue.gesture], "bold black on green", f"hold it  {cue.left / rate:4.1f} s"
        else:
            nxt = self.names[cue.gesture] if cue.gesture else "the end"
            big, style, sub = "rest", "bold black on yellow", f"next: {nxt.upper()} in {cue.left / rate:4.1f} s"
        letters = figlet_format(big.upper(), font="standard", width=max(40, self.console.width - 6)).rstrip("\n")
        parts = [Align.center(Text(letters, style=style)), Text(""), Align.center(Text(sub, style="bold"))]
        pose = _pose(self.names[cue.gesture]) if cue.phase != "done" and cue.gesture else None
        if pose is not None:
            parts += [Text(""), Align.center(pose)]
        footer = (f"repetition {cue.number} of {cue.total}   ETA {_clock(cue.remaining / rate)}   "
                  f"r: redo the last   Ctrl-C: stop")
        return Group(Panel(Group(*parts), padding=(1, 2), title="emgflow calibrate"), Text(footer))

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()


def _pose(name: str) -> Any:
    """The simulated hand's target for a gesture named after one of its grips: how far each finger
    closes (0 open .. 1 closed), as bars; None for other gestures (the hand keeps its grip)."""
    from rich.text import Text

    from emgflow.hand.models import GRIPS

    if name not in GRIPS:
        return None
    rows = [f"{finger.replace('_rot', ' rot.'):>10} {'█' * round(10 * v)}{'░' * (10 - round(10 * v))}"
            for finger, v in GRIPS[name].items()]
    return Text("\n".join(rows))


def _clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 60}:{s % 60:02d}"


class Keys:
    """Single key presses from the controlling terminal, without Enter (cbreak mode, restored on close)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)

    @classmethod
    def open(cls) -> "Keys | None":
        """The terminal's keys, or None where the process has no terminal."""
        if not sys.stdout.isatty():
            return None
        try:
            fd = os.open("/dev/tty", os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            return cls(fd)
        except termios.error:
            os.close(fd)
            return None

    def read(self) -> bytes:
        try:
            return os.read(self.fd, 64)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        os.close(self.fd)

