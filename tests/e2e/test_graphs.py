"""The shipped graphs (graphs/*.yaml), each run as a real `emgflow run` process on the shared data:
it exits 0, leaves no process behind, loses nothing on its lossless edges, and what it writes is
checked for content (equal to the recording or to the offline computation, accuracy above a floor
on held-out repetitions, hand frames drawn). Outputs go to tmp_path through --set; spans are
shortened and replay chunks enlarged through --set to keep the file fast (results do not depend
on chunking: every node's streaming-equals-offline test says so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from emgflow.recordings import load

from .procs import STARTED, alive, children_of

REPO = Path(__file__).resolve().parents[2]
GRAPHS = REPO / "graphs"
MODELS = REPO / "models"
PNG = b"\x89PNG\r\n\x1a\n"
ACCURACY_FLOOR = 0.4
"""Accuracy on movement images of held-out repetitions: 5x chance for 12 movements (the shipped
DB1 and DB5 models score 0.82 and 0.56 on the spans below; the Myo model 1.0 on its test cycle)."""


# --- helpers ------------------------------------------------------------------------------------
def model(name: str) -> Path:
    path = MODELS / name
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} is missing: train it (`emgflow train --help`) or restore it from git")
    return path


def checkpoint(path: Path) -> dict:
    pytest.importorskip("torch")
    from emgflow.ml.checkpoint import load as load_checkpoint

    return load_checkpoint(path)


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        kids = children_of(todo.pop())
        out.update(kids)
        todo.extend(kids)
    return out


def run_graph(graph: str, tmp_path: Path, data_dir: Path, sets: dict[str, object], *args: str,
              timeout: float = 90.0) -> dict:
    """`emgflow run graphs/GRAPH --quiet --stats ... --set K=V ...` to completion; returns the stats.

    Asserts exit 0 and that every process the run started (nodes and their children) is gone."""
    stats = tmp_path / "stats.json"
    cmd = [sys.executable, "-m", "emgflow.cli.app", "run", str(GRAPHS / graph), "--quiet", "--stats", str(stats),
           *(f"--set={k}={v}" for k, v in sets.items()), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EMGFLOW_DATA": str(data_dir)}, start_new_session=True)
    STARTED.append(proc)
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        seen |= descendants(proc.pid)
        try:
            _, err = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            assert time.monotonic() < deadline, f"{graph} still running after {timeout} s"
    assert proc.returncode == 0, err
    assert seen, "the run started no node process"
    leftover = lambda: [p for p in seen if alive(p)]  # noqa: E731
    deadline = time.monotonic() + 5
    while leftover() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leftover(), f"{graph} left processes behind: {leftover()}"
    return json.loads(stats.read_text())


def assert_clean(stats: dict, lossy: tuple[str, ...] = ()) -> None:
    """Every node ended without a restart, a malformed frame, a gap, or a drop on a lossless edge."""
    for name, node in stats["nodes"].items():
        assert node["state"] in ("done", "stopped"), (name, node["state"])
        assert node["restarts"] == 0 and node["malformed"] == 0, (name, node)
        for port, edge in node["in"].items():
            assert edge["gaps"] == 0, (name, port, edge)
            if name not in lossy:
                assert edge["dropped"] == 0, (name, port, edge)


def assert_hand_drawn(folder: Path, stats: dict, node: str, min_frames: int = 3) -> None:
    """The hand accepted commands and wrote its trace; its view drew frames, a sheet and a GIF."""
    frames = sorted(folder.glob("frame_*.png"))
    assert len(frames) >= min_frames, f"{folder}: {len(frames)} frames"
    for name in (frames[0].name, frames[-1].name, "sheet.png", "trace.png"):
        assert (folder / name).read_bytes()[:8] == PNG, name
    assert (folder / "hand.gif").read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    assert stats["nodes"][node]["counters"].get("commands", 0) > 0, "the hand accepted no command"


def held_out_accuracy(pred: np.ndarray, label: np.ndarray, rep: np.ndarray, test_reps) -> float:
    """Accuracy over the movement images (label > 0) of held-out repetitions."""
    mask = (label > 0) & np.isin(rep, list(test_reps))
    assert mask.sum() >= 20, f"only {mask.sum()} held-out movement images in the span"
    return float(np.mean(pred[mask] == label[mask]))


def assert_votes_replay(decisions: np.ndarray, proba: np.ndarray, votes: int = 5, hysteresis: int = 2) -> None:
    """The recorded votes are the vote of every recorded decision, in order (nothing lost or reordered)."""
    from emgflow.nodes.vote import Voter

    assert decisions.shape == (len(proba), 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(decisions[:, 0], Voter(votes, hysteresis).push(proba))


def pipeline_of(graph, node_id: str) -> tuple[list, object]:
    """The nodes between the graph's source and ``node_id`` (in order), and the source."""
    chain = []
    spec = graph.nodes[graph.nodes[node_id].inputs["in"].source]
    while spec.inputs:
        chain.append(spec)
        spec = graph.nodes[spec.inputs["in"].source]
    return chain[::-1], spec


