"""The emgrec, npz and csv recorders on real recordings: lossless whatever the chunking, an emgrec or
npz recording replays as what was recorded, readable on disk between flushes (a stalled stream too),
a SIGKILLed recorder leaves a readable prefix of the stream, and a full disk (a real tmpfs) stops
emgrec and csv with a clear error and a file holding every row flushed before."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

import emgflow.nodes.record as record
from emgflow.message import Msg
from emgflow.recordings import Recording, RecordingError, load
from emgflow.testing import chunk, concat, run_node
from emgflow.emgrec import MAGIC, Writer, read
from emgflow.nodes.record import TICK_MS, Csv, Emgrec, Npz
from emgflow.nodes.replay import Replay

from ..e2e.procs import alive, children_of, kill_started, start_run, wait_for

DB5 = "ninapro-db5-e1/s1/S1_E1_A1.mat"          # 16 ch float32 EMG (integer-valued), int32 label, float32 glove
GRIP = "myo-grip-force/recording_force_v10.mat"  # 8 Myo channels named after their muscles


@pytest.fixture(scope="module")
def db5(recording_file) -> Recording:
    return load(recording_file(DB5))


class FakeTime:
    """Stands in for the `time` module inside emgflow.nodes.record: monotonic() only moves when told."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(record, "time", fake)
    return fake


def interleave(streams: dict[str, list[Msg]]) -> list[tuple[str, Msg]]:
    """(port, msg) pairs in sample order across ports, as independent upstream nodes would deliver them."""
    pairs = [(port, m) for port, msgs in streams.items() for m in msgs]
    return sorted(pairs, key=lambda pm: (pm[1].start, pm[0]))


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Header and rows of a recorder CSV; only complete (newline-terminated) lines count."""
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    lines = complete.splitlines()
    if not lines:
        return [], np.empty((0, 0))
    header = lines[0].split(",")
    if len(lines) == 1:
        return header, np.empty((0, len(header)))
    return header, np.loadtxt(io.StringIO("\n".join(lines[1:])), delimiter=",", ndmin=2)


# --- 1. lossless under random chunking ------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_npz_is_bit_exact_with_label_and_target_under_random_chunking(tmp_path, db5, seed):
    """emg, label and target come back bit for bit with their dtypes, each port cut differently;
    `start` / `<name>_start` are the stream index of each stream's first row, `rate` its rate."""
    rng = np.random.default_rng(seed)
    first = 1000  # a stream that does not begin at 0 (a device sample counter, a replay with start_s)
    emg, label, glove = db5.emg[first:], db5.streams["label"][first:], db5.streams["glove"][first:]
    streams = {"in": chunk(emg, rng, rate=db5.rate, max_size=64, start=first, meta={"device": "test"}),
               "label": chunk(label, rng, rate=db5.rate, max_size=200, start=first),
               "target": chunk(glove, rng, rate=db5.rate, max_size=7, start=first)}
    path = tmp_path / "rec.npz"
    node = Npz("rec", path=str(path))
    assert run_node(node, interleave(streams)) == {}
    with np.load(path) as z:
        assert sorted(z.files) == ["emg", "label", "label_rate", "label_start", "meta", "rate", "start",
                                   "target", "target_rate", "target_start"]
        for key, want in (("emg", emg), ("label", label), ("target", glove)):
            assert z[key].dtype == want.dtype and z[key].shape == want.shape
            assert np.array_equal(z[key], want), key
        for prefix in ("", "label_", "target_"):
            assert z[prefix + "rate"].dtype == np.float64 and float(z[prefix + "rate"]) == db5.rate
            assert z[prefix + "start"].dtype == np.int64 and int(z[prefix + "start"]) == first
        assert json.loads(str(z["meta"])) == {"device": "test"}
    assert not (tmp_path / "rec.npz.tmp.npz").exists() and not (tmp_path / "rec.npz.emgrec").exists()
    assert not node.counters  # no gaps, nothing malformed


