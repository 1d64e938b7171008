"""The text-table recording formats: LibEMG, 3DC, myo-readings, facial, finger-angles and generic CSV
(``emgflow.recordings.load`` picks one by ``text_format``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .recording import Recording, RecordingError, class_names, existing, match_int, meta_names

_LIBEMG_NAME = re.compile(r"R_(\d+)_C_(\d+)\.csv")
_3DC_NAME = re.compile(r"3dc_EMG_gesture_(\d+)_(\d+)\.txt")
_MYO_READINGS_NAME = re.compile(r"(\d+)\.txt")



def text_format(path: Path) -> str:
    name = path.name
    if _LIBEMG_NAME.fullmatch(name) or (name == "raw_emg.csv" and path.parent.name == "stream"):
        return "libemg"
    if _3DC_NAME.fullmatch(name):
        return "3dc"
    first = _first_line(path)
    if first.startswith(("timestamp;value", "timestamp,mcp")):
        return "finger-angles"
    if first.startswith("Time,EMG_"):
        return "facial"
    if _MYO_READINGS_NAME.fullmatch(name) and first.count(",") == 8:
        return "myo-readings"
    return "csv"


def _read_libemg(path: Path) -> Recording:
    meta: dict[str, Any] = {"dataset": "libemg", "device": "Myo armband",
                            "class_names": meta_names(class_names("libemg"))}
    emg = _table(path, ",", 8)
    if path.name == "raw_emg.csv":
        return Recording(emg, 200.0, {}, [], path, meta)
    match = _LIBEMG_NAME.fullmatch(path.name)
    if match is None:
        raise RecordingError(f"{path}: expected a LibEMG file named R_<rep>_C_<class>.csv or raw_emg.csv")
    rep, cls = (int(g) for g in match.groups())
    meta_file = path.parent / "metadata.json"
    if meta_file.is_file():
        entries = {Path(k).name: v for k, v in json.loads(meta_file.read_text()).items() if isinstance(v, dict)}
        if path.name not in entries:
            raise RecordingError(f"{meta_file}: has no entry for {path.name}")
        rep, cls = int(entries[path.name]["rep_idx"]), int(entries[path.name]["class_idx"])
        meta["class_names"] = {str(e["class_idx"]): e["class_name"] for e in entries.values()}
    meta["trial"] = path.parent.name
    n = len(emg)
    return Recording(emg, 200.0, {"label": np.full((n, 1), cls), "repetition": np.full((n, 1), rep)}, [], path, meta)


def _read_3dc(path: Path) -> Recording:
    match = _3DC_NAME.fullmatch(path.name)
    if match is None:
        raise RecordingError(f"{path}: expected a 3DC file named 3dc_EMG_gesture_<rep>_<class>.txt")
    rep, cls = (int(g) for g in match.groups())
    emg = _table(path, ",", 10)
    meta = {"dataset": "3dc", "device": "3DC armband", "subject": path.parents[2].name,
            "session": path.parents[1].name, "class_names": meta_names(class_names("3dc"))}
    n = len(emg)
    return Recording(emg, 1000.0, {"label": np.full((n, 1), cls), "repetition": np.full((n, 1), rep)}, [], path, meta)


def _read_myo_readings(path: Path) -> Recording:
    table = _table(path, ",", 9)
    subject, _, session = path.parent.name.partition("-")
    meta = {"dataset": "myo-readings", "device": "Myo armband", "subject": subject, "session": session,
            "gesture": match_int(_MYO_READINGS_NAME.pattern, path.name),
            "class_names": meta_names(class_names("myo-readings"))}
    return Recording(table[:, :8], 200.0, {"label": table[:, 8:]}, [], path, meta)


def _read_facial(path: Path) -> Recording:
    header = _first_line(path).split(",")
    table = _table(path, ",", len(header), skiprows=1, dtype=np.float64, missing="NULL")
    step = float(np.median(np.diff(table[:, 0])))
    if not step > 0:
        raise RecordingError(f"{path}: expected increasing times in column {header[0]!r}")
    meta = {"dataset": "facial", "units": {"emg": "raw"}, "missing": int(np.isnan(table[:, 1:]).sum())}
    return Recording(table[:, 1:], round(1.0 / step, 6), {}, header[1:], path, meta)


def _read_finger_angles(path: Path) -> Recording:
    number = match_int(r"(?:acq-|Hand_angles_record_)(\d+)", f"{path.parent.name}/{path.name}")
    if number is None:
        raise RecordingError(f"{path}: expected acq-<n>/emg-0.csv or Hand_angles_record_<n>.csv")
    root = path.parent if path.name.startswith("Hand_angles") else path.parent.parent
    emg_file, angles_file = root / f"acq-{number}" / "emg-0.csv", root / f"Hand_angles_record_{number}.csv"
    emg = _table(existing(emg_file), ";", 2, skiprows=1, dtype=np.float64)
    angles = _table(existing(angles_file), ",", 4, skiprows=1, dtype=np.float64)
    t, t_ang = emg[:, 0], angles[:, 0]
    if np.any(np.diff(t) <= 0) or np.any(np.diff(t_ang) <= 0):
        raise RecordingError(f"{emg_file} / {angles_file}: expected strictly increasing timestamps")
    rate = 1.0 / float(np.median(np.diff(t)))
    grid = t[0] + np.arange(int((t[-1] - t[0]) * rate) + 1) / rate
    uniform = np.interp(grid, t, emg[:, 1])
    resampled = np.column_stack([np.interp(grid, t_ang, angles[:, k], left=np.nan, right=np.nan) for k in (1, 2, 3)])
    meta = {"dataset": "finger-angles", "t0": float(t[0]), "resampled": True,
            "stream_names": {"angles": ["mcp", "pip", "dip"]}, "units": {"angles": "deg", "emg": "ADC counts"}}
    return Recording(uniform[:, None], rate, {"angles": resampled}, ["emg"], emg_file, meta)


def read_csv(path: Path, rate: float | None = None) -> Recording:
    if rate is None:
        raise RecordingError(f"{path}: not one of the known datasets, so read as generic CSV, which has no "
                             f"sample rate of its own; pass rate= (Hz)")
    first = _first_line(path)
    delimiter = next((d for d in (",", ";", "\t") if d in first), None)
    tokens = [s.strip() for s in first.split(delimiter)]
    header = not all(_is_number(s) for s in tokens)
    table = _table(path, delimiter, len(tokens), skiprows=int(header), whole_lines=tokens[0] == "sample")
    return Recording(table, rate, {}, tokens if header else [], path, {"dataset": "csv"})


def _table(path: Path, delimiter: str | None, columns: int, skiprows: int = 0,
           dtype: type = np.float32, missing: str | None = None, whole_lines: bool = False) -> np.ndarray:
    """A numeric text table with exactly ``columns`` columns, or a RecordingError saying what was found.

    ``missing``: a token that marks a missing value, read as NaN. ``whole_lines``: only lines that
    end with a newline count (a writer that always ends its rows so was cut short in the last one).
    """
    try:
        with open(path, encoding="utf-8-sig") as f:
            lines = (line for line in f if line.endswith("\n")) if whole_lines else f
            lines = (line.replace(missing, "nan") for line in lines) if missing else lines
            table = np.loadtxt(lines, delimiter=delimiter, skiprows=skiprows, dtype=dtype, ndmin=2)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: expected a numeric table of {columns} columns "
                             f"separated by {delimiter or 'blanks'!r}: {exc}") from exc
    if table.shape[1] != columns:
        raise RecordingError(f"{path}: expected {columns} columns, found {table.shape[1]}")
    return table


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        return f.readline().strip()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


TEXT_READERS: dict[str, Callable[[Path], Recording]] = {
    "libemg": _read_libemg, "3dc": _read_3dc, "myo-readings": _read_myo_readings, "facial": _read_facial,
    "finger-angles": _read_finger_angles,
}