# --- the model graphs serve exactly their checkpoints' pipelines ---------------------------------
@pytest.mark.parametrize("graph, node, weights", [
    ("db1-gestures.yaml", "classify", "db1_s1_lstm_cnn.pt"),
    ("db5-gestures.yaml", "classify", "db5_s1_lstm_cnn.pt"),
    ("db5-gestures.yaml", "regress", "db5_s1_le_convmn.pt"),
    ("db5-gestures-embedded.yaml", "classify", "db5_s1_lstm_cnn.onnx"),
    ("db5-gestures-embedded.yaml", "regress", "db5_s1_le_convmn.onnx"),
    ("myo-gestures.yaml", "classify", "coteallard_myo_lstm_cnn.pt"),
])
def test_model_graphs_serve_their_checkpoints_pipeline(data_dir, graph, node, weights, monkeypatch):
    """classify/regress check only the rate and width of their input: this checks every node type
    and param value (defaults included) against the pipeline recorded in the checkpoint."""
    from emgflow.graph import load_graph
    from emgflow.registry import resolve

    ckpt = checkpoint(model(weights))
    monkeypatch.setenv("EMGFLOW_DATA", str(data_dir))
    monkeypatch.delenv("EMGFLOW_MYO_MODEL", raising=False)
    g = load_graph(GRAPHS / graph)
    assert Path(g.nodes[node].params["model"]) == MODELS / weights
    chain, source = pipeline_of(g, node)
    assert [s.type for s in chain] == [p["type"] for p in ckpt["pipeline"]]
    for spec, want in zip(chain, ckpt["pipeline"]):
        ours = spec.cls(**spec.params)
        theirs = resolve(want["type"])(**{k: v for k, v in want.items() if k != "type"})
        assert {k: getattr(ours, k) for k in ours.params} == {k: getattr(theirs, k) for k in theirs.params}, spec.id
    raw = source.streams["emg"]
    assert (raw.rate, raw.channels) == (ckpt["input"]["rate"], ckpt["input"]["channels"])


# --- Ninapro replays ------------------------------------------------------------------------------
def test_db1_gestures(tmp_path, data_dir):
    ckpt = checkpoint(model("db1_s1_lstm_cnn.pt"))
    start, stop = 80, 150  # movement 1 rep 10, movement 2 reps 1-7 (2, 5 and 7 held out)
    stats = run_graph("db1-gestures.yaml", tmp_path, data_dir, {
        "source.start_s": start, "source.stop_s": stop, "source.speed": 32, "source.chunk": 10,
        "hand.out_dir": tmp_path / "hand", "hand_view.out_dir": tmp_path / "hand",
        "record_decisions.path": tmp_path / "decisions.npz",
        "record_proba.path": tmp_path / "proba.npz"})
    assert_clean(stats, lossy=("hand", "hand_view"))

    rec = load(data_dir / "ninapro-db1-e1/S1_A1_E1.mat")
    a, b = int(start * rec.rate), int(stop * rec.rate)
    decisions, proba = np.load(tmp_path / "decisions.npz"), np.load(tmp_path / "proba.npz")
    np.testing.assert_array_equal(decisions["label"][:, 0], rec.streams["label"][a:b, 0])  # every cue, once
    n = (b - a - 15) // 15 + 1  # rectify/low-pass per sample, one 15-sample image per 15 samples
    assert proba["emg"].shape == (n, 13) and int(proba["start"]) == 0 and proba["rate"] == pytest.approx(100 / 15)
    assert_votes_replay(decisions["emg"], proba["emg"])

    last = a + 15 * np.arange(n) + 14  # recording row of each image's last sample
    acc = held_out_accuracy(proba["emg"].argmax(axis=1), rec.streams["label"][last, 0],
                            rec.streams["repetition"][last, 0], ckpt["data"]["test_reps"])
    assert acc >= ACCURACY_FLOOR, acc
    assert_hand_drawn(tmp_path / "hand", stats, "hand")


