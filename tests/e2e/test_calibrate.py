"""`emgflow calibrate` as a person meets it: on a terminal (a pseudo-terminal here), an emulated Myo
playing real LibEMG recordings in the order and timing of the cue schedule, a key press redoing one
repetition. The take's labels must equal the schedule sample for sample, and the model it trains must
score the held-out repetition exactly as `emgflow train --data` does on the same take."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time

from typing import Any, Callable

import numpy as np
import pytest
import typer

from emgflow.calibration import SET_ASIDE, Session
from emgflow.graph import load_graph
from emgflow.recordings import load

from .procs import STARTED
from .test_graphs import GRAPHS, REPO

RATE, HOLD_N, REST_N, REPS = 200, 200, 300, 3
GESTURES = ("power", "open")  # LibEMG classes 0 Hand_Close and 1 Hand_Open; 2 No_Motion is the rest
REDO_AFTER = 3                 # attempt 3 (power, repetition 2) is redone from the rest after it
AFTER_DONE = 1000              # the armband plays on while the graph stops


def schedule() -> tuple[Session, int]:
    """The session as it will run, and the sample in the rest after attempt REDO_AFTER where r is pressed."""
    s = Session(len(GESTURES), REPS, HOLD_N, REST_N)
    press = 0
    while not s.done:
        attempt = s.current
        s.advance(attempt.hold_end if attempt.gesture else attempt.hold_start)
        if len(s.attempts) == REDO_AFTER + 1 and not press:
            press = s.current.start + 60
            s.advance(press)
            assert s.redo()
    return s, press


def played(data_dir, label: np.ndarray, rep: np.ndarray) -> np.ndarray:
    """Real Myo EMG in the schedule's order: each hold from that gesture's file of its repetition's
    trial (the redone attempt from another file), the rests from the No_Motion files one after another."""
    root = data_dir / "libemg-one-subject-myo"
    rest = np.concatenate([np.loadtxt(root / f"trial_{t}/R_{r}_C_2.csv", delimiter=",")
                           for t in range(1, 7) for r in range(2)])
    emg, used_rest, seen = [], 0, set()
    starts = np.r_[0, np.flatnonzero(np.diff(label) | np.diff(rep)) + 1, len(label)]
    for a, b in zip(starts[:-1], starts[1:]):
        if label[a] == 0:
            emg.append(rest[used_rest:used_rest + b - a])
            used_rest += b - a
            continue
        key = (int(label[a]), int(rep[a]))
        file = root / f"trial_{rep[a]}/R_{int(key in seen)}_C_{label[a] - 1}.csv"
        seen.add(key)
        emg.append(np.loadtxt(file, delimiter=",")[100:100 + b - a])
    return np.concatenate(emg).astype(np.int8)


TAKE_THE_TERMINAL = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                     "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
"""Run in the child (a new session, the pseudo-terminal on 0-2): make it the controlling terminal, then
exec the command; no preexec_fn, which is unsafe while the emulator's thread runs."""


