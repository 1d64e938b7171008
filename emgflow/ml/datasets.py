"""Windows and repetition splits from real recordings, cut by the same node chain that serves online.

A *pipeline* is a list of stock node specs (``{"type": "rms", "window": 20, "step": 2}``); the
last one makes the model input (``emg_image``, ``wp_image`` or ``long_exposure``). Offline, the
whole recording runs through those very nodes as one message (``run_pipeline``), so a graph
``replay -> <pipeline> -> classify`` sees exactly the rows the model was trained and scored on.
Every window is labelled by its last input sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emgflow.message import Msg
from emgflow.recordings import Recording, RecordingError, class_names, load
from emgflow.registry import resolve_registered
from emgflow.testing import run_node

from . import discover
from .spec import DatasetSpec

GLOVE_JOINTS = [1, 2, 4, 5, 7, 8, 11, 12, 15, 16]
"""CyberGlove II columns regressed by model B: thumb MCP/IP, then MCP and PIP of index, middle, ring, little."""
GLOVE_JOINT_NAMES = ["thumb MCP", "thumb IP", "index MCP", "index PIP", "middle MCP", "middle PIP",
                     "ring MCP", "ring PIP", "little MCP", "little PIP"]


DATASETS: dict[str, DatasetSpec] = {
    "db1": DatasetSpec(
        "db1", discover.ninapro_db1, test=(2, 5, 7), val=(10,), classes="ninapro",
        target="glove", target_columns=tuple(GLOVE_JOINTS), target_names=tuple(GLOVE_JOINT_NAMES),
        rest_segments_per_rep=1,
        description="Ninapro DB1 exercise 1: 10 Otto Bock RMS electrodes at 100 Hz, 12 finger movements + rest"),
    "db5": DatasetSpec(
        "db5", discover.ninapro_db5, test=(2, 5), val=(6,), classes="ninapro",
        target="glove", target_columns=tuple(GLOVE_JOINTS), target_names=tuple(GLOVE_JOINT_NAMES),
        rest_segments_per_rep=1,
        description="Ninapro DB5 exercise 1: two Myo armbands (16 raw channels) at 200 Hz, 12 finger movements + rest"),
    "coteallard": DatasetSpec(
        "coteallard", discover.coteallard, test=(3,), val=(2,), classes="coteallard",
        description="Côté-Allard Myo pre-training set: 8 raw channels at 200 Hz, 7 gestures x 4 cycles; "
                    "repetition = cycle (0-3)"),
    "myo-readings": DatasetSpec(
        "myo-readings", discover.myo_readings, test=(3,), val=(2,), classes="myo-readings",
        description="myo-readings: 8 raw Myo channels at 200 Hz, 7 wrist gestures + rest, one subject per "
                    "person-session; repetition = time block of each gesture's file (1: first 60 %, 2: next 20 %, "
                    "3: last 20 %)"),
    "libemg": DatasetSpec(
        "libemg", discover.libemg, test=(5, 6), val=(4,), classes="libemg", reader=lambda p: by_trial(load(p)),
        description="LibEMG one-subject Myo set: 8 raw channels at 200 Hz, 5 classes x 2 repetitions in each of 6 "
                    "trials; repetition = trial (LibEMG's split: trials 1-4 train, 5-6 test)"),
    "grip": DatasetSpec(
        "grip", discover.grip_force, test=(3,), val=(2,), target="force", target_columns=(0,), target_names=("force",),
        description="Myo grip force: 8 raw channels at 200 Hz -> FSR force; repetition = time block "
                    "(1: first 60 %, 2: next 20 %, 3: last 20 %)"),
}


def by_trial(rec: Recording) -> Recording:
    """A LibEMG recording whose repetition is its trial (``trial_3`` -> 3): LibEMG splits by trial."""
    trial = int(str(rec.meta["trial"]).rpartition("_")[2])
    return Recording(rec.emg, rec.rate, {**rec.streams, "repetition": np.full(len(rec.emg), trial)},
                     rec.channel_names, rec.source, {**rec.meta, "session": rec.meta["trial"]})


def dataset(name: str) -> DatasetSpec:
    """A shipped dataset by name, or a dataset file (YAML) or one take (npz, emgrec, ...) by path."""
    if name in DATASETS:
        return DATASETS[name]
    if Path(name).suffix:
        from .datafile import read_dataset

        return read_dataset(Path(name))
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, or the path of a dataset "
                     f"file (.yaml) or of a take (.npz, .emgrec)")


def parse_subject(spec: DatasetSpec, text: str) -> Any:
    """A subject id from the command line, checked against the subjects the dataset's files hold."""
    subjects = spec.subjects
    subject: Any = int(text) if text.isdigit() and isinstance(subjects[0], int) else text
    if subject not in subjects:
        raise ValueError(f"{spec.name} has no subject {text!r}; subjects: {', '.join(map(str, subjects))}")
    return subject


