"""`emgflow myo-emulator`: a Myo armband behind a BLED112 dongle on a pseudo-terminal, for running
graphs with a ``myo`` node (or pyomyo itself) without hardware."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .common import err_console


def myo_emulator(
    recording: Annotated[Path, typer.Argument(help="Myo recording to stream: any 8-channel int8 recording "
                                                   "emgflow reads (Côté-Allard .dat, myo-readings .txt, "
                                                   "LibEMG .csv, ...).")],
    rate: Annotated[float, typer.Option(help="Device sample rate in Hz; off 200 it emulates crystal drift.")] = 200.0,
    loop: Annotated[bool, typer.Option("--loop/--no-loop", help="Start the recording again at its end "
                                                                "(else the armband falls silent).")] = True,
    link: Annotated[Path | None, typer.Option(help="Also expose the device at this path (a symlink), "
                                                    "a stable name for graph files.")] = None,
    address: Annotated[str, typer.Option(help="The armband's MAC address, as printed.")] = "c8:2f:1b:00:00:01",
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")] = None,
) -> None:
    """Emulate a Myo + BLED112 dongle on a pty, streaming RECORDING; prints the device path.

    Give the path to a myo node (`--set NODE.tty=PATH`) or to `pyomyo.Myo(tty=PATH)`.
    EMG starts when the host enables it: RATE samples per second, two per notification.
    """
    from emgflow.recordings import RecordingError
    from emgflow.tools.myo_emulator import MyoEmulator, load_myo_emg

    try:
        emg = load_myo_emg(recording)
        emulator = MyoEmulator(emg, rate=rate, loop=loop, link=link, address=address)
    except (RecordingError, ValueError, OSError) as exc:
        err_console.print(f"[bold red]error[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    path = emulator.start()
    typer.echo(path)
    err_console.print(f"emulated Myo {address} on {path}: {recording.name}, {len(emg)} samples at {rate:g} Hz"
                      f"{', looping' if loop else ''}. Ctrl-C stops.", highlight=False)
    try:
        deadline = time.monotonic() + duration if duration is not None else float("inf")
        while time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        err_console.print(f"sent {len(emulator.sent)} EMG notifications over {emulator.connections} connection(s)",
                          highlight=False)
