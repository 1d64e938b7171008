"""Myo node: the real node, through pyomyo's unmodified driver, against the BLED112 emulator
streaming a real Myo recording (its clock and sequencer alone: tests/core/test_acquisition.py)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pytest

from emgflow.errors import ParamError
from emgflow.message import Msg
from emgflow.nodes.myo import IMU_NAMES, Myo
from emgflow.testing import concat
from emgflow.tools.myo_emulator import MyoEmulator, load_myo_emg

pytest.importorskip("pyomyo")


@pytest.fixture(scope="module")
def recording(data_dir):
    """60 s of a real Myo recording (myo-readings, subject 12345, fist), int8 counts."""
    return load_myo_emg(data_dir / "myo-readings-dataset/_readings_right_hand/12345-1/7.txt")


@pytest.fixture
def emulator(recording, tmp_path):
    # a slow radio (responses after 12 ms > one notification) makes pyomyo repeat events every time
    with MyoEmulator(recording, link=tmp_path / "bled112", command_latency=0.012) as emu:
        yield emu


def drive(node: Myo, until: Callable[[dict[str, list[Msg]]], bool], timeout: float = 8.0,
          actions: list[tuple[Callable[[dict[str, list[Msg]]], bool], Callable[[], None]]] = ()) -> dict:
    """Run the source's generate() until ``until(out)`` (or ``timeout`` s); ``actions`` fire once
    each when their condition first holds. Returns every published message per port."""
    out: dict[str, list[Msg]] = {port: [] for port in node.outputs}
    pending = list(actions)
    node.setup()
    try:
        deadline = time.monotonic() + timeout
        for result in node.generate():
            for port, msg in node.normalize(result).items():
                out[port].append(msg)
            for action in [a for a in pending if a[0](out)]:
                pending.remove(action)
                action[1]()
            if until(out) or time.monotonic() > deadline:
                break
    finally:
        node.teardown()
    return out


def samples(n: int) -> Callable[[dict], bool]:
    return lambda out: sum(len(m.data) for m in out["emg"]) >= n


def assert_matches_recording(msgs: list[Msg], recording: np.ndarray) -> None:
    """Every sample sits at its own index: recording row = device sample counter."""
    for m in msgs:
        np.testing.assert_array_equal(m.data, recording[m.start:m.end], err_msg=f"message at {m.start}")
    starts = [m.start for m in msgs]
    assert starts == sorted(starts) and all(b.start >= a.end for a, b in zip(msgs, msgs[1:]))


def test_raw_stream_equals_the_recording_with_sane_timestamps(emulator, recording):
    node = Myo(tty=emulator.path)
    out = drive(node, samples(400))
    emg = out["emg"]
    x = concat(emg)  # contiguous: nothing lost, nothing repeated
    assert emg[0].start == 0 and len(x) >= 400 and emg[0].rate == 200.0
    np.testing.assert_array_equal(x, recording[:len(x)])
    assert emulator.modes_set == [3]  # raw, not pyomyo's int default that enables nothing
    assert node.counters["duplicates"] >= 1  # commands after the mode write: pyomyo repeats events
    assert node.counters["lost_notifications"] == 0 and node.counters["connects"] == 1
    ends = np.array([m.end for m in emg], float)
    t = np.array([m.t_acq for m in emg], float)
    assert np.all(np.diff(t) >= 0)
    assert np.median(np.diff(t) / np.diff(ends)) == pytest.approx(5e6, rel=0.01)
    assert 1e9 / np.polyfit(ends, t, 1)[0] == pytest.approx(200.0, rel=0.01)
    truth = np.array([emulator.acquisition_ns(m.end - 1) for m in emg])
    assert abs(np.median(t - truth)) < 3e6  # the newest sample's acquisition (+ a latency floor)


@pytest.mark.parametrize("mode, emg_mode, rate", [("filtered", 2, 200.0), ("preprocessed", 1, 50.0)])
def test_other_modes_and_imu(emulator, recording, mode, emg_mode, rate):
    node = Myo(tty=emulator.path, mode=mode, with_imu=True, mac="c8:2f:1b:00:00:01")
    out = drive(node, lambda o: len(o["imu"]) >= 10 and samples(40)(o))
    assert emulator.modes_set == [emg_mode]
    x = concat(out["emg"])
    expected = recording if mode == "filtered" else np.abs(recording[::4].astype(np.float32))
    np.testing.assert_array_equal(x, expected[:len(x)])
    assert out["emg"][0].rate == rate
    imu = concat(out["imu"])
    assert out["imu"][0].rate == 50.0 and out["imu"][0].meta["channel_names"] == list(IMU_NAMES)
    np.testing.assert_allclose(imu, np.tile([1, 0, 0, 0, 0, 0, 1, 0, 0, 0], (len(imu), 1)))


def test_dropped_bytes_are_counted_and_no_shifted_sample_gets_through(emulator, recording):
    node = Myo(tty=emulator.path)
    out = drive(node, samples(700), actions=[
        (samples(200), lambda: emulator.drop_bytes(1, offset=12)),  # inside the samples
        (samples(400), lambda: emulator.drop_bytes(3, offset=3)),  # inside the header
    ])
    assert len(emulator.damaged) == 2
    assert node.counters["malformed"] >= 2 and node.counters["lost_notifications"] >= 2
    assert_matches_recording(out["emg"], recording)
    assert out["emg"][-1].end >= 700


def test_disconnect_is_reported_and_the_stream_resumes(emulator, recording):
    node = Myo(tty=emulator.path)
    out = drive(node, lambda o: node.counters["reconnects"] >= 1 and samples(500)(o),
                actions=[(samples(200), lambda: emulator.disconnect())])
    assert node.counters["disconnects"] == 1 and node.counters["reconnects"] == 1
    assert emulator.connections == 2
    assert_matches_recording(out["emg"], recording)  # the resumed samples sit at their device index
    gaps = [b.start - a.end for a, b in zip(out["emg"], out["emg"][1:]) if b.start != a.end]
    assert len(gaps) == 1 and gaps[0] == node.counters["lost_samples"]


def test_vanished_dongle_is_reported_and_reconnected_when_it_returns(emulator, recording):
    node = Myo(tty=emulator.path)
    out = drive(node, lambda o: node.counters["reconnects"] >= 1 and samples(400)(o), timeout=12.0, actions=[
        (samples(200), emulator.vanish),
        (lambda o: node.counters["connect_failures"] >= 1, emulator.replug),
    ])
    assert node.counters["disconnects"] == 1 and node.counters["connect_failures"] >= 1
    assert node.counters["reconnects"] == 1
    assert_matches_recording(out["emg"], recording)


def test_no_dongle_keeps_the_node_alive(tmp_path):
    node = Myo(tty=str(tmp_path / "no-such-dongle"))
    steps = 0
    node.setup()
    try:
        for result in node.generate():
            assert result is None
            steps += 1
            if node.counters["connect_failures"] >= 2:
                break
    finally:
        node.teardown()
    assert steps > 5  # generate() kept yielding while the thread retried


def test_params_and_stream_info():
    with pytest.raises(ParamError, match="mac"):
        Myo(mac="c8-2f-1b-00-00-01")
    with pytest.raises(ParamError, match="mode"):
        Myo(mode="rawest")
    assert set(Myo().describe({})) == {"emg"}  # no imu output unless asked: wiring it is refused
    infos = Myo(mode="preprocessed", with_imu=True).describe({})
    assert (infos["emg"].rate, infos["emg"].channels) == (50.0, 8)
    assert (infos["imu"].rate, infos["imu"].channels) == (50.0, 10)


def test_myo_emulator_command(data_dir, tmp_path):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from emgflow.cli.myo import myo_emulator

    app = typer.Typer()
    app.command()(myo_emulator)
    app.command("other")(lambda: None)  # two commands: invoke by name, as `emgflow myo-emulator`
    dat = data_dir / "coteallard-myo-armband/PreTrainingDataset/Male0/training0/classe_12.dat"
    result = CliRunner().invoke(app, ["myo-emulator", str(dat), "--link", str(tmp_path / "dongle"),
                                      "--duration", "0.2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == str(tmp_path / "dongle")
    three_dc = data_dir / "3dc-armband/Participant1/train/EMG/3dc_EMG_gesture_0_1.txt"
    result = CliRunner().invoke(app, ["myo-emulator", str(three_dc), "--duration", "0.2"])
    assert result.exit_code == 2 and "10 channels; a Myo recording has 8" in result.output
