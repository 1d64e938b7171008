"""Readers for the EMG recordings emgflow replays and trains on: one ``load()`` for every format.

Every reader returns a :class:`Recording`: ``emg`` (N, C) float32 at ``rate`` Hz, plus extra
per-sample ``streams`` aligned with ``emg`` row by row, each (N, k): ``label`` and
``repetition`` are int32, every other stream (``glove``, ``force``, ``acc``, ``angles``) float32.

Formats (the ``format=`` name, then what it reads; ``auto`` picks one from extension and content):

- ``ninapro``: Ninapro DB1 / DB5 ``.mat``. ``label`` = ``restimulus`` and ``repetition`` =
  ``rerepetition`` (the re-aligned versions), ``glove`` (22), ``acc`` (3, DB5 only). DB5 stores
  its rate (200 Hz) in ``frequency``; DB1 stores none and is 100 Hz.
- ``coteallard``: Côté-Allard ``classe_<i>.dat``, headerless int16, 8 channels, 200 Hz.
  ``label`` = ``i % 7`` for every row; ``meta["cycle"]`` = ``i // 7``.
- ``myo-readings``: ``<session>/<g>.txt``, lines ``e1..e8,label``, 200 Hz (nominal).
- ``libemg``: LibEMG one-subject ``R_<rep>_C_<class>.csv`` (class and repetition from the
  trial's ``metadata.json``, else from the file name), or the unlabelled ``stream/raw_emg.csv``.
  8 channels, 200 Hz.
- ``3dc``: ``3dc_EMG_gesture_<rep>_<class>.txt``, 10 channels, 1000 Hz.
- ``otb``: OT Bioelettronica ``.mat`` export (``Data``, ``Description``, ``SamplingFrequency``):
  the ``[uV]`` columns are ``emg`` and the ``%MVC`` column is ``force``.
- ``grip-force``: ``.mat`` with ``emg`` (N, 8) Myo and ``Force`` (raw FSR ADC counts), 200 Hz.
- ``facial``: CSV with a UTF-8 BOM and header ``Time,EMG_...``; the rate comes from ``Time``
  (2000 Hz for the shared samples). Values recorded as ``NULL`` (dropouts, in 8 to 300 rows of
  three of the four shared files) are read as NaN and counted in ``meta["missing"]``.
- ``finger-angles``: ``acq-<n>/emg-0.csv`` (``timestamp;value``) with its partner
  ``Hand_angles_record_<n>.csv`` (either file may be given). The EMG timestamps are not uniform
  (serial packets are stamped on arrival), so the EMG is linearly interpolated (``np.interp``)
  onto a uniform grid that starts at its first timestamp and steps at its median interval
  (rate = 1 / median step, about 2.6 kHz). The ~20 Hz angles (MCP, PIP, DIP, degrees) are
  interpolated onto the same grid inside their own time span and are NaN outside it.
  ``meta["t0"]`` is the epoch time of row 0.
- ``csv``: any other numeric text table (``,`` ``;`` tab or blank separated, optional header
  giving channel names). It has no rate of its own: pass ``rate=``. In a file of emgflow's csv
  recorder (first column ``sample``), which ends every row with a newline, a last line without
  one is a write cut short by a kill and is left out.
- ``emgrec``: the append-only ``.emgrec`` file of emgflow's ``emgrec`` recorder (emgflow.emgrec):
  streams as in ``npz`` below, aligned the same way. A tail cut by a kill or a full disk is left
  out (``meta["torn_bytes"]``); a jump in a stream's sample index is kept as found, listed in
  ``meta["gaps"]`` as ``{stream: [[row, samples jumped], ...]}``.
- ``npz``: the layout emgflow's npz recorder writes:

  ==================  ==========================================================
  ``emg``             (N, C) samples
  ``rate``            scalar, Hz
  ``channel_names``   optional (C,) str array
  ``meta``            optional 0-d str array holding a JSON object
  ``start``           optional integer scalar: stream sample index of ``emg`` row 0
  any other key       a stream with N rows ((N,) is read as (N, 1))
  ``<key>_start``     optional integer scalar: sample index of that stream's row 0
  ``<key>_rate``      optional scalar, Hz, when it may differ from ``rate``
  ==================  ==========================================================

  With ``start``, streams with a ``<key>_start`` are aligned with ``emg`` by sample index and
  every stream is cut to the span all of them cover (a killed recorder may hold more rows of one
  stream than of another); ``meta["start"]`` is then the sample index of row 0. A stream without
  ``<key>_start`` must have N rows. A stream at another rate than ``emg`` is left out, its rate
  named in ``meta["other_rate_streams"]``.

A missing file or an unexpected layout raises :class:`RecordingError`, saying what was expected
and what was found.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import emgrec
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

_LIBEMG_NAME = re.compile(r"R_(\d+)_C_(\d+)\.csv")
_3DC_NAME = re.compile(r"3dc_EMG_gesture_(\d+)_(\d+)\.txt")
_COTEALLARD_NAME = re.compile(r"classe_(\d+)\.dat")
_MYO_READINGS_NAME = re.compile(r"(\d+)\.txt")


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


def load(path: str | Path, format: str = "auto", *, rate: float | None = None) -> Recording:
    """Read one recording. ``format``: ``auto`` or a name from the module docstring.

    ``rate`` (Hz) is only for generic CSV, which carries no rate of its own.
    """
    path = _existing(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in _READERS:
        raise RecordingError(f"unknown recording format {format!r}; known: auto, {', '.join(FORMATS)}")
    if fmt == "csv":
        return _read_csv(path, rate)
    if rate is not None:
        raise RecordingError(f"{path}: rate= applies only to generic CSV; {fmt} recordings carry their own rate")
    return _READERS[fmt](path)


def detect_format(path: str | Path) -> str:
    """The format name ``load(path)`` would use, from the extension and then the content."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        return _mat_format(path)
    if suffix == ".dat":
        return "coteallard"
    if suffix == ".npz":
        return "npz"
    if suffix == ".emgrec":
        return "emgrec"
    if suffix in (".csv", ".txt"):
        return _text_format(path)
    raise RecordingError(f"{path}: cannot tell the recording format from the extension {suffix!r} "
                         f"(expected .mat, .dat, .npz, .emgrec, .csv or .txt); pass format=")