def test_npz_keeps_the_stream_dtype_and_makes_1d_rows_columns(tmp_path, db5):
    """int16 counts (as a Myo sends) stay int16; a 1-D stream is saved as (N, 1)."""
    counts = db5.emg[:3000].astype(np.int16)
    path = tmp_path / "counts.npz"
    run_node(Npz("rec", path=str(path)), chunk(counts[:, 3], np.random.default_rng(2), rate=db5.rate))
    with np.load(path) as z:
        assert z["emg"].dtype == np.int16 and z["emg"].shape == (3000, 1)
        assert np.array_equal(z["emg"][:, 0], counts[:, 3])


def test_csv_is_exact_on_emg_and_holds_the_sample_index(tmp_path, db5):
    """Integer-valued float32 EMG comes back exactly, with a `sample` column counting the stream index
    across random chunks; with no channel names in the stream the columns are ch0, ch1, ..."""
    rng = np.random.default_rng(3)
    first, emg = 500, db5.emg[500:6500]
    path = tmp_path / "emg.csv"
    run_node(Csv("tab", path=str(path)), chunk(emg, rng, rate=db5.rate, max_size=64, start=first))
    header, rows = read_csv(path)
    assert header == ["sample"] + [f"ch{i}" for i in range(16)]
    assert rows.shape == (6000, 17)
    assert np.array_equal(rows[:, 0], np.arange(first, first + 6000))
    assert np.array_equal(rows[:, 1:].astype(np.float32), emg)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_csv_is_lossless_by_default(tmp_path, db5, dtype):
    """Real glove data as float32 and (divided by 3, so it needs all 17 digits) as float64 reads back
    bit for bit; int16 counts are written as plain integers."""
    glove, counts = db5.streams["glove"][:3000], db5.emg[:3000].astype(np.int16)
    x = {np.float32: glove, np.float64: glove.astype(np.float64) / 3, np.int16: counts}[dtype]
    path = tmp_path / "x.csv"
    run_node(Csv("tab", path=str(path)), chunk(x, np.random.default_rng(4), rate=db5.rate, max_size=50))
    _, rows = read_csv(path)
    assert np.array_equal(rows[:, 1:].astype(dtype), x)
    if dtype is np.int16:
        body = path.read_text().split("\n", 1)[1]
        assert body.count("\n") == 3000 and not any(c in body for c in ".e")


def test_csv_precision_rounds_to_that_many_significant_digits(tmp_path, db5):
    """An explicit `precision` of 6 keeps 6 significant digits of real float data (not bit-exact)."""
    glove = db5.streams["glove"][:4000]
    path = tmp_path / "glove.csv"
    msgs = chunk(glove, np.random.default_rng(4), rate=db5.rate, max_size=50)
    run_node(Csv("tab", path=str(path), precision=6), msgs)
    _, rows = read_csv(path)
    assert not np.array_equal(rows[:, 1:].astype(np.float32), glove)  # the data really has more than 6 digits
    np.testing.assert_allclose(rows[:, 1:], glove.astype(np.float64), rtol=5e-6, atol=0)


def test_csv_header_names_the_channels_replay_sends(tmp_path, recording_file):
    path = recording_file(GRIP)
    rec = load(path)
    msgs = run_node(Replay(path=str(path), speed=0, chunk=25, stop_s=2))["emg"]
    out = tmp_path / "grip.csv"
    run_node(Csv("tab", path=str(out)), msgs)
    header, rows = read_csv(out)
    assert header == ["sample", *rec.channel_names]
    assert np.array_equal(rows[:, 1:].astype(np.float32), rec.emg[:400])


def test_npz_recording_loads_back_with_emgflow_recordings(tmp_path, db5):
    path = tmp_path / "rec.npz"
    run_node(Npz("rec", path=str(path)), chunk(db5.emg[:2000], np.random.default_rng(5), rate=db5.rate))
    back = load(path)
    assert np.array_equal(back.emg, db5.emg[:2000]) and back.rate == db5.rate
    assert back.meta == {"dataset": "npz", "start": 0} and back.channel_names == [f"ch{i}" for i in range(16)]


@pytest.mark.parametrize("recorder", [Npz, Emgrec])
@pytest.mark.parametrize("rel, wiring", [(DB5, {"emg": "in", "label": "label", "glove": "target"}),
                                         (GRIP, {"emg": "in", "force": "target"})])