# --- running the node chain offline --------------------------------------------------------------

def build_nodes(pipeline: Sequence[dict[str, Any]]) -> list[Any]:
    """Instantiate the nodes of a pipeline spec (``type`` + params): registered kinds only, since a
    checkpoint's pipeline is data and must not make us import a module it names."""
    return [resolve_registered(spec["type"])(**{k: v for k, v in spec.items() if k != "type"}) for spec in pipeline]


def run_pipeline(pipeline: Sequence[dict[str, Any]], emg: np.ndarray,
                 rate: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Run a recording through the pipeline's nodes as one message.

    Returns ``(rows, last_sample, out_rate)``: the model inputs, the input-sample index of
    the last sample each row depends on (its label position), and the output row rate.
    """
    msg = Msg(data=np.asarray(emg), rate=rate, start=0)
    last = np.arange(len(emg))
    for node in build_nodes(pipeline):
        outs = run_node(node, [msg])
        produced = next(iter(outs.values()))
        if not produced:
            return np.empty((0,)), np.empty((0,), dtype=np.int64), 0.0
        window, step = _sizes(node, msg.rate)
        rows = np.concatenate([m.data for m in produced])
        last = last[np.arange(len(rows)) * step + window - 1]
        msg = Msg(data=rows, rate=produced[0].rate, start=0)
    return msg.data, last, msg.rate


def _sizes(node: Any, rate: float) -> tuple[int, int]:
    """(window, step) of a windowing node, (1, 1) for a sample-by-sample node."""
    sizes = getattr(node, "sizes", None)
    return sizes(rate) if callable(sizes) else (1, 1)


def pipeline_rate(pipeline: Sequence[dict[str, Any]], rate: float) -> float:
    """Row rate at the end of the pipeline for an input at ``rate``."""
    for node in build_nodes(pipeline):
        rate /= _sizes(node, rate)[1]
    return rate


def with_step(pipeline: Sequence[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """The pipeline with its last node's hop replaced (dense training windows, sparse test windows)."""
    out = [dict(s) for s in pipeline]
    out[-1]["step"] = step
    return out


# --- labels, repetitions and segments --------------------------------------------------------------

def backfill_rest(label: np.ndarray, repetition: np.ndarray) -> np.ndarray:
    """Rest samples take the repetition of the movement that follows them (the last one at the end)."""
    rep = repetition.copy()
    moving = np.flatnonzero(label != 0)
    if not len(moving):
        return rep
    nxt = np.searchsorted(moving, np.arange(len(rep)))  # next movement sample at or after each index
    nxt = np.minimum(nxt, len(moving) - 1)
    rest = label == 0
    rep[rest] = repetition[moving[nxt[rest]]]
    return rep


def shuffled_units(label: np.ndarray, repetition: np.ndarray, seed: int) -> np.ndarray:
    """Sample order that plays the recording's units (a movement repetition and the rest before
    it) in a random order, each unit intact.

    Ninapro records the repetitions of one movement in a row, so a slow feature can score on a test
    repetition by remembering the repetitions just before it, which a user switching gestures
    never gives it. Re-running a causal pipeline on ``recording[order]`` takes that memory away."""
    unit = segment_ids(backfill_rest(label, label), backfill_rest(label, repetition))
    units = np.split(np.arange(len(label)), np.flatnonzero(np.diff(unit)) + 1)
    return np.concatenate([units[k] for k in np.random.default_rng(seed).permutation(len(units))])


def reordered(rec: Recording, order: np.ndarray) -> Recording:
    """The recording with its samples (every stream alike) taken in ``order``."""
    return Recording(rec.emg[order], rec.rate, {k: v[order] for k, v in rec.streams.items()},
                     list(rec.channel_names), rec.source, dict(rec.meta))


def segment_ids(*keys: np.ndarray) -> np.ndarray:
    """Ids of the contiguous runs over which all ``keys`` stay constant."""
    change = np.zeros(len(keys[0]), dtype=bool)
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.cumsum(change)


@dataclass
class Windows:
    """Model inputs with what each row is scored against.

    ``x`` rows are model inputs. ``label`` (int, classification) and ``target`` (float,
    regression) are read at each row's last input sample. ``repetition`` selects the split,
    ``segment`` groups rows for the repetition vote, ``stream`` and ``index`` say which
    recording a row came from and its row index there (rows of a stream are contiguous, in order).
    """

    x: np.ndarray
    repetition: np.ndarray
    segment: np.ndarray
    stream: np.ndarray
    index: np.ndarray
    label: np.ndarray | None = None
    target: np.ndarray | None = None
    rate: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def take(self, mask: np.ndarray) -> "Windows":
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return Windows(self.x[mask], self.repetition[mask], self.segment[mask], self.stream[mask],
                       self.index[mask], pick(self.label), pick(self.target), self.rate, dict(self.meta))

    def split(self, reps: Sequence[int]) -> "Windows":
        return self.take(np.isin(self.repetition, list(reps)))


def recording_repetitions(rec: Recording) -> np.ndarray:
    """Per-sample repetition id: Ninapro's (rest back-filled), the Côté-Allard cycle, or time blocks."""
    if "repetition" in rec.streams:
        label = rec.streams["label"][:, 0]
        return backfill_rest(label, rec.streams["repetition"][:, 0])
    if "cycle" in rec.meta:
        return np.full(len(rec.emg), int(rec.meta["cycle"]), dtype=np.int32)
    n = len(rec.emg)  # no repetitions: contiguous time blocks 1 (60 %), 2 (20 %), 3 (20 %)
    return np.searchsorted([int(0.6 * n), int(0.8 * n)], np.arange(n), side="right").astype(np.int32) + 1


def windows_from(recordings: Sequence[Recording], pipeline: Sequence[dict[str, Any]], *,
                 target: str | None = None, target_columns: Sequence[int] | None = None) -> Windows:
    """Run every recording through the pipeline and label each row by its last sample; rows of a
    negative repetition (``calibration.SET_ASIDE``, an attempt redone later) are left out."""
    parts: list[Windows] = []
    for rec in recordings:
        rows, last, rate = run_pipeline(pipeline, rec.emg, rec.rate)
        if not len(rows):
            continue
        rep = recording_repetitions(rec)
        label = rec.streams["label"][:, 0] if "label" in rec.streams else None
        seg = segment_ids(rep, label) if label is not None else segment_ids(rep)
        tgt = None
        if target is not None:
            tgt = rec.streams[target][last]
            tgt = tgt[:, list(target_columns)] if target_columns is not None else tgt
        windows = Windows(rows.astype(np.float32), rep[last], seg[last], np.zeros(len(rows), dtype=np.int64),
                          np.arange(len(rows)), None if label is None else label[last].astype(np.int64),
                          None if tgt is None else tgt.astype(np.float32), rate)
        parts.append(windows.take(windows.repetition >= 0))  # SET_ASIDE: a redone attempt and the rest before it
    if not parts:
        raise ValueError("no windows: every recording is shorter than the pipeline's window")
    return concat_windows(parts)


def concat_windows(parts: Sequence[Windows]) -> Windows:
    """Several sets of windows as one; streams and segments renumbered so they stay distinct."""
    streams, segments = [], []
    stream_offset = segment_offset = 0
    for p in parts:
        streams.append(p.stream + stream_offset)
        segments.append(p.segment + segment_offset)
        stream_offset += int(p.stream.max()) + 1 if len(p) else 0
        segment_offset += int(p.segment.max()) + 1 if len(p) else 0

    def cat(name: str) -> np.ndarray | None:
        first = getattr(parts[0], name)
        return None if first is None else np.concatenate([getattr(p, name) for p in parts])

    return Windows(cat("x"), cat("repetition"), np.concatenate(segments), np.concatenate(streams), cat("index"),
                   cat("label"), cat("target"), parts[0].rate)


def subsample_rest(w: Windows, per_rep: int, seed: int = 0) -> Windows:
    """Keep ``per_rep`` randomly chosen rest segments per repetition (and every movement segment)."""
    rng = np.random.default_rng(seed)
    keep = w.label != 0
    for rep in np.unique(w.repetition):
        segs = np.unique(w.segment[(w.label == 0) & (w.repetition == rep)])
        chosen = rng.choice(segs, size=min(per_rep, len(segs)), replace=False)
        keep |= np.isin(w.segment, chosen)
    return w.take(keep)


@dataclass
class Subject:
    """One subject's recordings, loaded once."""

    spec: DatasetSpec
    subject: Any
    recordings: list[Recording]

    @property
    def rate(self) -> float:
        return self.recordings[0].rate

    @property
    def channels(self) -> int:
        return self.recordings[0].emg.shape[1]

    def class_names(self) -> list[str]:
        classes = self.spec.classes
        if not isinstance(classes, str):
            return list(classes or ())
        names = class_names(classes)
        return [names[i] for i in sorted(names)]

    def describe(self) -> str:
        return f"{self.spec.description}; subject {self.subject}; {len(self.recordings)} recording(s)"

    def sessions(self) -> list[str]:
        """The recording sessions, by the dataset's name for them or else the file's (Ninapro: one file
        per exercise and acquisition, ``S1_A1_E1``)."""
        return sorted({str(r.meta.get("session") or Path(str(r.source)).stem) for r in self.recordings})


def load_subject(spec: DatasetSpec, subject: Any) -> Subject:
    """One subject's recordings, refused (naming the file) when they cannot make one split: a recording at
    another rate or channel count than the first, or test repetitions no recording holds (nothing to score)."""
    recs = [spec.reader(p) for p in spec.files(subject)]
    first = recs[0]
    for rec in recs[1:]:
        if (rec.rate, rec.emg.shape[1]) != (first.rate, first.emg.shape[1]):
            raise RecordingError(f"{rec.source}: {rec.emg.shape[1]} channels at {rec.rate:g} Hz, but {first.source} "
                                 f"has {first.emg.shape[1]} at {first.rate:g} Hz; one subject's recordings share both")
    held = set().union(*(np.unique(recording_repetitions(r)).tolist() for r in recs))
    missing = sorted(set(spec.test) - held)
    if missing:
        raise ValueError(f"{spec.name}: subject {subject}'s recordings hold no test repetition {missing} "
                         f"(they hold repetitions {sorted(held)})")
    return Subject(spec, subject, recs)


def classification_windows(subj: Subject, pipeline: Sequence[dict[str, Any]], train_step: int,
                           test_step: int, split_seed: int = 0, train_all_rest: bool = False) -> dict[str, Windows]:
    """Train / val / test windows for classification: dense hop for training, sparse for val and test.

    ``fit`` holds every training repetition, validation ones included, at the dense hop: what a
    model without selection (the baselines) or a refit after selection trains on.
    ``train_all_rest`` keeps every rest segment in ``train`` / ``fit`` (validation and test keep the
    dataset's rest subsampling, the protocol): rest after each movement looks different, and a
    class-weighted loss keeps the extra rest windows from dominating.
    """
    spec = subj.spec
    dense = windows_from(subj.recordings, with_step(pipeline, train_step))
    sparse = windows_from(subj.recordings, with_step(pipeline, test_step))
    if spec.rest_segments_per_rep:
        if not train_all_rest:
            dense = subsample_rest(dense, spec.rest_segments_per_rep, split_seed)
        sparse = subsample_rest(sparse, spec.rest_segments_per_rep, split_seed)
    held = set(spec.test) | set(spec.val)
    train_reps = sorted(set(np.unique(dense.repetition).tolist()) - held)
    return {"train": dense.split(train_reps), "val": sparse.split(spec.val), "test": sparse.split(spec.test),
            "fit": dense.split(sorted(set(train_reps) | set(spec.val)))}


def contiguous_runs(w: Windows) -> list[np.ndarray]:
    """Index arrays of the runs of consecutive rows (same stream, consecutive ``index``)."""
    if not len(w):
        return []
    brk = np.flatnonzero((np.diff(w.stream) != 0) | (np.diff(w.index) != 1)) + 1
    return np.split(np.arange(len(w)), brk)
