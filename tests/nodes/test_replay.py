"""The replay source: exactly the loaded arrays, cut into aligned contiguous chunks, paced on demand."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from emgflow.errors import ParamError
from emgflow.message import StreamInfo
from emgflow.recordings import load
from emgflow.testing import concat, run_node
from emgflow.nodes.replay import MAX_SLEEP_S, Replay

DB5 = "ninapro-db5-e1/s1/S1_E1_A1.mat"


def aligned(out: dict) -> dict:
    """Check every emitted stream has the same message boundaries; return the non-empty ones."""
    streams = {port: msgs for port, msgs in out.items() if msgs}
    bounds = {port: [(m.start, m.end) for m in msgs] for port, msgs in streams.items()}
    first = next(iter(bounds.values()))
    assert all(b == first for b in bounds.values())
    return streams


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1000])
def test_replay_equals_loaded_segment(data_dir, chunk):
    rec = load(data_dir / DB5)
    out = run_node(Replay(path=str(data_dir / DB5), speed=0, chunk=chunk, start_s=10, stop_s=20))
    streams = aligned(out)
    assert sorted(streams) == ["acc", "emg", "glove", "label", "repetition"]
    assert np.array_equal(concat(streams["emg"]), rec.emg[2000:4000])
    for port in ("label", "repetition", "glove", "acc"):
        assert np.array_equal(concat(streams[port]), rec.streams[port][2000:4000])
    assert streams["emg"][0].start == 0 and all(len(m.data) == chunk for m in streams["emg"][:-1])
    assert streams["label"][0].data.dtype == np.int32 and streams["glove"][0].data.dtype == np.float32
    assert all(m.rate == 200.0 for m in streams["emg"])


@pytest.mark.parametrize("rel, ports", [
    ("coteallard-myo-armband/PreTrainingDataset/Male4/training0/classe_8.dat", ["emg", "label"]),
    ("myo-grip-force/recording_force_v12.mat", ["emg", "force"]),
    ("finger-angles-1ch-emg/acq-1/emg-0.csv", ["angles", "emg"]),
])
def test_whole_recording_only_its_streams(data_dir, rel, ports):
    rec = load(data_dir / rel)
    node = Replay(path=str(data_dir / rel), speed=0, chunk=37)
    info = node.describe({})
    assert sorted(info) == ports
    assert info["emg"] == StreamInfo(rec.rate, rec.emg.shape[1], tuple(rec.channel_names))
    streams = aligned(run_node(node))
    assert sorted(streams) == ports
    assert np.array_equal(concat(streams["emg"]), rec.emg)
    for port in rec.streams:
        assert np.array_equal(concat(streams[port]), rec.streams[port], equal_nan=True)


def test_headers_on_first_message_only(data_dir):
    out = run_node(Replay(path=str(data_dir / DB5), speed=0, chunk=50, start_s=1.0, stop_s=2.0))
    first = out["emg"][0].meta
    assert first["channel_names"] == [f"ch{i}" for i in range(16)] and first["offset"] == 200
    assert out["label"][0].meta["class_names"]["1"] == "index flexion"
    assert all(m.meta == {} for port in ("emg", "label") for m in out[port][1:])


def test_loop_keeps_counting_and_marks_repeats(data_dir):
    rel = "libemg-one-subject-myo/trial_1/R_0_C_2.csv"
    rec = load(data_dir / rel)
    node = Replay(path=str(data_dir / rel), speed=0, chunk=100, loop=True)
    node.setup()
    steps = [s for s in itertools.islice(node.generate(), 15) if s]
    emg = [s["emg"] for s in steps]
    n = len(rec.emg)
    data = concat(emg)
    assert len(data) > 2 * n and np.array_equal(data, np.concatenate([rec.emg] * 3)[:len(data)])
    repeats = [(m.start, m.meta["loop"]) for m in emg if "loop" in m.meta]
    assert repeats[:2] == [(n, 1), (2 * n, 2)]


def test_segment_and_param_errors(data_dir):
    path = str(data_dir / DB5)
    with pytest.raises(ParamError, match="start_s"):
        Replay(path=path, start_s=5, stop_s=5)
    with pytest.raises(ParamError, match="past the end"):
        Replay(path=path, start_s=10_000).describe({})
    with pytest.raises(ParamError, match="chunk"):
        Replay(path=path, chunk=0)
    with pytest.raises(ParamError, match="format"):
        Replay(path=path, format="matlab")
    # stop past the end is clipped to the recording
    out = run_node(Replay(path=path, speed=0, chunk=500, start_s=650))
    assert len(concat(out["emg"])) == len(load(path).emg) - 650 * 200


def test_missing_or_malformed_file_is_a_path_error(tmp_path):
    with pytest.raises(ParamError, match="recording not found") as info:
        Replay(path=str(tmp_path / "gone.mat")).describe({})
    assert info.value.param == "path"
    bad = tmp_path / "classe_1.dat"
    bad.write_bytes(b"\1\2\3")
    with pytest.raises(ParamError, match="multiple of 8"):
        run_node(Replay(path=str(bad), speed=0))


def test_pacing_schedule_is_fixed_to_t0(data_dir):
    """t_acq is computed from t0 and the row count, not from the clock, so this is exact."""
    rel = "libemg-one-subject-myo/stream/raw_emg.csv"
    out = run_node(Replay(path=str(data_dir / rel), speed=4, chunk=3, stop_s=0.3))
    t = np.array([m.t_acq for m in out["emg"]])
    ends = np.array([m.end for m in out["emg"]])
    t0 = t[0] - round(ends[0] * 1e9 / 800)
    assert np.abs(t - (t0 + ends * 1e9 / 800)).max() <= 1


def test_real_time_pacing_coarse(data_dir):
    """0.5 s of data at speed 1 takes at least 0.4 s, and generate() never blocks much longer than 20 ms."""
    rel = "libemg-one-subject-myo/stream/raw_emg.csv"
    node = Replay(path=str(data_dir / rel), speed=1, chunk=50, stop_s=0.5)  # 0.25 s per message
    node.setup()
    began = last = time.monotonic()
    longest = 0.0
    for _ in node.generate():
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    assert last - began >= 0.4
    assert longest < 10 * MAX_SLEEP_S