def test_replay_of_a_recording_equals_what_was_recorded(tmp_path, recording_file, rel, wiring, recorder):
    """replay -> npz or emgrec (emg, and label / target ports) -> load and replay again: the same rows,
    dtypes, channel names and recording metadata (dataset, class names) as the first replay sent."""
    src = recording_file(rel)
    rec = load(src)
    played = run_node(Replay(path=str(src), speed=0, chunk=25, start_s=5, stop_s=15))
    sent = {port: concat(played[port]) for port in wiring}
    path = tmp_path / f"rec.{recorder.kind}"
    run_node(recorder("rec", path=str(path)), interleave({key: played[port] for port, key in wiring.items()}))

    back = load(path)
    assert back.rate == rec.rate and back.channel_names == rec.channel_names and len(back.emg) == 2000
    assert back.meta["start"] == 0 and back.meta["dataset"] == rec.meta["dataset"]
    assert back.meta.get("class_names") == rec.meta.get("class_names")
    assert np.array_equal(back.emg, sent["emg"])
    assert sorted(back.streams) == sorted(key for port, key in wiring.items() if port != "emg")
    for port, key in wiring.items():
        if port != "emg":
            assert np.array_equal(back.streams[key], sent[port]) and back.streams[key].dtype == sent[port].dtype

    again = run_node(Replay(path=str(path), speed=0, chunk=25))
    assert again["emg"][0].meta["channel_names"] == rec.channel_names
    assert np.array_equal(concat(again["emg"]), sent["emg"])
    for port, key in wiring.items():
        if port != "emg":  # label and target are replayed on their own ports
            assert np.array_equal(concat(again[key]), sent[port])


def test_npz_load_aligns_the_streams_by_sample_index(tmp_path, db5):
    """As a killed recorder leaves them: label 100 rows short of emg, target starting 50 rows late.
    load() keeps rows 50..900 of each, aligned; a stream at another rate is left out and named."""
    first, rng = 300, np.random.default_rng(8)
    emg, label, glove = (db5.emg[first:first + 1000], db5.streams["label"][first:first + 900],
                         db5.streams["glove"][first + 50:first + 1000])
    path = tmp_path / "rec.npz"
    run_node(Npz("rec", path=str(path)), interleave({
        "in": chunk(emg, rng, rate=db5.rate, start=first), "label": chunk(label, rng, rate=db5.rate, start=first),
        "target": chunk(glove, rng, rate=db5.rate, start=first + 50)}))
    back = load(path)
    assert back.meta["start"] == first + 50 and len(back.emg) == 850
    assert np.array_equal(back.emg, emg[50:900]) and np.array_equal(back.streams["label"], label[50:])
    assert np.array_equal(back.streams["target"], glove[:850])

    decisions = chunk(db5.emg[:1000:20], rng, rate=db5.rate / 20, max_size=3)  # one row per 20 samples
    run_node(Npz("rec", path=str(path)), interleave({"in": decisions, "label": chunk(label, rng, rate=db5.rate)}))
    back = load(path)
    assert back.streams == {} and back.meta["other_rate_streams"] == {"label": db5.rate}
    assert np.array_equal(back.emg, db5.emg[:1000:20])

    run_node(Npz("rec", path=str(path)), interleave({"in": chunk(emg[:100], None, rate=db5.rate),
                                                     "label": chunk(label[:100], None, rate=db5.rate, start=200)}))
    with pytest.raises(RecordingError, match="share no sample index"):
        load(path)
    np.savez(path, emg=emg, rate=db5.rate, start=first, label=label)  # a label of its own length, no label_start
    with pytest.raises(RecordingError, match="'label' has 900 rows, emg has 1000"):
        load(path)