# --- MATLAB files --------------------------------------------------------------------------------

def _read_ninapro(path: Path) -> Recording:
    m = _loadmat(path)
    _require(m, ("emg", "restimulus", "rerepetition", "glove"), path, "Ninapro")
    db5 = "frequency" in m
    streams = {"label": m["restimulus"], "repetition": m["rerepetition"], "glove": m["glove"]}
    if "acc" in m:
        streams["acc"] = m["acc"]
    exercise = _match_int(r"_E(\d+)", path.name)  # DB5 files store a wrong `exercise`: trust the name
    meta: dict[str, Any] = {"dataset": "ninapro-db5" if db5 else "ninapro-db1", "exercise": exercise,
                            "subject": int(m["subject"].item()) if "subject" in m else None,
                            "device": str(m["sensor"].item()) if "sensor" in m else "Otto Bock 13E200 (RMS)"}
    if exercise == 1:
        meta["class_names"] = _meta_names(class_names("ninapro"))
    # DB1 has no `frequency` variable; its description gives 100 Hz.
    rate = float(m["frequency"].item()) if db5 else 100.0
    return Recording(m["emg"], rate, streams, [], path, meta)


def _read_grip_force(path: Path) -> Recording:
    m = _loadmat(path)
    _require(m, ("emg", "Force"), path, "grip-force")
    _check_columns(m["emg"], 8, path, "emg")
    meta = {"dataset": "grip-force", "device": "Myo armband", "units": {"force": "FSR ADC counts"}}
    return Recording(m["emg"], 200.0, {"force": m["Force"]}, GRIP_FORCE_MUSCLES, path, meta)


def _read_otb(path: Path) -> Recording:
    m = _loadmat(path)
    _require(m, ("Data", "Description", "SamplingFrequency"), path, "OT Bioelettronica")
    data = m["Data"][0, 0] if m["Data"].dtype == object else m["Data"]
    names = [str(np.ravel(d)[0]) for d in np.ravel(m["Description"])]
    if data.ndim != 2 or data.shape[1] != len(names):
        raise RecordingError(f"{path}: expected Data with one column per Description entry ({len(names)}), "
                             f"found shape {data.shape}")
    emg_cols = [i for i, d in enumerate(names) if d.endswith("[uV]")]
    force_cols = [i for i, d in enumerate(names) if "MVC" in d]
    if not emg_cols or len(force_cols) != 1:
        raise RecordingError(f"{path}: expected EMG columns described '...[uV]' and one force column "
                             f"described '...%(MVC)]', found {len(emg_cols)} and {len(force_cols)}")
    meta = {"dataset": "otb", "device": "OT Bioelettronica", "units": {"emg": "uV", "force": "%MVC"}}
    return Recording(data[:, emg_cols], float(m["SamplingFrequency"].item()),
                     {"force": data[:, force_cols]}, [f"ch{i}" for i in range(len(emg_cols))], path, meta)


