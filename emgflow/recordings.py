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
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import emgrec
from .recording import (GRIP_FORCE_MUSCLES, Recording, RecordingError, check_columns, class_names,
                        existing, match_int, meta_names)
from .textformats import TEXT_READERS, read_csv, text_format

_COTEALLARD_NAME = re.compile(r"classe_(\d+)\.dat")


def load(path: str | Path, format: str = "auto", *, rate: float | None = None) -> Recording:
    """Read one recording. ``format``: ``auto`` or a name from the module docstring.

    ``rate`` (Hz) is only for generic CSV, which carries no rate of its own.
    """
    path = existing(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in _READERS:
        raise RecordingError(f"unknown recording format {format!r}; known: auto, {', '.join(FORMATS)}")
    if fmt == "csv":
        return read_csv(path, rate)
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
        return text_format(path)
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
    exercise = match_int(r"_E(\d+)", path.name)  # DB5 files store a wrong `exercise`: trust the name
    meta: dict[str, Any] = {"dataset": "ninapro-db5" if db5 else "ninapro-db1", "exercise": exercise,
                            "subject": int(m["subject"].item()) if "subject" in m else None,
                            "device": str(m["sensor"].item()) if "sensor" in m else "Otto Bock 13E200 (RMS)"}
    if exercise == 1:
        meta["class_names"] = meta_names(class_names("ninapro"))
    # DB1 has no `frequency` variable; its description gives 100 Hz.
    rate = float(m["frequency"].item()) if db5 else 100.0
    return Recording(m["emg"], rate, streams, [], path, meta)


def _read_grip_force(path: Path) -> Recording:
    m = _loadmat(path)
    _require(m, ("emg", "Force"), path, "grip-force")
    check_columns(m["emg"], 8, path, "emg")
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
    index = match_int(_COTEALLARD_NAME.pattern, path.name)
    if index is None:
        raise RecordingError(f"{path}: expected a Côté-Allard file named classe_<i>.dat (the gesture is i % 7)")
    raw = np.fromfile(path, dtype="<i2")
    if raw.size % 8:
        raise RecordingError(f"{path}: expected int16 samples of 8 interleaved channels, "
                             f"found {raw.size} values (not a multiple of 8)")
    emg = raw.reshape(-1, 8)
    meta = {"dataset": "coteallard", "device": "Myo armband", "subject": path.parent.parent.name,
            "session": path.parent.name, "cycle": index // 7,
            "class_names": meta_names(class_names("coteallard"))}
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


_READERS: dict[str, Callable[[Path], Recording]] = {
    "ninapro": _read_ninapro, "coteallard": _read_coteallard, "otb": _read_otb, "grip-force": _read_grip_force,
    "npz": _read_npz, "emgrec": _read_emgrec, "csv": read_csv, **TEXT_READERS,
}
FORMATS: tuple[str, ...] = tuple(_READERS)
"""Every explicit ``format=`` name ``load()`` accepts (besides ``auto``)."""
