"""Any recording is a dataset: subjects found from the files that exist, a user's takes described in a
dataset file (errors at file:line:col), and a take written by our own recorder trained through --data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from emgflow.errors import GraphErrors
from emgflow.ml.datafile import episode_repetitions, read_dataset
from emgflow.ml.datasets import classification_windows, dataset, load_subject, parse_subject
from emgflow.recordings import RecordingError, load

DB1 = "ninapro-db1-e1/S1_A1_E1.mat"


def test_a_ninapro_file_added_to_the_folder_is_a_subject(data_dir, tmp_path, monkeypatch):
    (tmp_path / "ninapro-db1-e1").mkdir()
    for n in (1, 13):
        (tmp_path / f"ninapro-db1-e1/S{n}_A1_E1.mat").symlink_to(data_dir / DB1)
    monkeypatch.setenv("EMGFLOW_DATA", str(tmp_path))
    spec = dataset("db1")
    assert spec.subjects == (1, 13)
    assert load_subject(spec, parse_subject(spec, "13")).recordings[0].source.name == "S13_A1_E1.mat"
    with pytest.raises(ValueError, match=r"db1 has no subject '2'; subjects: 1, 13"):
        parse_subject(spec, "2")


def test_a_coteallard_session_missing_a_file_is_refused_naming_it(data_dir, tmp_path, monkeypatch):
    src = data_dir / "coteallard-myo-armband/PreTrainingDataset/Male0/training0"
    session = tmp_path / "coteallard-myo-armband/PreTrainingDataset/Male0/training0"
    session.mkdir(parents=True)
    for i in range(28):
        if i != 5:
            (session / f"classe_{i}.dat").symlink_to(src / f"classe_{i}.dat")
    monkeypatch.setenv("EMGFLOW_DATA", str(tmp_path))
    with pytest.raises(RecordingError, match=r"training0/classe_5\.dat: missing"):
        dataset("coteallard").subjects


def test_myo_readings_sessions_are_subjects(data_dir):
    spec = dataset("myo-readings")
    assert {"12345-1", "12345-3", "45612-2"} <= set(spec.subjects)
    subj = load_subject(spec, "45612-2")
    assert len(subj.recordings) == 8 and subj.class_names()[7] == "fist"


def test_a_libemg_folder_is_a_subject_split_by_trial(data_dir):
    spec = dataset("libemg")
    assert spec.subjects == ("libemg-one-subject-myo",)
    subj = load_subject(spec, spec.subjects[0])
    assert subj.sessions() == [f"trial_{n}" for n in range(1, 7)] and len(subj.recordings) == 60
    pipe = [{"type": "rms", "window": 20, "step": 2}, {"type": "emg_image", "window": 15, "step": 15, "norm": "log"}]
    w = classification_windows(subj, pipe, 5, 15)
    assert set(w["test"].repetition.tolist()) == {5, 6} and set(w["train"].repetition.tolist()) == {1, 2, 3}
    assert set(w["test"].label.tolist()) == set(range(5))


def test_episode_rule_numbers_each_class_run():
    label = np.array([0, 1, 1, 0, 1, 0, 2, 2, 0, 1, 0])
    np.testing.assert_array_equal(episode_repetitions(label), [0, 1, 1, 0, 2, 0, 1, 1, 0, 3, 0])


def test_dataset_file_errors_name_file_line_column_and_hint(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("recordings: [nothere.npz]\nclasses: [rest]\ntest: [2]\nval: [2]\ncolour: red\n")
    with pytest.raises(GraphErrors) as exc:
        read_dataset(f)
    text = str(exc.value)
    assert f"{f}:1:14: recording not found: {tmp_path / 'nothere.npz'}\n  hint: paths are relative to this file" in text
    assert f"{f}:2:1: classes must list two or more distinct names" in text
    assert f"{f}:4:1: repetitions [2] are both test and val" in text
    assert f"{f}:5:1: unknown key 'colour'\n  hint: known keys:" in text


def _record_take(data_dir, tmp_path, kind: str = "emgrec") -> tuple[object, object]:
    """150 s of DB1 subject 1 replayed through `emgflow run` into our ``kind`` recorder, the label beside the EMG."""
    take = tmp_path / f"take.{kind}"
    graph = tmp_path / "take.yaml"
    graph.write_text(
        "name: take\nnodes:\n"
        f"  replay:\n    type: replay\n    params: {{path: {data_dir / DB1}, speed: 0, chunk: 50, stop_s: 150}}\n"
        f"  rec:\n    type: {kind}\n"
        "    inputs: {in: {from: replay.emg, policy: all}, label: {from: replay.label, policy: all}}\n"
        f"    params: {{path: {take}}}\n")
    done = subprocess.run([sys.executable, "-m", "emgflow.cli.app", "run", str(graph), "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return take, load(data_dir / DB1)


def test_a_recorded_take_trains_through_a_dataset_file(data_dir, tmp_path):
    pytest.importorskip("torch")
    from typer.testing import CliRunner

    from emgflow.cli.app import app
    from emgflow.ml.checkpoint import load as load_checkpoint

    take, source = _record_take(data_dir, tmp_path)
    rec = load(take)
    label = rec.streams["label"][:, 0]
    start = rec.meta["start"]
    assert set(np.unique(label).tolist()) == {0, 1, 2}  # rest and the first two movements
    np.testing.assert_array_equal(label, source.streams["label"][start:start + len(label), 0])
    moving = label != 0  # the episode rule finds the repetitions Ninapro recorded
    np.testing.assert_array_equal(episode_repetitions(label)[moving],
                                  source.streams["repetition"][start:start + len(label), 0][moving])

    data = tmp_path / "mine.yaml"
    data.write_text("recordings: [take.emgrec]\nclasses: [rest, index flexion, index extension]\n"
                    "test: [2, 5, 7]\nval: [10]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("recordings: [take.emgrec]\nclasses: [rest, index flexion]\ntest: [2]\n")
    model = tmp_path / "mine.pt"
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--model", "cnn", "--data", str(bad), "--epochs", "1", "--out", str(model)])
    assert res.exit_code == 2 and "bad.yaml:2:1:" in res.output  # rich shortens the rest of the line
    assert "hint: name every class the takes hold, in class order" in res.output
    res = runner.invoke(app, ["train", "--model", "cnn", "--data", str(data), "--epochs", "1", "--train-step", "30",
                              "--out", str(model)])
    assert res.exit_code == 0, res.output
    assert "test: per-window" in res.output
    ckpt = load_checkpoint(model)
    assert ckpt["outputs"] == ["rest", "index flexion", "index extension"]
    assert ckpt["data"]["test_reps"] == [2, 5, 7] and ckpt["data"]["subjects"] == ["mine"]
    assert not set(ckpt["data"]["train_reps"]) & {2, 5, 7}  # the refit adds val (10)
    res = runner.invoke(app, ["eval", str(model), "--out", str(tmp_path / "report"), "--no-baselines"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert doc["metrics"]["test_acc"] == pytest.approx(ckpt["metrics"]["test_acc"])  # eval re-reads the file


@pytest.mark.parametrize("kind", ["emgrec", "npz"])
def test_a_bare_take_tests_on_its_last_repetition(data_dir, tmp_path, kind):
    take, _ = _record_take(data_dir, tmp_path, kind)
    spec = read_dataset(take)
    assert spec.test == (10,) and spec.val == (9,) and spec.classes == ("rest", "index flexion", "index extension")
    assert len(load_subject(spec, "take").recordings) == 1


def test_takes_that_cannot_make_one_split_are_refused_by_name(data_dir, tmp_path):
    take, _ = _record_take(data_dir, tmp_path)
    classes = "classes: [rest, index flexion, index extension]\n"
    absent = tmp_path / "absent.yaml"
    absent.write_text(f"recordings: [take.emgrec]\n{classes}test: [2, 20]\n")
    spec = read_dataset(absent)
    with pytest.raises(ValueError, match=r"absent.yaml: subject absent's recordings hold no test repetition \[20\] "
                                         r"\(they hold repetitions \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]\)"):
        load_subject(spec, "absent")
    rec = load(take)  # the same take saved at another rate: it cannot join the first in one pipeline
    np.savez(tmp_path / "fast.npz", emg=rec.emg, rate=200.0, label=rec.streams["label"])
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(f"recordings: [take.emgrec, fast.npz]\n{classes}test: [2]\n")
    with pytest.raises(RecordingError, match=r"fast.npz: 10 channels at 200 Hz, but .*take.emgrec has 10 at 100 Hz"):
        load_subject(read_dataset(mixed), "mixed")


def test_the_subject_may_be_left_out_only_where_the_dataset_holds_one(data_dir):
    pytest.importorskip("torch")
    from emgflow.ml.config import TrainConfig

    assert TrainConfig.from_options({"model": "cnn", "dataset": "libemg"}).subject == "libemg-one-subject-myo"
    with pytest.raises(ValueError, match="db1 holds several subjects; name one with --subject: 1, 2, 3"):
        TrainConfig.from_options({"model": "cnn", "dataset": "db1"})
    with pytest.raises(ValueError, match="db1 has no subject None; subjects: 1, 2, 3"):
        TrainConfig(model="cnn", dataset="db1")


def test_a_repetition_recorded_twice_trains_on_the_later_one(data_dir, tmp_path):
    """What a redo in `emgflow calibrate` leaves in a take: both attempts, labelled as they were cued."""
    from emgflow.calibration import SET_ASIDE
    from emgflow.ml.datasets import windows_from

    runs = [(0, 0, 100), (1, 1, 150), (0, 0, 100), (1, 1, 150), (0, 0, 100), (1, 2, 150), (0, 0, 100), (1, 3, 150),
            (0, 0, 100)]  # (class, repetition, samples): repetition 1 of class 1 redone
    label = np.concatenate([np.full(n, c) for c, _, n in runs]).astype(np.int32)
    rep = np.concatenate([np.full(n, r) for _, r, n in runs]).astype(np.int32)
    emg = np.loadtxt(data_dir / "libemg-one-subject-myo/stream/raw_emg.csv", delimiter=",")[:len(label)]
    take = tmp_path / "take.npz"
    np.savez(take, emg=emg.astype(np.float32), rate=200.0, label=label, repetition=rep,
             meta=json.dumps({"class_names": {"0": "rest", "1": "power"}}))
    spec = read_dataset(take)
    assert spec.test == (3,) and spec.val == (2,) and spec.classes == ("rest", "power")
    rec = spec.reader(take)
    reps = rec.streams["repetition"][:, 0]
    assert (reps[100:250] == SET_ASIDE).all() and (reps[350:500] == 1).all()  # the earlier attempt gives way
    w = windows_from([rec], [{"type": "rms", "window": 20, "step": 2}])
    last = 19 + 2 * np.arange((len(label) - 20) // 2 + 1)  # the last sample of each window
    assert SET_ASIDE not in w.repetition and len(w) == int((last >= 250).sum())  # it and the rest before it left out