def test_recorders_count_and_drop_messages_of_another_width(tmp_path, db5):
    """A message of another width is dropped and counted; a jump in `start` is kept and counted
    (npz); a 0-d payload is one row of one column, as Msg.end counts it."""
    x = db5.emg[:100]
    msgs = [Msg(x[:50], db5.rate, 0), Msg(x[50:60, :3], db5.rate, 50), Msg(x[50:], db5.rate, 50),
            Msg(x[:10], db5.rate, 120)]
    npz, csv = Npz("rec", path=str(tmp_path / "rec.npz")), Csv("tab", path=str(tmp_path / "rec.csv"))
    run_node(npz, msgs)
    run_node(csv, msgs + [Msg(np.array(["a"] * 16)[None], db5.rate, 130)])
    assert npz.counters == {"emg_malformed": 1, "emg_gaps": 1} and csv.counters == {"malformed": 2}
    with np.load(tmp_path / "rec.npz") as z:
        assert np.array_equal(z["emg"], np.concatenate([x, x[:10]]))
        assert json.loads(str(z["meta"]))["gaps"] == {"emg": [[100, 20]]}
    _, rows = read_csv(tmp_path / "rec.csv")
    assert np.array_equal(rows[:, 0], np.r_[np.arange(100), np.arange(120, 130)])
    assert np.array_equal(rows[:, 1:].astype(np.float32), np.concatenate([x, x[:10]]))

    scalar = Npz("rec", path=str(tmp_path / "one.npz"))
    run_node(scalar, [Msg(np.float32(2.5), 10.0, 0), Msg(np.float32(3), 10.0, 1)])
    with np.load(tmp_path / "one.npz") as z:
        assert np.array_equal(z["emg"], [[2.5], [3.0]]) and not scalar.counters


# --- 2. flushing: readable on disk between flushes, without finish() -------------------------------

STEP_S = 0.25  # fake seconds between messages; with flush_s = 1.0 the node flushes on every 4th message


def test_csv_on_disk_holds_exactly_the_rows_up_to_the_last_flush(tmp_path, db5, clock):
    """Rows wait in memory and are written whole at each flush: the file is always the stream's
    first rows up to the last flush, ending with a full row."""
    emg = db5.emg[:1500]
    msgs = chunk(emg, np.random.default_rng(7), rate=db5.rate, max_size=8)
    path = tmp_path / "rec.csv"
    node = Csv("tab", path=str(path), flush_s=1.0)
    node.setup()
    flushed = 0
    for i, msg in enumerate(msgs, 1):
        clock.t += STEP_S
        node.process(msg)
        if i % 4 == 0:
            flushed = msg.end
        assert path.read_text().endswith("\n") or path.stat().st_size == 0
        _, rows = read_csv(path)
        assert len(rows) == flushed, f"after message {i}"
        if flushed:
            assert np.array_equal(rows[:, 0], np.arange(flushed))
            assert np.array_equal(rows[:, 1:].astype(np.float32), emg[:flushed])
    assert flushed > 0
    node.teardown()
    assert np.array_equal(read_csv(path)[1][:, 1:].astype(np.float32), emg)


@pytest.mark.parametrize("recorder", [Npz, Csv, Emgrec])
def test_a_stalled_stream_is_flushed_on_the_tick(tmp_path, db5, clock, recorder):
    """A burst, then nothing: the tick (which the runtime calls every TICK_MS) writes the burst once
    flush_s has passed since the last write, and does not rewrite the file when nothing is new."""
    assert recorder.tick_ms == TICK_MS
    emg = db5.emg[:700]
    path = tmp_path / f"rec.{recorder.kind}"
    node = recorder("rec", path=str(path), flush_s=1.0)
    node.setup()

    disk = Path(getattr(node, "log_path", path))  # npz: the .emgrec it writes during the take

    def on_disk() -> np.ndarray:
        if recorder is Csv:
            return read_csv(path)[1][:, 1:].astype(np.float32).reshape(-1, 16)
        return load(disk).emg if disk.stat().st_size > len(MAGIC) else np.empty((0, 16), np.float32)

    for msg in chunk(emg, np.random.default_rng(9), rate=db5.rate, max_size=40):  # a burst: no time passes
        node.handle("in", msg)
    for _ in range(9):  # 0.9 s of stall, tick by tick
        clock.t += TICK_MS / 1000
        node.tick()
        assert len(on_disk()) == 0
    clock.t += TICK_MS / 1000
    node.tick()
    assert np.array_equal(on_disk(), emg)
    written = disk.stat()
    clock.t += 5.0
    node.tick()
    assert disk.stat().st_ino == written.st_ino and disk.stat().st_mtime_ns == written.st_mtime_ns
    node.teardown()
    assert np.array_equal(load(path).emg if recorder is Npz else on_disk(), emg)