def _mat_format(path: Path) -> str:
    import scipy.io

    try:
        names = {name for name, _, _ in scipy.io.whosmat(path)}
    except TypeError:  # whosmat cannot size MATLAB opaque objects (the grip-force files hold one)
        names = set(_loadmat(path))
    except Exception as exc:  # scipy raises IndexError, ValueError, MatReadError... on a bad file
        raise RecordingError(f"{path}: not a readable MATLAB v5 file ({type(exc).__name__}: {exc})") from exc
    if {"emg", "restimulus", "rerepetition"} <= names:
        return "ninapro"
    if {"emg", "Force"} <= names:
        return "grip-force"
    if {"Data", "Description", "SamplingFrequency"} <= names:
        return "otb"
    _loadmat(path)  # a truncated file lists only its first variables: say it is damaged, not foreign
    raise RecordingError(f"{path}: unrecognised .mat layout; expected Ninapro (emg, restimulus, rerepetition), "
                         f"grip-force (emg, Force) or OT Bioelettronica (Data, Description, SamplingFrequency) "
                         f"variables, found: {', '.join(sorted(names)) or 'none'}")


def _loadmat(path: Path) -> dict[str, Any]:
    import scipy.io

    try:
        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except Exception as exc:  # scipy raises IndexError, ValueError, MatReadError... on a bad file
        raise RecordingError(f"{path}: not a readable MATLAB v5 file, truncated or damaged "
                             f"({type(exc).__name__}: {exc})") from exc


def _require(m: dict[str, Any], names: tuple[str, ...], path: Path, what: str) -> None:
    missing = [n for n in names if n not in m]
    if missing:
        raise RecordingError(f"{path}: expected {what} variables {', '.join(names)}; missing {', '.join(missing)} "
                             f"(found: {', '.join(sorted(m)) or 'none'})")


# --- binary and NPZ --------------------------------------------------------------------------------

def _read_coteallard(path: Path) -> Recording:
    index = _match_int(_COTEALLARD_NAME.pattern, path.name)
    if index is None:
        raise RecordingError(f"{path}: expected a Côté-Allard file named classe_<i>.dat (the gesture is i % 7)")
    raw = np.fromfile(path, dtype="<i2")
    if raw.size % 8:
        raise RecordingError(f"{path}: expected int16 samples of 8 interleaved channels, "
                             f"found {raw.size} values (not a multiple of 8)")
    emg = raw.reshape(-1, 8)
    meta = {"dataset": "coteallard", "device": "Myo armband", "subject": path.parent.parent.name,
            "session": path.parent.name, "cycle": index // 7,
            "class_names": _meta_names(class_names("coteallard"))}
    return Recording(emg, 200.0, {"label": np.full((len(emg), 1), index % 7)}, [], path, meta)


def _read_npz(path: Path) -> Recording:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
        raise RecordingError(f"{path}: not a readable .npz archive, empty, truncated or damaged "
                             f"({type(exc).__name__}: {exc or 'no data'})") from exc
    missing = [k for k in ("emg", "rate") if k not in arrays]
    if missing:
        raise RecordingError(f"{path}: expected npz arrays emg (N, C) and rate (scalar); missing {', '.join(missing)} "
                             f"(found: {', '.join(sorted(arrays)) or 'none'})")
    emg, rate = arrays.pop("emg"), arrays.pop("rate")
    if rate.size != 1:
        raise RecordingError(f"{path}: expected a scalar 'rate', found shape {rate.shape}")
    names = [str(s) for s in arrays.pop("channel_names", [])]
    try:
        meta = json.loads(str(arrays.pop("meta", "{}")))
    except ValueError as exc:
        raise RecordingError(f"{path}: expected 'meta' to hold a JSON object: {exc}") from exc
    if not isinstance(meta, dict):
        raise RecordingError(f"{path}: expected 'meta' to hold a JSON object, found {type(meta).__name__}")
    meta.setdefault("dataset", "npz")
    if "start" in arrays:
        emg, arrays = _align_by_index(path, emg, float(rate), arrays, meta)
    return Recording(emg, float(rate), arrays, names, path, meta)


def _read_emgrec(path: Path) -> Recording:
    try:
        streams, torn = emgrec.read(path)
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{path}: not a readable .emgrec file ({exc})") from exc
    if "emg" not in streams:
        raise RecordingError(f"{path}: the .emgrec file holds no emg rows yet (streams: {', '.join(streams) or 'none'})")
    emg = streams.pop("emg")
    meta = {"dataset": "emgrec", **emg.meta, "torn_bytes": torn}
    stream_names = {name: s.names for name, s in streams.items() if s.names}
    if stream_names:
        meta["stream_names"] = stream_names
    gaps = {name: [list(g) for g in s.gaps] for name, s in {"emg": emg, **streams}.items() if s.gaps}
    if gaps:
        meta["gaps"] = gaps
    arrays: dict[str, np.ndarray] = {"start": np.int64(emg.start)}
    for name, s in streams.items():
        arrays.update({name: s.rows, f"{name}_start": np.int64(s.start), f"{name}_rate": np.float64(s.rate)})
    rows, arrays = _align_by_index(path, emg.rows, emg.rate, arrays, meta)
    return Recording(rows, emg.rate, arrays, emg.names or [], path, meta)