def test_db5_gestures_and_joint_angles(tmp_path, data_dir):
    ckpt = checkpoint(model("db5_s1_lstm_cnn.pt"))
    model("db5_s1_le_convmn.pt")
    start, stop = 45, 100  # movement 1 rep 6, movement 2 reps 1-6 (2 and 5 held out)
    stats = run_graph("db5-gestures.yaml", tmp_path, data_dir, {
        "source.start_s": start, "source.stop_s": stop, "source.speed": 32, "source.chunk": 10,
        "hand.out_dir": tmp_path / "hand", "hand_angles.out_dir": tmp_path / "hand_angles",
        "hand_view.out_dir": tmp_path / "hand", "hand_angles_view.out_dir": tmp_path / "hand_angles",
        "record_decisions.path": tmp_path / "decisions.npz", "record_proba.path": tmp_path / "proba.npz",
        "record_angles.path": tmp_path / "angles.npz"})
    assert_clean(stats, lossy=("hand", "hand_angles", "hand_view", "hand_angles_view"))

    rec = load(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat")
    a, b = int(start * rec.rate), int(stop * rec.rate)
    decisions, proba = np.load(tmp_path / "decisions.npz"), np.load(tmp_path / "proba.npz")
    np.testing.assert_array_equal(decisions["label"][:, 0], rec.streams["label"][a:b, 0])
    frames = (b - a - 20) // 2 + 1  # RMS 20 / 2
    n = (frames - 15) // 15 + 1  # one image per 15 RMS frames
    assert proba["emg"].shape == (n, 13)
    assert_votes_replay(decisions["emg"], proba["emg"])
    last = a + 2 * (15 * np.arange(n) + 14) + 19
    acc = held_out_accuracy(proba["emg"].argmax(axis=1), rec.streams["label"][last, 0],
                            rec.streams["repetition"][last, 0], ckpt["data"]["test_reps"])
    assert acc >= ACCURACY_FLOOR, acc

    angles = np.load(tmp_path / "angles.npz")
    np.testing.assert_array_equal(angles["target"], rec.streams["glove"][a:b])
    m = ((b - a - 40) // 10 + 1) - 20 + 1  # RMS 40 / 10, exposures of 20 frames, step 1
    assert angles["emg"].shape == (m, 10) and angles["rate"] == pytest.approx(20.0)
    from emgflow.ml.datasets import GLOVE_JOINTS

    truth = rec.streams["glove"][a + 10 * np.arange(m) + 229][:, GLOVE_JOINTS]
    moving = np.argsort(truth.std(axis=0))[::-1][:4]  # the joints this span's movements bend most
    cc = [np.corrcoef(angles["emg"][:, j], truth[:, j])[0, 1] for j in moving]
    assert np.mean(cc) >= 0.4, cc
    assert_hand_drawn(tmp_path / "hand", stats, "hand")
    assert_hand_drawn(tmp_path / "hand_angles", stats, "hand_angles")


def test_the_demo_drives_the_hand_from_the_model(tmp_path, data_dir):
    """The main job: DB5 EMG -> seed model A -> vote -> simulated hand; the hand's commands are the
    model's votes (not the cues), and the envelope is recorded beside them."""
    stats = run_graph("demo-db5.yaml", tmp_path, data_dir, {
        "source.speed": 32, "source.chunk": 10, "hand.out_dir": tmp_path / "hand",
        "hand_view.out_dir": tmp_path / "hand", "record_decisions.path": tmp_path / "decisions.npz",
        "record.path": tmp_path / "envelope.npz"})
    assert_clean(stats, lossy=("hand", "hand_view"))
    decisions = np.load(tmp_path / "decisions.npz")
    n = ((55 * 200 - 20) // 2 + 1 - 15) // 15 + 1
    assert decisions["emg"].shape == (n, 1) and set(np.unique(decisions["emg"])) >= {0, 1, 2}
    assert stats["nodes"]["hand"]["in"]["in"]["received"] == n  # every vote reached the hand (latest: the newest is used)
    assert np.load(tmp_path / "envelope.npz")["emg"].shape == ((55 * 200 - 40) // 8 + 1, 16)
    assert_hand_drawn(tmp_path / "hand", stats, "hand")


def test_db5_gestures_embedded_decides_like_the_full_graph(tmp_path, data_dir):
    """The wearable profile: three processes, ONNX models, UDP hands. Same span as above: the same
    decisions, probabilities and angles as that graph's models give, and both hands get poses."""
    import socket
    import threading

    import msgpack

    start, stop = 45, 100
    hands = {name: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for name in ("hand", "hand_angles")}
    received: dict[str, list] = {name: [] for name in hands}
    for sock in hands.values():
        try:  # SO_RCVBUFFORCE (root; else as much as allowed): a listener starved on a busy machine loses nothing
            sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)

    def listen(name: str) -> None:  # the hand device: reads every datagram while the graph runs
        while not done.is_set():
            try:
                received[name].append(msgpack.unpackb(hands[name].recv(65536)))
            except socket.timeout:
                continue

    done = threading.Event()
    listeners = [threading.Thread(target=listen, args=(name,), daemon=True) for name in hands]
    for t in listeners:
        t.start()
    try:
        stats = run_graph("db5-gestures-embedded.yaml", tmp_path, data_dir, {
            "source.start_s": start, "source.stop_s": stop, "source.speed": 32, "source.chunk": 10,
            **{f"{name}.port": sock.getsockname()[1] for name, sock in hands.items()},
            "record_decisions.path": tmp_path / "decisions.npz", "record_angles.path": tmp_path / "angles.npz"})
    finally:
        time.sleep(0.3)
        done.set()
        for t in listeners:
            t.join()
    assert_clean(stats, lossy=("hand", "hand_angles"))
    assert {n["process"] for n in stats["nodes"].values()} == {"models", "hands", "record"}
    for name in hands:
        poses = received[name]
        assert stats["nodes"][name]["counters"].get("commands", 0) > 0, name
        assert len(poses) == stats["nodes"][name]["counters"]["writes"] and poses[-1]["state"] == "safe", name

    rec = load(data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat")
    a, b = int(start * rec.rate), int(stop * rec.rate)
    from emgflow.ml.datasets import run_pipeline
    from emgflow.ml.served import ServedModel

    ckpt = checkpoint(model("db5_s1_lstm_cnn.pt"))
    images, _, _ = run_pipeline(ckpt["pipeline"], rec.emg[a:b], rec.rate)
    served = ServedModel(str(MODELS / "db5_s1_lstm_cnn.pt"), "classify", threads=1, warmup=0, engine="onnx")
    logits = np.concatenate([served.run(images[i:i + 1].astype(np.float32)) for i in range(len(images))])
    decisions = np.load(tmp_path / "decisions.npz")["emg"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert_votes_replay(decisions, expected / expected.sum(axis=1, keepdims=True))
    angles = np.load(tmp_path / "angles.npz")
    m = ((b - a - 40) // 10 + 1) - 20 + 1
    assert angles["emg"].shape == (m, 10)
    np.testing.assert_array_equal(angles["target"], rec.streams["glove"][a:b])


# --- HD-EMG ---------------------------------------------------------------------------------------
def test_hdemg_throughput_equals_offline(tmp_path, data_dir):
    """The whole 64 x 2048 Hz recording, as fast as possible, equals sosfilt over the whole array,
    numpy RMS and an offline anti-alias + keep-every-4th, computed here from the .mat itself."""
    import scipy.io as sio

    from emgflow import emgrec

    stats = run_graph("hdemg-throughput.yaml", tmp_path, data_dir, {"record.path": tmp_path / "envelope.emgrec"})
    assert_clean(stats)
    data = sio.loadmat(data_dir / "openhdemg-hdemg-sample/otb_testfile.mat")["Data"][0, 0]
    x, force, fs = data[:, :64].astype(np.float64), data[:, 74], 2048.0
    y = signal.sosfilt(signal.butter(4, [20.0, 450.0], btype="bandpass", fs=fs, output="sos"), x, axis=0)
    y = signal.lfilter(*signal.iirnotch(50.0, 30.0, fs=fs), y, axis=0)
    env = np.sqrt(np.mean(np.lib.stride_tricks.sliding_window_view(y, 128, axis=0)[::16] ** 2, axis=-1))
    expected = signal.sosfilt(signal.butter(8, 0.8 / 4, output="sos"), env, axis=0)[::4]

    streams, torn = emgrec.read(tmp_path / "envelope.emgrec")
    out, target = streams["emg"], streams["target"]
    assert torn == 0 and not out.gaps and not target.gaps
    assert out.rows.shape == expected.shape == (1039, 64) and out.rate == 32.0 and out.start == 0
    np.testing.assert_allclose(out.rows, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_array_equal(target.rows[:, 0], force)


# --- Myo graphs against the BLED112 emulator -----------------------------------------------------
@pytest.fixture
def emulated_myo(tmp_path):
    """Start a MyoEmulator streaming ``emg`` behind the stable path tmp_path/bled112 (stopped after the test)."""
    pytest.importorskip("pyomyo")
    from emgflow.tools.myo_emulator import MyoEmulator

    started = []

    def start(emg: np.ndarray) -> MyoEmulator:
        emu = MyoEmulator(emg, link=tmp_path / "bled112")
        emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


def test_record_myo_keeps_every_sample_once_in_order(tmp_path, data_dir, emulated_myo):
    from emgflow.tools.myo_emulator import load_myo_emg

    recording = load_myo_emg(data_dir / "myo-readings-dataset/_readings_right_hand/12345-1/7.txt")
    emu = emulated_myo(recording)
    stats = run_graph("record-myo.yaml", tmp_path, data_dir, {
        "myo.tty": emu.path, "record_emg.path": tmp_path / "emg.npz", "record_imu.path": tmp_path / "imu.npz"},
        "--duration", "3")
    assert_clean(stats)
    counters = stats["nodes"]["myo"]["counters"]
    assert counters.get("lost_notifications", 0) == 0 and counters["connects"] == 1

    emg = np.load(tmp_path / "emg.npz")
    n = len(emg["emg"])
    # the device clock starts at the mode write: the first recorded sample is the recording's first
    assert int(emg["start"]) == 0 and emg["rate"] == 200.0 and n >= 400
    np.testing.assert_array_equal(emg["emg"], recording[:n])
    assert 2 * counters["notifications"] == n <= 2 * len(emu.sent)
    imu = np.load(tmp_path / "imu.npz")
    assert imu["rate"] == 50.0 and abs(len(imu["emg"]) - n / 4) <= 10
    np.testing.assert_allclose(imu["emg"], np.tile([1, 0, 0, 0, 0, 0, 1, 0, 0, 0], (len(imu["emg"]), 1)))


def test_myo_gestures_on_an_emulated_armband(tmp_path, data_dir, emulated_myo, monkeypatch):
    """The emulator streams 1.2 s of each of the 7 gestures from the checkpoint's held-out cycle;
    decisions whose receptive field lies inside one gesture are scored against it."""
    ckpt = checkpoint(model("coteallard_myo_lstm_cnn.pt"))
    monkeypatch.delenv("EMGFLOW_MYO_MODEL", raising=False)
    subject, cycle, seg = ckpt["data"]["test_subject"], ckpt["data"]["test_reps"][0], 240
    folder = data_dir / f"coteallard-myo-armband/PreTrainingDataset/{subject}/training0"
    parts = [load(folder / f"classe_{7 * cycle + g}.dat").emg[300:300 + seg] for g in range(7)]
    emu = emulated_myo(np.concatenate(parts))
    stats = run_graph("myo-gestures.yaml", tmp_path, data_dir, {
        "myo.tty": emu.path, "hand.out_dir": tmp_path / "hand", "hand_view.out_dir": tmp_path / "hand",
        "record_decisions.path": tmp_path / "decisions.npz", "record_proba.path": tmp_path / "proba.npz"},
        "--duration", str(7 * seg / 200 + 2.0))
    assert_clean(stats, lossy=("hand", "hand_view"))
    assert stats["nodes"]["myo"]["counters"].get("lost_notifications", 0) == 0

    decisions, proba = np.load(tmp_path / "decisions.npz"), np.load(tmp_path / "proba.npz")
    assert int(proba["start"]) == 0
    n = (7 * seg - 48) // 30 + 1  # high-pass per sample, RMS 20 / 2, images of 15 frames
    assert len(proba["emg"]) >= n, "the stream ended before the last gesture was classified"
    assert_votes_replay(decisions["emg"], proba["emg"])
    first = 30 * np.arange(n)  # receptive field of image j: samples 30j .. 30j + 47
    gesture = first // seg
    inside = (first - gesture * seg >= 30) & (first + 47 < (gesture + 1) * seg)  # 30: high-pass settling
    acc = np.mean(proba["emg"][:n].argmax(axis=1)[inside] == gesture[inside])
    assert inside.sum() >= 35 and acc >= 0.6, acc
    assert_hand_drawn(tmp_path / "hand", stats, "hand")