# --- 3. a SIGKILLed recorder process leaves a readable prefix --------------------------------------

def node_pid(supervisor: int, name: str) -> int:
    """The runner process of graph node ``name`` (its spec JSON is the last command-line argument)."""
    for pid in children_of(supervisor):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        if b"emgflow.runner" in args and json.loads(args[-1])["name"] == name:
            return pid
    raise AssertionError(f"no process for node {name!r} under {supervisor}")


@pytest.mark.timeout(90)
def test_sigkilled_recorders_leave_a_readable_prefix_of_the_stream(tmp_path, recording_file, db5):
    """replay (2x real time) -> npz (emg + label), emgrec (emg + label) and csv; the recorder processes
    are SIGKILLed after they have flushed at least twice: each file still parses and holds the
    recording's first n rows."""
    src = recording_file(DB5)
    graph = tmp_path / "g.yaml"
    graph.write_text(textwrap.dedent(f"""
        name: kill-recorders
        nodes:
          source: {{type: replay, params: {{path: {src}, speed: 2, chunk: 10, stop_s: 60}}}}
          rec: {{type: npz, inputs: {{in: source.emg, label: source.label}}, params: {{path: rec.npz, flush_s: 0.2}}}}
          tab: {{type: csv, inputs: {{in: source.emg}}, params: {{path: rec.csv, flush_s: 0.2}}}}
          log: {{type: emgrec, inputs: {{in: source.emg, label: source.label}}, params: {{path: rec.emgrec, flush_s: 0.2}}}}
        """))
    npz, csv, log = tmp_path / "rec.npz.emgrec", tmp_path / "rec.csv", tmp_path / "rec.emgrec"
    proc = start_run(graph)
    try:
        assert wait_for(lambda: npz.exists() and npz.stat().st_size > 20000, 60), "the npz recorder never flushed twice"
        assert wait_for(lambda: csv.stat().st_size > 2000, 10), "the csv recorder never flushed"
        assert wait_for(lambda: log.stat().st_size > 20000, 10), "the emgrec recorder never flushed twice"
        pids = [node_pid(proc.pid, "rec"), node_pid(proc.pid, "tab"), node_pid(proc.pid, "log")]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: not any(alive(p) for p in pids), 10)
        at_kill = {p: p.read_bytes() for p in (npz, csv, log)}
        _, err = proc.communicate(timeout=30)
    finally:
        kill_started()
    assert proc.returncode == 1 and "exited with code -9" in err, err
    assert {p: p.read_bytes() for p in (npz, csv, log)} == at_kill  # nothing wrote them after the kill

    total = 60 * int(db5.rate)
    assert not (tmp_path / "rec.npz").exists()  # exported only when the recorder stops
    streams, torn = read(npz)
    emg, label = streams["emg"], streams["label"]
    assert emg.start == 0 and emg.rate == db5.rate and label.start == 0 and not emg.gaps
    assert 0 < len(emg.rows) < total
    assert np.array_equal(emg.rows, db5.emg[: len(emg.rows)])
    assert 0 < len(label.rows) and np.array_equal(label.rows, db5.streams["label"][: len(label.rows)])
    back = load(npz)  # what replay plays: the rows both streams hold
    n = min(len(emg.rows), len(label.rows))
    assert len(back.emg) == n and np.array_equal(back.streams["label"], db5.streams["label"][:n])

    assert csv.read_text().endswith("\n")  # whole rows only: np.loadtxt reads the file as it is
    header, rows = read_csv(csv)
    assert header[0] == "sample" and len(header) == 17
    n = len(rows)
    assert 0 < n < total
    assert np.array_equal(rows[:, 0], np.arange(n))
    assert np.array_equal(rows[:, 1:].astype(np.float32), db5.emg[:n])

    back = load(log)
    n = len(back.emg)
    assert 0 < n < total and back.meta["start"] == 0
    assert np.array_equal(back.emg, db5.emg[:n]) and np.array_equal(back.streams["label"], db5.streams["label"][:n])