def _align_by_index(path: Path, emg: np.ndarray, rate: float, arrays: dict[str, np.ndarray],
               meta: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Streams that say where they begin: those at ``rate``, cut to the sample span all of them cover."""
    partners = {k: arrays.pop(k) for k in list(arrays)
                if k == "start" or (k.endswith(("_start", "_rate")) and k.rsplit("_", 1)[0] in arrays)}
    for key, value in partners.items():
        is_rate = key.endswith("_rate")
        if value.ndim != 0 or value.dtype.kind not in ("iuf" if is_rate else "iu"):
            raise RecordingError(f"{path}: expected {key!r} as a scalar {'rate in Hz' if is_rate else 'sample index'}, "
                                 f"found {value.dtype} of shape {value.shape}")
    other = {name: float(partners[f"{name}_rate"]) for name in arrays
             if f"{name}_rate" in partners and float(partners[f"{name}_rate"]) != rate}
    spans = {"emg": emg, **{name: a for name, a in arrays.items() if name not in other}}
    begin = {name: int(partners.get(f"{name}_start", partners["start"])) for name in spans}
    for name, array in spans.items():
        if array.ndim == 0:
            raise RecordingError(f"{path}: expected {name!r} as (N, k) rows, found shape ()")
        if f"{name}_start" not in partners and len(array) != len(emg):
            raise RecordingError(f"{path}: stream {name!r} has {len(array)} rows, emg has {len(emg)} "
                                 f"(a stream of its own length needs '{name}_start')")
    first = max(begin.values())
    stop = min(b + len(spans[name]) for name, b in begin.items())
    if stop <= first:
        raise RecordingError(f"{path}: the streams share no sample index "
                             f"({', '.join(f'{n}: {len(spans[n])} rows from {b}' for n, b in begin.items())})")
    meta["start"] = first
    if other:
        meta["other_rate_streams"] = other
    cut = {name: spans[name][first - b:stop - b] for name, b in begin.items()}
    return cut.pop("emg"), cut


# --- text files ------------------------------------------------------------------------------------

def _text_format(path: Path) -> str:
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
                            "class_names": _meta_names(class_names("libemg"))}
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
            "session": path.parents[1].name, "class_names": _meta_names(class_names("3dc"))}
    n = len(emg)
    return Recording(emg, 1000.0, {"label": np.full((n, 1), cls), "repetition": np.full((n, 1), rep)}, [], path, meta)


def _read_myo_readings(path: Path) -> Recording:
    table = _table(path, ",", 9)
    subject, _, session = path.parent.name.partition("-")
    meta = {"dataset": "myo-readings", "device": "Myo armband", "subject": subject, "session": session,
            "gesture": _match_int(_MYO_READINGS_NAME.pattern, path.name),
            "class_names": _meta_names(class_names("myo-readings"))}
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
    number = _match_int(r"(?:acq-|Hand_angles_record_)(\d+)", f"{path.parent.name}/{path.name}")
    if number is None:
        raise RecordingError(f"{path}: expected acq-<n>/emg-0.csv or Hand_angles_record_<n>.csv")
    root = path.parent if path.name.startswith("Hand_angles") else path.parent.parent
    emg_file, angles_file = root / f"acq-{number}" / "emg-0.csv", root / f"Hand_angles_record_{number}.csv"
    emg = _table(_existing(emg_file), ";", 2, skiprows=1, dtype=np.float64)
    angles = _table(_existing(angles_file), ",", 4, skiprows=1, dtype=np.float64)
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


def _read_csv(path: Path, rate: float | None = None) -> Recording:
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


# --- helpers -------------------------------------------------------------------------------------

def _existing(path: str | Path) -> Path:
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


def _check_columns(array: np.ndarray, columns: int, path: Path, name: str) -> None:
    if array.ndim != 2 or array.shape[1] != columns:
        raise RecordingError(f"{path}: expected {name!r} of shape (N, {columns}), found {array.shape}")


def _match_int(pattern: str, text: str) -> int | None:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else None


def _meta_names(names: dict[int, str]) -> dict[str, str]:
    return {str(k): v for k, v in names.items()}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_READERS: dict[str, Callable[[Path], Recording]] = {
    "ninapro": _read_ninapro, "coteallard": _read_coteallard, "myo-readings": _read_myo_readings,
    "libemg": _read_libemg, "3dc": _read_3dc, "otb": _read_otb, "grip-force": _read_grip_force,
    "facial": _read_facial, "finger-angles": _read_finger_angles,
    "csv": _read_csv, "npz": _read_npz, "emgrec": _read_emgrec,
}
FORMATS: tuple[str, ...] = tuple(_READERS)
"""Every explicit ``format=`` name ``load()`` accepts (besides ``auto``)."""