def on_a_terminal(args: list[str], env: dict[str, str]
                  ) -> tuple[subprocess.Popen, int, list[bytes], threading.Thread]:
    """Start ``python ARGS`` in its own session with a pseudo-terminal as its controlling terminal; a
    thread keeps reading the screen (a full terminal would block the writer) until the last process
    holding the terminal has exited."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", TAKE_THE_TERMINAL, *args], stdin=slave, stdout=slave,
                            stderr=slave, cwd=REPO, env=env, start_new_session=True)
    os.close(slave)
    STARTED.append(proc)
    screen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            screen.append(chunk)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, master, screen, reader


def played_on(outlet: Any, stream: np.ndarray) -> Callable[[subprocess.Popen], None]:
    """``play(proc)``: push ``stream`` to ``outlet`` in real time, 10 rows every 50 ms, looping, until
    ``proc`` exits (90 s at most)."""
    sent = [0]

    def play(proc: subprocess.Popen) -> None:
        t0, first = time.monotonic(), sent[0]
        while proc.poll() is None and time.monotonic() - t0 < 90:
            while sent[0] < first + int((time.monotonic() - t0) * RATE):
                outlet.push_chunk(stream[np.arange(sent[0], sent[0] + 10) % len(stream)].tolist())
                sent[0] += 10
            time.sleep(0.02)
    return play


def test_calibrate_records_the_schedule_redoes_and_trains_like_train(tmp_path, data_dir):
    pytest.importorskip("pyomyo")
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from emgflow.cli.app import app
    from emgflow.ml.checkpoint import load as load_checkpoint
    from emgflow.ml.datafile import read_dataset
    from emgflow.tools.myo_emulator import MyoEmulator

    session, press = schedule()
    n = session.end + AFTER_DONE
    session.advance(n)
    label, rep = session.labels(0, n)
    emu = MyoEmulator(played(data_dir, label, rep), link=tmp_path / "bled112")
    emu.start()
    try:
        out = tmp_path / "cal"
        env = {**os.environ, "EMGFLOW_DATA": str(data_dir), "COLUMNS": "100", "TERM": "xterm"}
        proc, master, screen, reader = on_a_terminal(
            ["-m", "emgflow.cli.app", "calibrate", str(GRAPHS / "calibrate-myo.yaml"),
             "--gestures", ",".join(GESTURES), "--reps", str(REPS), "--hold", "1", "--rest", "1.5", "--out", str(out),
             "--set", f"myo.tty={emu.path}", "--epochs", "2"], env)
        deadline = time.monotonic() + 60
        cue = f"repetition {REDO_AFTER + 1} of {len(GESTURES) * REPS}".encode()
        while True:  # press r in the rest after attempt 3: once the screen shows it and the armband has
            try:     # acquired sample `press`, with the rest's 1.5 s as the margin for a slow machine
                if cue in b"".join(screen) and time.monotonic_ns() >= emu.acquisition_ns(press):
                    break
            except RuntimeError:  # not streaming yet
                pass
            assert proc.poll() is None and time.monotonic() < deadline, b"".join(screen).decode(errors="replace")
            time.sleep(0.02)
        os.write(master, b"r")
        proc.wait(timeout=120)
        reader.join(timeout=10)
        os.close(master)
        text = b"".join(screen).decode(errors="replace")
        assert proc.returncode == 0, text
    finally:
        emu.stop()

    take = load(out / "take.emgrec")
    got = len(take.emg)
    assert take.meta["start"] == 0 and session.attempts[-1].hold_start <= got <= n
    np.testing.assert_array_equal(take.emg, emu.emg[:got])
    np.testing.assert_array_equal(take.streams["label"][:, 0], label[:got])
    np.testing.assert_array_equal(take.streams["repetition"][:, 0], rep[:got])
    assert take.meta["class_names"] == {"0": "rest", "1": "power", "2": "open"}
    redone = session.attempts[REDO_AFTER - 1]
    reps = read_dataset(out / "take.emgrec").reader(out / "take.emgrec").streams["repetition"][:, 0]
    assert (reps[redone.hold_start:redone.hold_end] == SET_ASIDE).all()
    assert (reps[session.attempts[REDO_AFTER].hold_start:session.attempts[REDO_AFTER].hold_end] == 2).all()

    result = CliRunner().invoke(app, ["train", "--data", str(out / "take.emgrec"), "--model", "lstm_cnn",
                                      "--epochs", "2", "--highpass", "20", "--seed", "0",
                                      "--out", str(tmp_path / "t.pt")])
    assert result.exit_code == 0, result.output
    ours, theirs = load_checkpoint(out / "model.pt"), load_checkpoint(tmp_path / "t.pt")
    assert ours["data"]["test_reps"] == theirs["data"]["test_reps"] == [3]
    assert ours["metrics"] == theirs["metrics"]
    assert all(v.equal(theirs["state_dict"][k]) for k, v in ours["state_dict"].items())

    command = shlex.split(text.split("run the gesture graph with the new model:")[1].strip().splitlines()[0])
    sets = [command[i + 1] for i, arg in enumerate(command) if arg == "--set"]
    assert command[:3] == ["emgflow", "run", str(GRAPHS / "myo-gestures.yaml")]
    assert f"classify.model={(out / 'model.pt').resolve()}" in sets
    assert f"myo.tty={emu.path}" in sets
    served = load_graph(GRAPHS / "myo-gestures.yaml", sets)  # validates: the model's rate and width fit the chain
    chain = [{"type": served.nodes[nid].type, **served.nodes[nid].params} for nid in ("highpass", "envelope", "image")]
    assert chain == ours["pipeline"]
    assert served.nodes["hand"].params["gestures"] == {0: "rest", 1: "power", 2: "open"}


def test_the_served_command_takes_the_calibration_overrides_its_graph_has():
    pytest.importorskip("torch")
    from emgflow.cli.calibrate import serve_command
    from emgflow.ml.checkpoint import load as load_checkpoint

    model = REPO / "models/coteallard_myo_lstm_cnn.pt"
    if not model.exists():
        pytest.skip(f"{model} is missing")
    ckpt = {**load_checkpoint(model), "outputs": ["rest", "power", "wrist flexion"]}
    command = serve_command(GRAPHS / "lsl-gestures.yaml", model, ckpt, ["source.stream=MyEMG", "myo.tty=/dev/ttyACM0"])
    sets = [command[i + 1] for i, arg in enumerate(command) if arg == "--set"]
    assert sets == [f"classify.model={model}", 'hand.gestures={0: "rest", 1: "power", 2: "hold"}',
                    "source.stream=MyEMG"]
    load_graph(GRAPHS / "lsl-gestures.yaml", sets)
    without_highpass = {**ckpt, "pipeline": ckpt["pipeline"][1:]}  # trained behind another chain: refused
    with pytest.raises(typer.Exit):
        serve_command(GRAPHS / "lsl-gestures.yaml", model, without_highpass, [])


def test_calibrate_over_lsl_labels_by_the_rows_it_numbers(tmp_path, data_dir):
    """An LSL outlet in this process plays LibEMG's continuous Myo stream in real time (no terminal:
    no keys, a line per phase); lsl_in numbers the rows it receives, and that count is the clock."""
    pylsl = pytest.importorskip("pylsl")
    pytest.importorskip("torch")
    import uuid

    stream = np.loadtxt(data_dir / "libemg-one-subject-myo/stream/raw_emg.csv", delimiter=",").astype(np.float32)
    name = f"emgflow-calib-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", 8, RATE, pylsl.cf_float32, name))
    out = tmp_path / "cal"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emgflow.cli.app", "calibrate", str(GRAPHS / "calibrate-lsl.yaml"), "--gestures",
         "power,open", "--reps", "2", "--hold", "0.5", "--rest", "0.5", "--out", str(out), "--epochs", "1",
         "--set", f"source.stream={name}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True,
        env={**os.environ, "EMGFLOW_DATA": str(data_dir)})
    STARTED.append(proc)
    play = played_on(outlet, stream)
    play(proc)
    text = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, text

    take = load(out / "take.emgrec")
    first = next(k for k in range(len(stream)) if np.array_equal(stream[k:k + 50], take.emg[:50]))
    np.testing.assert_array_equal(take.emg, stream[(first + np.arange(len(take.emg))) % len(stream)])
    session = Session(2, 2, 100, 100)
    session.advance(len(take.emg))
    label, rep = session.labels(0, len(take.emg))
    assert session.done
    np.testing.assert_array_equal(take.streams["label"][:, 0], label)
    np.testing.assert_array_equal(take.streams["repetition"][:, 0], rep)
    assert "hold POWER  (repetition 1 of 4" in text and "done: 4 repetitions (0 redone)" in text
    command = shlex.split(text.split("run the gesture graph with the new model:")[1].strip().splitlines()[0])
    assert command[2] == str(GRAPHS / "lsl-gestures.yaml") and f"source.stream={name}" in command
    served = subprocess.Popen(  # the printed command, its outputs sent to tmp_path
        [sys.executable, "-m", "emgflow.cli.app", *command[1:], "--quiet", "--duration", "4",
         "--set", f"record_decisions.path={tmp_path / 'decisions.npz'}", "--set", f"hand.out_dir={tmp_path / 'hand'}",
         "--set", f"hand_view.out_dir={tmp_path / 'hand'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True,
        env={**os.environ, "EMGFLOW_DATA": str(data_dir)})
    STARTED.append(served)
    play(served)
    text = served.communicate(timeout=60)[0]
    assert served.returncode == 0, text
    decisions = load(tmp_path / "decisions.npz")
    assert decisions.meta["classes"] == ["rest", "power", "open"]  # the new model's, voted
    assert len(decisions.emg) > 5 and set(decisions.emg[:, 0].tolist()) <= {-1, 0, 1, 2}

