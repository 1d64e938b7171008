"""A dataset file: a user's own takes described in a few lines of YAML, trained on like a shipped dataset.

    # my-gestures.yaml
    recordings: [takes/monday.emgrec, takes/tuesday-*.npz]   # relative to this file; globs allowed
    classes: [rest, fist, open hand]   # class i is named classes[i]; class 0 is rest
    test: [3]                          # repetitions held out for the test score
    val: [2]                           # optional: repetitions that choose the epoch count
    label: label                       # optional: the stream holding each sample's class (default label)
    repetition: episodes               # optional: a stream name, or episodes (default): the k-th run of a
                                       #   class in a take is its repetition k, rest belongs to the next run;
                                       #   a class's repetition recorded twice (a redo): the later one counts
    subject: me                        # optional: the subject's name (default: the file's name)

Every mistake is reported with file:line:col and a hint, as the graph validator does; one that only
the recordings can show (a missing label stream, a label with no class name) points at the key too.
A bare take (``.npz``, ``.emgrec``) given instead of a file is read with the defaults above, its class
names from its own metadata, testing on its last repetition and validating on the one before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from emgflow.calibration import superseded
from emgflow.errors import GraphError, GraphErrors
from emgflow.graphfile import position, read_graph_file
from emgflow.recordings import Recording, load

from .spec import DatasetSpec

KEYS = ("recordings", "classes", "test", "val", "label", "repetition", "subject", "description")
EPISODES = "episodes"


def read_dataset(path: Path) -> DatasetSpec:
    """The dataset a YAML file describes, or one take with the defaults."""
    if path.suffix.lower() in (".yaml", ".yml"):
        return _from_file(path)
    return _from_take(path)


def episode_repetitions(label: np.ndarray) -> np.ndarray:
    """Per-sample repetition: the k-th run of a class (other than rest, 0) is its repetition k; rest is 0
    (``datasets.recording_repetitions`` gives it the repetition of the run that follows)."""
    starts = np.r_[0, np.flatnonzero(np.diff(label)) + 1]
    ends = np.r_[starts[1:], len(label)]
    rep = np.zeros(len(label), dtype=np.int32)
    seen: dict[int, int] = {}
    for a, b in zip(starts, ends):
        cls = int(label[a])
        if cls:
            seen[cls] = seen.get(cls, 0) + 1
            rep[a:b] = seen[cls]
    return rep


def _from_file(path: Path) -> DatasetSpec:
    if not path.exists():
        raise ValueError(f"dataset file not found: {path}")
    loader, doc = read_graph_file(str(path))
    errors = list(loader.errors)

    def fail(message: str, *at: Any, hint: str = "", key: bool = False) -> None:
        errors.append(GraphError(message, str(path), *position(loader, *at, key=key), hint))

    if not isinstance(doc, dict):
        raise GraphErrors([GraphError("expected a mapping of keys (recordings, classes, test, ...)", str(path), 1, 1,
                                      "see `emgflow train --help` and the README's Models section")])
    for key in doc:
        if key not in KEYS:
            fail(f"unknown key {key!r}", key, key=True, hint=f"known keys: {', '.join(KEYS)}")
    for key in ("recordings", "classes", "test"):
        if key not in doc:
            fail(f"missing key {key!r}", hint=f"add `{key}: [...]`")
    files = _recordings(path, doc.get("recordings"), fail)
    classes = _names(doc.get("classes"), fail)
    test, val = (_reps(doc.get(k, []), k, fail) for k in ("test", "val"))
    if set(test) & set(val):
        fail(f"repetitions {sorted(set(test) & set(val))} are both test and val", "val",
             hint="a repetition is held out for one purpose")
    label, repetition = (_word(doc.get(k, default), k, fail) for k, default in
                         (("label", "label"), ("repetition", EPISODES)))
    subject = _word(str(doc.get("subject", path.stem)), "subject", fail)
    if errors:
        raise GraphErrors(errors)
    where = {key: position(loader, key) for key in ("label", "repetition", "classes")}
    return DatasetSpec(str(path.resolve()), lambda: {subject: files}, tuple(test), tuple(val), tuple(classes),
                       description=str(doc.get("description", f"{path.name}: {len(files)} take(s)")),
                       reader=_reader(str(path), label, repetition, len(classes), where))


def _recordings(path: Path, value: Any, fail: Callable[..., None]) -> list[Path]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        fail("recordings must be a list of files", "recordings", hint="recordings: [take1.emgrec, take2.npz]")
        return []
    files: list[Path] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            fail(f"expected a file name, got {item!r}", "recordings", i, hint="quote the file name")
            continue
        found = sorted(path.parent.glob(item)) if any(c in item for c in "*?[") else [path.parent / item]
        found = [f for f in found if f.is_file()]
        if not found:
            fail(f"recording not found: {path.parent / item}", "recordings", i,
                 hint="paths are relative to this file")
        files += found
    return files


def _names(value: Any, fail: Callable[..., None]) -> list[str]:
    if value is None:
        return []
    if (not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) and v for v in value)
            or len(set(value)) != len(value)):
        fail("classes must list two or more distinct names, class 0 first", "classes",
             hint="classes: [rest, fist, open hand]")
        return []
    return value


def _reps(value: Any, key: str, fail: Callable[..., None]) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        fail(f"{key} must be a list of repetition numbers", key, hint=f"{key}: [3]")
        return []
    if key == "test" and not value:
        fail("test must name at least one repetition", key, hint="test: [3]")
    return value


def _word(value: Any, key: str, fail: Callable[..., None]) -> str:
    if not isinstance(value, str) or not value:
        fail(f"{key} must be a name", key, hint=f"{key}: a stream or subject name")
        return ""
    return value


def _reader(file: str, label: str, repetition: str, n_classes: int,
            where: dict[str, tuple[int | None, int | None]]) -> Callable[[Path], Recording]:
    """A reader that puts a take's label and repetition streams where training looks for them, refusing
    (at the dataset file's key) a take without them or with a label that has no class name."""
    def read(take: Path) -> Recording:
        rec = load(take)
        streams = dict(rec.streams)
        for key, stream in (("label", label), ("repetition", repetition)):
            if stream not in streams and not (key == "repetition" and stream == EPISODES):
                raise GraphError(f"{take} has no stream {stream!r} (it holds: {', '.join(streams) or 'emg only'})",
                                 file, *where.get(key, (None, None)), f"record the {key} beside the EMG, or name the stream that holds it")
        labels = streams.pop(label)[:, 0]
        bad = sorted(set(np.unique(labels).tolist()) - set(range(n_classes)))
        if bad:
            raise GraphError(f"{take} holds labels {bad} but classes names {n_classes} (0..{n_classes - 1})",
                             file, *where.get("classes", (None, None)), "name every class the takes hold, in class order")
        if repetition == EPISODES:
            reps = episode_repetitions(labels)
        else:  # a repetition recorded twice (a redo in `emgflow calibrate`): the later one counts
            reps = superseded(labels, streams.pop(repetition)[:, 0])
        streams.update(label=labels, repetition=reps)
        return Recording(rec.emg, rec.rate, streams, rec.channel_names, rec.source, rec.meta)
    return read


def _from_take(path: Path) -> DatasetSpec:
    """One take with the defaults: class names from its metadata, the last repetition for test."""
    rec = load(path)
    if "label" not in rec.streams:
        raise ValueError(f"{path} has no label stream (it holds: {', '.join(rec.streams) or 'emg only'}); record "
                         f"the labels beside the EMG, or describe the take in a dataset file (.yaml)")
    labels = rec.streams["label"][:, 0]
    n = max(int(labels.max()) + 1, 2)
    names = {str(k): str(v) for k, v in dict(rec.meta.get("class_names") or {}).items()}
    classes = tuple(names.get(str(i), f"class {i}") for i in range(n))
    reader = _reader(str(path), "label", "repetition" if "repetition" in rec.streams else EPISODES, n, {})
    reps = sorted(r for r in np.unique(reader(path).streams["repetition"]).tolist() if r > 0)
    if len(reps) < 2:
        raise ValueError(f"{path} holds {len(reps)} repetition(s) of its gestures; training needs one to test on "
                         f"and at least one to train on")
    val = (reps[-2],) if len(reps) >= 3 else ()
    return DatasetSpec(str(path.resolve()), lambda: {path.stem: [path]}, (reps[-1],), val, classes,
                       description=f"{path.name}: one take, {len(reps)} repetitions", reader=reader)