# --- 4. emgrec: append-only, every flushed row survives ------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_emgrec_is_bit_exact_with_label_and_target_under_random_chunking(tmp_path, db5, seed):
    rng = np.random.default_rng(seed)
    first = 1000
    emg, label, glove = db5.emg[first:], db5.streams["label"][first:], db5.streams["glove"][first:]
    node = Emgrec("rec", path=str(tmp_path / "rec.emgrec"))
    run_node(node, interleave({"in": chunk(emg, rng, rate=db5.rate, max_size=64, start=first, meta={"device": "test"}),
                               "label": chunk(label, rng, rate=db5.rate, max_size=200, start=first),
                               "target": chunk(glove, rng, rate=db5.rate, max_size=7, start=first)}))
    back = load(tmp_path / "rec.emgrec")
    assert back.rate == db5.rate and back.meta == {"dataset": "emgrec", "device": "test", "torn_bytes": 0, "start": first}
    assert np.array_equal(back.emg, emg) and np.array_equal(back.streams["label"], label)
    assert np.array_equal(back.streams["target"], glove) and not node.counters


def test_emgrec_keeps_dtypes_gaps_and_drops_other_layouts(tmp_path, db5):
    """int16 stays int16 on disk; a jump in `start` is counted and listed where it happened; a
    message of another width or dtype is counted and dropped."""
    x = db5.emg[:100].astype(np.int16)
    node = Emgrec("rec", path=str(tmp_path / "rec.emgrec"))
    run_node(node, [Msg(x[:50], db5.rate, 0), Msg(x[50:60, :3], db5.rate, 50), Msg(x[50:60].astype(np.float32), db5.rate, 50),
                    Msg(x[50:], db5.rate, 50), Msg(x[:10], db5.rate, 120)])
    assert node.counters == {"emg_malformed": 2, "emg_gaps": 1}
    back = load(tmp_path / "rec.emgrec")
    assert np.array_equal(back.emg, np.concatenate([x, x[:10]])) and back.meta["gaps"] == {"emg": [[100, 20]]}
    assert read(tmp_path / "rec.emgrec")[0]["emg"].rows.dtype == np.int16


@pytest.mark.parametrize("recorder", [Emgrec, Npz])
def test_emgrec_only_appends_and_holds_only_unflushed_rows(tmp_path, db5, clock, recorder):
    """After every flush the file is the previous file plus new bytes (nothing rewritten), it loads
    as exactly the rows up to that flush, and the node keeps no row it has written. The npz recorder
    does the same to <path>.emgrec, exports the .npz when it stops and removes the .emgrec."""
    emg = db5.emg[:3000]
    node = recorder("rec", path=str(tmp_path / f"rec.{recorder.kind}"), flush_s=1.0)
    path = Path(node.log_path)
    node.setup()
    before, flushed = path.read_bytes(), 0
    for i, msg in enumerate(chunk(emg, np.random.default_rng(6), rate=db5.rate, max_size=40), 1):
        clock.t += STEP_S
        node.handle("in", msg)
        if i % 4:
            continue
        flushed, now = msg.end, path.read_bytes()
        assert now.startswith(before) and len(now) > len(before), f"after message {i}"
        assert np.array_equal(load(path).emg, emg[:flushed])
        assert not any(p.runs for p in node.writer.pending.values()) and not node.writer.blocks
        before = now
    assert recorder is Emgrec or not Path(node.path).exists()  # the .npz comes when the recorder stops
    node.teardown()
    assert np.array_equal(load(node.path).emg, emg) and flushed > 0
    if recorder is Npz:
        assert not path.exists()
        with np.load(node.path) as z:
            assert np.array_equal(z["emg"], emg) and int(z["start"]) == 0


