"""Every shared recording format loads with the shapes, rates and labels its README documents."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import scipy.io

from emgflow.emgrec import Writer
from emgflow.recordings import FORMATS, Recording, RecordingError, class_names, detect_format, load

from .mutate import mutate_bytes

# file, format, (rows or None), channels, rate, {stream: columns}, label values (or None)
CASES = [
    ("ninapro-db1-e1/S1_A1_E1.mat", "ninapro", 101014, 10, 100.0,
     {"label": 1, "repetition": 1, "glove": 22}, set(range(13))),
    ("ninapro-db5-e1/s3/S3_E1_A1.mat", "ninapro", None, 16, 200.0,
     {"label": 1, "repetition": 1, "glove": 22, "acc": 3}, set(range(13))),
    ("coteallard-myo-armband/PreTrainingDataset/Female3/training0/classe_26.dat", "coteallard", None, 8, 200.0,
     {"label": 1}, {5}),
    ("myo-readings-dataset/_readings_right_hand/45612-2/4.txt", "myo-readings", None, 8, 200.0,
     {"label": 1}, {0, 4}),
    ("myo-readings-dataset/_readings_right_hand/12345-1/0.txt", "myo-readings", None, 8, 200.0,
     {"label": 1}, {0}),
    ("libemg-one-subject-myo/trial_5/R_1_C_4.csv", "libemg", None, 8, 200.0,
     {"label": 1, "repetition": 1}, {4}),
    ("libemg-one-subject-myo/stream/raw_emg.csv", "libemg", 4900, 8, 200.0, {}, None),
    ("3dc-armband/Participant1/train/EMG/3dc_EMG_gesture_3_5.txt", "3dc", 363, 10, 1000.0,
     {"label": 1, "repetition": 1}, {5}),
    ("3dc-armband/Participant2/test/EMG/3dc_EMG_gesture_2_10.txt", "3dc", None, 10, 1000.0,
     {"label": 1, "repetition": 1}, {10}),
    ("openhdemg-hdemg-sample/otb_testfile.mat", "otb", 66560, 64, 2048.0, {"force": 1}, None),
    ("myo-grip-force/recording_force_v11_2.mat", "grip-force", 9705, 8, 200.0, {"force": 1}, None),
    ("myo-grip-force/recording_force_v3_2.mat", "grip-force", 20900, 8, 200.0, {"force": 1}, None),
    ("emgflow-facial-sample/sample_data_02.csv", "facial", 20000, 2, 2000.0, {}, None),
    ("finger-angles-1ch-emg/acq-2/emg-0.csv", "finger-angles", None, 1, None, {"angles": 3}, None),
]


@pytest.mark.parametrize("rel, fmt, rows, channels, rate, streams, labels", CASES, ids=[c[0] for c in CASES])
def test_shared_formats_load(data_dir, rel, fmt, rows, channels, rate, streams, labels):
    path = data_dir / rel
    assert detect_format(path) == fmt
    rec = load(path)
    assert rec.emg.dtype == np.float32 and rec.emg.shape[1] == channels
    assert rows is None or len(rec.emg) == rows
    assert rate is None or rec.rate == rate
    assert {k: v.shape[1] for k, v in rec.streams.items()} == streams
    for name, array in rec.streams.items():
        assert len(array) == len(rec.emg)
        assert array.dtype == (np.int32 if name in ("label", "repetition") else np.float32)
    if labels is not None:
        assert set(np.unique(rec.streams["label"])) == labels
    assert len(rec.channel_names) == channels and rec.source == path
    json.dumps(rec.meta)  # plain values only, so it can travel in message headers


def test_ninapro_db5_streams_are_the_realigned_labels(data_dir):
    path = data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat"
    m = scipy.io.loadmat(path)
    rec = load(path)
    assert np.array_equal(rec.emg, m["emg"])
    assert np.array_equal(rec.streams["label"][:, 0], m["restimulus"].ravel())
    assert np.array_equal(rec.streams["repetition"][:, 0], m["rerepetition"].ravel())
    assert np.array_equal(rec.streams["glove"], m["glove"]) and np.array_equal(rec.streams["acc"], m["acc"])
    assert rec.meta["dataset"] == "ninapro-db5" and rec.meta["subject"] == 1 and rec.meta["exercise"] == 1
    assert rec.meta["class_names"]["10"] == "thumb abduction"


def test_ninapro_db1_is_100_hz_envelopes(data_dir):
    rec = load(data_dir / "ninapro-db1-e1/S9_A1_E1.mat")
    assert rec.meta["dataset"] == "ninapro-db1" and rec.meta["subject"] == 9
    assert rec.rate == 100.0 and rec.emg.min() >= 0  # on-board RMS: never negative
    assert set(np.unique(rec.streams["repetition"])) == set(range(11))


def test_coteallard_label_and_cycle_from_file_name(data_dir):
    path = data_dir / "coteallard-myo-armband/PreTrainingDataset/Male0/training0/classe_12.dat"
    rec = load(path)
    assert np.array_equal(rec.emg, np.fromfile(path, dtype="<i2").reshape(-1, 8))
    assert np.all(rec.streams["label"] == 5) and rec.meta["cycle"] == 1
    assert rec.meta["subject"] == "Male0" and rec.meta["class_names"]["5"] == "hand close"


def test_myo_readings_per_sample_labels(data_dir):
    path = data_dir / "myo-readings-dataset/_readings_right_hand/12345-3/7.txt"
    table = np.loadtxt(path, delimiter=",", dtype=int)
    rec = load(path)
    assert np.array_equal(rec.emg, table[:, :8]) and np.array_equal(rec.streams["label"][:, 0], table[:, 8])
    assert rec.meta["subject"] == "12345" and rec.meta["session"] == "3" and rec.meta["class_names"]["7"] == "fist"


def test_libemg_labels_from_metadata(data_dir):
    rec = load(data_dir / "libemg-one-subject-myo/trial_2/R_0_C_3.csv")
    assert np.all(rec.streams["label"] == 3) and np.all(rec.streams["repetition"] == 0)
    assert rec.meta["class_names"]["3"] == "Wrist_Extension" and rec.meta["trial"] == "trial_2"


def test_libemg_labels_from_file_name_without_metadata(data_dir, tmp_path):
    source = data_dir / "libemg-one-subject-myo/trial_1/R_1_C_2.csv"
    copy = tmp_path / "R_1_C_2.csv"
    copy.write_bytes(source.read_bytes())
    rec = load(copy)
    assert np.all(rec.streams["label"] == 2) and np.all(rec.streams["repetition"] == 1)
    assert np.array_equal(rec.emg, load(source).emg)


def test_otb_force_column_and_grid(data_dir):
    rec = load(data_dir / "openhdemg-hdemg-sample/otb_testfile.mat")
    force = rec.streams["force"]
    assert 0.5 < force.min() < 1.5 and 25 < force.max() < 30  # %MVC, README: about 0.9-27.2
    assert 100 < rec.emg.std(axis=0).min() and rec.emg.std(axis=0).max() < 250  # uV, README: 114-217


def test_facial_dropouts_are_nan(data_dir):
    rec = load(data_dir / "emgflow-facial-sample/sample_data_01.csv")
    assert rec.channel_names == ["EMG_zyg", "EMG_cor"]
    assert rec.meta["missing"] == int(np.isnan(rec.emg).sum()) == 200  # 100 NULL rows, both columns
    assert not np.isnan(load(data_dir / "emgflow-facial-sample/sample_data_04.csv").emg).any()


def test_finger_angles_resampled_onto_one_uniform_grid(data_dir):
    raw = np.loadtxt(data_dir / "finger-angles-1ch-emg/acq-1/emg-0.csv", delimiter=";", skiprows=1)
    angles = np.loadtxt(data_dir / "finger-angles-1ch-emg/Hand_angles_record_1.csv", delimiter=",", skiprows=1)
    rec = load(data_dir / "finger-angles-1ch-emg/acq-1/emg-0.csv")
    assert rec.rate == pytest.approx(1 / np.median(np.diff(raw[:, 0])))
    assert len(rec.emg) / rec.rate == pytest.approx(raw[-1, 0] - raw[0, 0], abs=1 / rec.rate)
    assert rec.emg[0, 0] == raw[0, 1]  # the grid starts on the first timestamp
    grid = rec.meta["t0"] + np.arange(len(rec.emg)) / rec.rate
    inside = (grid >= angles[0, 0]) & (grid <= angles[-1, 0])
    tracked = ~np.isnan(rec.streams["angles"]).any(axis=1)
    assert np.array_equal(tracked, inside)
    assert tracked.argmax() / rec.rate == pytest.approx(6.0, abs=0.05)  # README: angles start 6.0 s in
    # Giving the angle file loads the same pair.
    same = load(data_dir / "finger-angles-1ch-emg/Hand_angles_record_1.csv")
    assert np.array_equal(same.emg, rec.emg) and same.source == rec.source


def test_generic_csv_needs_a_rate(tmp_path):
    path = tmp_path / "take.csv"
    path.write_text("a;b\n1;2\n3;4\n5;6\n")
    with pytest.raises(RecordingError, match="rate="):
        load(path)
    rec = load(path, rate=500)
    assert rec.rate == 500.0 and rec.channel_names == ["a", "b"]
    assert np.array_equal(rec.emg, [[1, 2], [3, 4], [5, 6]])


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    emg, label, glove = rng.normal(size=(50, 4)), rng.integers(0, 5, 50), rng.normal(size=(50, 22))
    path = tmp_path / "rec.npz"
    np.savez(path, emg=emg, rate=200.0, label=label, glove=glove, channel_names=np.array(["a", "b", "c", "d"]),
             meta=np.array(json.dumps({"subject": "s1", "class_names": {"0": "rest"}})))
    rec = load(path)
    assert rec.rate == 200.0 and rec.channel_names == ["a", "b", "c", "d"]
    assert np.array_equal(rec.emg, emg.astype(np.float32))
    assert rec.streams["label"].shape == (50, 1) and np.array_equal(rec.streams["label"][:, 0], label)
    assert np.array_equal(rec.streams["glove"], glove.astype(np.float32))
    assert rec.meta == {"subject": "s1", "class_names": {"0": "rest"}, "dataset": "npz"}


def test_class_names():
    assert class_names("ninapro-db1") == class_names("ninapro-db5") and class_names("ninapro")[12] == "thumb extension"
    assert len(class_names("3dc")) == 11 and class_names("myo-readings")[0] == "rest"
    with pytest.raises(RecordingError, match="known: "):
        class_names("otb")


def test_missing_shared_file_names_it_and_emgflow_data(tmp_path):
    missing = tmp_path / "ninapro-db5-e1/s2/S2_E1_A1.mat"
    with pytest.raises(RecordingError, match="EMGFLOW_DATA") as info:
        load(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(RecordingError, match="recording not found"):
        load(tmp_path / "mine.csv", rate=100)


@pytest.mark.parametrize("name, content, message", [
    ("classe_3.dat", np.arange(9, dtype="<i2").tobytes(), "not a multiple of 8"),
    ("R_0_C_1.csv", b"1,2,3,4,5\n6,7,8,9,10\n", "expected 8 columns, found 5"),
    ("3dc_EMG_gesture_0_1.txt", b"1,2,x,4\n", "numeric table of 10 columns"),
    ("broken.mat", b"not a matlab file" * 20, "not a readable MATLAB"),
    ("take.bin", b"\0" * 16, "cannot tell the recording format"),
])
def test_malformed_files_say_what_was_expected(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message):
        load(path)


def test_mat_with_unknown_variables(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"signal": np.zeros((10, 3))})
    with pytest.raises(RecordingError, match="unrecognised .mat layout.*found: signal"):
        load(path)
    with pytest.raises(RecordingError, match="missing emg, restimulus"):
        load(path, format="ninapro")


def test_rate_only_for_generic_csv_and_format_names_checked(data_dir):
    path = data_dir / "myo-grip-force/recording_force_v8.mat"
    with pytest.raises(RecordingError, match="only to generic CSV"):
        load(path, rate=200)
    with pytest.raises(RecordingError, match="unknown recording format"):
        load(path, format="matlab")
    assert "npz" in FORMATS and "csv" in FORMATS


def test_recording_checks_alignment():
    with pytest.raises(RecordingError, match="'glove' has 3 rows, emg has 4"):
        Recording(np.zeros((4, 2)), 100.0, {"glove": np.zeros((3, 22))})
    with pytest.raises(RecordingError, match="rate must be > 0"):
        Recording(np.zeros((4, 2)), 0.0)


def test_npz_layout_errors(tmp_path):
    path = tmp_path / "rec.npz"
    np.savez(path, emg=np.zeros((5, 2)))
    with pytest.raises(RecordingError, match="missing rate"):
        load(path)
    np.savez(path, emg=np.zeros((5, 2)), rate=100.0, glove=np.zeros((4, 22)))
    with pytest.raises(RecordingError, match="'glove' has 4 rows, emg has 5"):
        load(path)


def test_empty_or_cut_files_are_called_damaged_and_named(data_dir, tmp_path):
    """An empty .npz and a .mat cut in half (a copy interrupted, a full disk) name the file and say it is
    damaged, instead of an abort or an 'unrecognised layout'."""
    whole = (data_dir / "ninapro-db5-e1/s1/S1_E1_A1.mat").read_bytes()
    (tmp_path / "half.mat").write_bytes(whole[:len(whole) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    np.savez(tmp_path / "ok.npz", emg=np.zeros((100, 2)), rate=np.float64(200))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ok.npz").read_bytes()[:300])
    for name, fault in (("half.mat", "not a readable MATLAB v5 file, truncated or damaged"),
                        ("empty.npz", "not a readable .npz archive, empty, truncated or damaged"),
                        ("cut.npz", "not a readable .npz archive, empty, truncated or damaged")):
        with pytest.raises(RecordingError) as exc:
            load(tmp_path / name)
        assert str(exc.value).startswith(f"{tmp_path / name}: {fault}"), exc.value


def test_a_recorder_csv_cut_mid_row_loads_its_whole_rows(tmp_path):
    """The csv recorder ends every row with a newline, so an unterminated last line is a write cut by
    a kill: left out. Any other csv keeps an unterminated last row."""
    (tmp_path / "rec.csv").write_text("sample,ch0,ch1\n0,1.5,2\n1,3,4\n2,5.2")
    assert np.array_equal(load(tmp_path / "rec.csv", rate=100).emg, [[0, 1.5, 2], [1, 3, 4]])
    (tmp_path / "other.csv").write_text("t,ch0,ch1\n0,1.5,2\n1,3,4\n2,5.25,6")
    assert np.array_equal(load(tmp_path / "other.csv", rate=100).emg, [[0, 1.5, 2], [1, 3, 4], [2, 5.25, 6]])


def test_damaged_npz_and_emgrec_files_give_recording_errors_only(tmp_path):
    """A thousand seeded mutations (bytes changed, cut out, inserted) of an .npz and an .emgrec
    recording: load() either reads them or raises RecordingError, nothing else."""
    np.savez(tmp_path / "a.npz", emg=np.arange(64, dtype=np.float32).reshape(16, 4), rate=np.float64(200),
             start=np.int64(0), label=np.zeros((16, 1), np.int32), label_start=np.int64(0), meta=np.array('{"x": 1}'))
    writer = Writer(tmp_path / "a.emgrec")
    writer.declare("emg", 200.0, np.float32, 4, ["a", "b", "c", "d"], {"m": 1})
    writer.append("emg", 0, np.zeros((10, 4), np.float32))
    writer.flush()
    writer.close()
    rng, refused = random.Random(21), 0
    for i in range(1000):
        ext = ("npz", "emgrec")[i % 2]
        (tmp_path / f"m.{ext}").write_bytes(mutate_bytes((tmp_path / f"a.{ext}").read_bytes(), rng, cut=50, grow=8))
        try:
            load(tmp_path / f"m.{ext}")
        except RecordingError:
            refused += 1
    assert refused > 300
    data = bytearray((tmp_path / "a.npz").read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central directory entry: claim a zip version from the future
    data[entry + 6:entry + 8] = (255).to_bytes(2, "little")
    (tmp_path / "m.npz").write_bytes(bytes(data))
    with pytest.raises(RecordingError, match="not a readable .npz archive"):
        load(tmp_path / "m.npz")
