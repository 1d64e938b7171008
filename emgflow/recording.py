"""A recording in memory: EMG rows at a rate, per-sample streams beside them, and what every reader
shares (class names of the labelled datasets, the error a bad file raises, where the shared data is).

The readers themselves are ``emgflow.recordings`` (``load()``, one per file format) and
``emgflow.textformats`` (the text-table formats it dispatches to).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import ENV_VAR
from .errors import EmgflowError

INT_STREAMS = ("label", "repetition")
"""Streams that hold integer codes; every other stream is float32."""

SHARED_FOLDERS = ("libemg-one-subject-myo", "coteallard-myo-armband", "myo-readings-dataset", "3dc-armband",
                  "finger-angles-1ch-emg", "openhdemg-hdemg-sample", "emgflow-facial-sample", "ninapro-db1-e1",
                  "ninapro-db5-e1", "myo-grip-force")
"""Dataset folders of the shared recordings (``$EMGFLOW_DATA``), used to hint at a missing file."""

_CLASS_NAMES: dict[str, dict[int, str]] = {
    "ninapro": {0: "rest", 1: "index flexion", 2: "index extension", 3: "middle flexion",
                4: "middle extension", 5: "ring flexion", 6: "ring extension", 7: "little flexion",
                8: "little extension", 9: "thumb adduction", 10: "thumb abduction", 11: "thumb flexion",
                12: "thumb extension"},
    "coteallard": {0: "neutral", 1: "radial deviation", 2: "wrist flexion", 3: "ulnar deviation",
                   4: "wrist extension", 5: "hand close", 6: "hand open"},
    "myo-readings": {0: "rest", 1: "flexion", 2: "extension", 3: "radial deviation", 4: "ulnar deviation",
                     5: "pronation", 6: "supination", 7: "fist"},
    "libemg": {0: "Hand_Close", 1: "Hand_Open", 2: "No_Motion", 3: "Wrist_Extension", 4: "Wrist_Flexion"},
    "3dc": {0: "neutral", 1: "radial deviation", 2: "wrist flexion", 3: "ulnar deviation", 4: "wrist extension",
            5: "supination", 6: "pronation", 7: "power grip", 8: "open hand", 9: "chuck grip", 10: "pinch grip"},
}
_CLASS_ALIASES = {"ninapro-db1": "ninapro", "ninapro-db5": "ninapro"}

GRIP_FORCE_MUSCLES = ["pronator teres", "brachioradialis", "extensor carpi radialis", "extensor digitorum",
                      "extensor carpi ulnaris", "flexor carpi ulnaris", "palmaris longus", "flexor carpi radialis"]


class RecordingError(EmgflowError, ValueError):
    """A recording is missing or not laid out as its format expects."""


@dataclass
class Recording:
    """One recording: EMG rows are samples, and every stream has the same rows.

    Construction normalises dtypes (emg float32, label/repetition int32, other streams float32,
    1-D streams to (N, 1)) and checks that rows and channel names line up.
    """

    emg: np.ndarray
    rate: float
    streams: dict[str, np.ndarray] = field(default_factory=dict)
    channel_names: list[str] = field(default_factory=list)
    source: Path = Path()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.emg = _rows(self.emg, np.float32, "emg", self.source)
        n, c = self.emg.shape
        if n == 0:
            raise RecordingError(f"{self.source}: the recording holds no samples")
        if not (np.isfinite(self.rate) and self.rate > 0):
            raise RecordingError(f"{self.source}: sample rate must be > 0 Hz, got {self.rate!r}")
        self.rate = float(self.rate)
        for name, array in self.streams.items():
            array = _rows(array, np.int32 if name in INT_STREAMS else np.float32, name, self.source)
            if len(array) != n:
                raise RecordingError(f"{self.source}: stream {name!r} has {len(array)} rows, emg has {n}")
            self.streams[name] = array
        self.channel_names = list(self.channel_names) or [f"ch{i}" for i in range(c)]
        if len(self.channel_names) != c:
            raise RecordingError(f"{self.source}: {len(self.channel_names)} channel names for {c} emg channels")

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.emg) / self.rate


def class_names(dataset: str) -> dict[int, str]:
    """Class index -> gesture name for a labelled dataset (``meta["dataset"]`` of a Recording)."""
    key = _CLASS_ALIASES.get(dataset, dataset)
    if key not in _CLASS_NAMES:
        known = sorted(_CLASS_NAMES) + sorted(_CLASS_ALIASES)
        raise RecordingError(f"no class names for dataset {dataset!r}; known: {', '.join(known)}")
    return dict(_CLASS_NAMES[key])


def existing(path: str | Path) -> Path:
    """``path`` as a Path if it is a file; otherwise a RecordingError naming it (and EMGFLOW_DATA if shared)."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise RecordingError(f"{path} is a folder; expected a recording file")
    message = f"recording not found: {path}"
    shared = next((part for part in path.parts if part in SHARED_FOLDERS), None)
    if shared:
        message += (f"; it is one of the shared recordings: set {ENV_VAR} to the folder holding {shared}/ "
                    f"and give the path under it (emgflow.data.data_path)")
    raise RecordingError(message)


def _rows(array: Any, dtype: type, name: str, source: Path) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise RecordingError(f"{source}: expected {name!r} as (N, k) rows, found shape {array.shape}")
    return np.ascontiguousarray(array, dtype=dtype)


def check_columns(array: np.ndarray, columns: int, path: Path, name: str) -> None:
    if array.ndim != 2 or array.shape[1] != columns:
        raise RecordingError(f"{path}: expected {name!r} of shape (N, {columns}), found {array.shape}")


def match_int(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def meta_names(names: dict[int, str]) -> dict[str, str]:
    return {str(k): v for k, v in names.items()}