def test_an_emgrec_file_cut_anywhere_loads_every_whole_block(tmp_path, db5):
    """A kill or a full disk can cut the last write at any byte: the file still loads, with every
    row of the earlier writes; a damaged block ends the reading there too."""
    path = tmp_path / "rec.emgrec"
    writer = Writer(path)
    writer.declare("emg", db5.rate, np.float32, 16, None, {})
    writer.declare("label", db5.rate, np.int32, 1, None, {})
    ends = []
    for a, b in ((0, 40), (40, 90), (90, 100)):
        writer.append("emg", a, db5.emg[a:b])
        writer.append("label", a, db5.streams["label"][a:b])
        writer.flush()
        ends.append(path.stat().st_size)
    writer.close()
    whole = path.read_bytes()
    for cut in range(ends[1], ends[2]):
        path.write_bytes(whole[:cut])
        back = load(path)
        assert np.array_equal(back.emg, db5.emg[:90]) and 0 <= back.meta["torn_bytes"] <= cut - ends[1]
        assert len(read(path)[0]["emg"].rows) in (90, 100)  # the third write's emg block may be whole
        assert np.array_equal(back.streams["label"], db5.streams["label"][:90])
    damaged = bytearray(whole)
    damaged[ends[1] + 40] ^= 0xFF
    path.write_bytes(bytes(damaged))
    assert np.array_equal(load(path).emg, db5.emg[:90])
    path.write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(RecordingError, match="not a readable .emgrec file"):
        load(path)


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs: writes past it fail with ENOSPC as on a full disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.parametrize("recorder", [Emgrec, Csv, Npz])
def test_a_full_disk_stops_the_recorder_and_keeps_every_earlier_row(small_disk, db5, clock, recorder):
    """Every recorder cuts the failed append back off and stops with the error naming the file; the
    npz recorder's export at the stop then fails too, keeping its .emgrec whole and no temp file."""
    node = recorder("rec", path=str(small_disk / f"rec.{recorder.kind}"), flush_s=1.0)
    path = Path(getattr(node, "log_path", node.path))
    node.setup()
    emg = np.tile(db5.emg[:2000], (20, 1))  # 40,000 rows of 16 float32: far more than 1 MiB
    flushed = 0
    with pytest.raises(OSError) as exc:
        for i, msg in enumerate(chunk(emg, None, rate=db5.rate, max_size=200), 1):
            clock.t += STEP_S
            node.handle("in", msg)
            if i % 4 == 0:
                flushed = msg.end
    assert exc.value.errno == errno.ENOSPC and str(path) in str(exc.value)
    assert 0 < flushed < len(emg)
    assert "every earlier write" in str(exc.value)
    if recorder is Npz:
        with pytest.raises(OSError, match="while exporting") as exc:
            node.teardown()
        assert exc.value.errno == errno.ENOSPC and sorted(p.name for p in small_disk.iterdir()) == [path.name]
    else:
        node.teardown()  # the stop after the error writes nothing more
    if recorder is not Csv:
        back = load(path)
        assert back.meta["torn_bytes"] == 0 and np.array_equal(back.emg, emg[:flushed])
    else:
        assert path.read_text().endswith("\n")
        rows = load(path, rate=db5.rate).emg
        assert np.array_equal(rows[:, 0], np.arange(flushed)) and np.array_equal(rows[:, 1:], emg[:flushed])


def test_an_emgrec_stream_declared_again_goes_on_and_another_layout_is_refused(tmp_path, db5):
    """What a recorder that opens the file again writes: the stream's rows continue, gap listed."""
    takes = []
    for start, dtype in ((0, np.float32), (150, np.float32), (300, np.float64)):
        writer = Writer(tmp_path / "part.emgrec")
        writer.declare("emg", db5.rate, dtype, 16, None, {})
        writer.append("emg", start, db5.emg[start:start + 100].astype(dtype))
        writer.flush()
        writer.close()
        takes.append((tmp_path / "part.emgrec").read_bytes()[len(MAGIC):])
    path = tmp_path / "rec.emgrec"
    path.write_bytes(MAGIC + takes[0] + takes[1])
    back = load(path)
    assert np.array_equal(back.emg, np.concatenate([db5.emg[:100], db5.emg[150:250]]))
    assert back.meta["gaps"] == {"emg": [[100, 50]]}
    path.write_bytes(MAGIC + takes[0] + takes[2])
    with pytest.raises(RecordingError, match="declared again as 16 x <f8"):
        load(path)
