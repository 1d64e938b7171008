"""Which subjects a shared dataset holds, read from the files that exist (never from a list in code).

Each function maps subject id -> that subject's recording files under a dataset folder. A subject
whose files are incomplete (a Côté-Allard session missing ``classe_5.dat``) is refused naming the
file; a folder with no recording of the layout is refused naming the layout it expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from emgflow.data import data_path
from emgflow.recordings import RecordingError

Subjects = dict[Any, list[Path]]
"""Subject id -> its recording files, in recording order."""


def _numbered(folder: Path, pattern: str) -> dict[int, Path]:
    """Files directly in ``folder`` whose name matches ``pattern`` (one group: an integer), by that integer."""
    rx = re.compile(pattern)
    found = {int(m.group(1)): p for p in folder.glob("*") if (m := rx.fullmatch(p.name))}
    return dict(sorted(found.items()))


def _nonempty(found: Subjects, folder: Path, layout: str) -> Subjects:
    if not found:
        raise RecordingError(f"no recordings found in {folder}: expected {layout}")
    return found


def ninapro_db1(folder: str = "ninapro-db1-e1") -> Subjects:
    """Ninapro DB1 exercise 1: ``S<N>_A1_E1.mat``; subject N (an int)."""
    root = data_path(folder)
    return _nonempty({n: [p] for n, p in _numbered(root, r"S(\d+)_A1_E1\.mat").items()}, root, "S<N>_A1_E1.mat")


def ninapro_db5(folder: str = "ninapro-db5-e1") -> Subjects:
    """Ninapro DB5 exercise 1: ``s<N>/S<N>_E1_A1.mat``; a subject folder without its file is refused at load."""
    root = data_path(folder)
    found = {n: [d / f"S{n}_E1_A1.mat"] for n, d in _numbered(root, r"s(\d+)").items() if d.is_dir()}
    return _nonempty(found, root, "s<N>/S<N>_E1_A1.mat")


def coteallard(folder: str = "coteallard-myo-armband/PreTrainingDataset") -> Subjects:
    """Côté-Allard: ``<Subject>/<session>/classe_<i>.dat``; subject ``<Subject>`` holds every session.

    The gesture is ``i % 7`` and the cycle ``i // 7``, so a session must hold ``classe_0`` .. ``classe_<n-1>``
    for whole cycles: a gap would shift every later cycle, and is refused naming the missing file."""
    root = data_path(folder)
    found: Subjects = {}
    for subject in sorted(p for p in root.glob("*") if p.is_dir()):
        files: list[Path] = []
        for session in sorted(p for p in subject.glob("*") if p.is_dir()):
            numbered = _numbered(session, r"classe_(\d+)\.dat")
            if not numbered:
                continue
            count = -(-(max(numbered) + 1) // 7) * 7  # whole cycles of 7 gestures
            missing = [session / f"classe_{i}.dat" for i in range(count) if i not in numbered]
            if missing:
                raise RecordingError(f"{missing[0]}: missing ({len(missing)} file(s) missing in {session}); a session "
                                     f"holds classe_0.dat .. classe_{count - 1}.dat, one per gesture and cycle")
            files += list(numbered.values())
        if files:
            found[subject.name] = files
    return _nonempty(found, root, "<Subject>/<session>/classe_<i>.dat")


def myo_readings(folder: str = "myo-readings-dataset/_readings_right_hand") -> Subjects:
    """myo-readings: ``<person>-<session>/<g>.txt``; one subject id per session folder (``12345-1``),
    so a model of one session can be scored on another."""
    root = data_path(folder)
    found: Subjects = {}
    for session in sorted(p for p in root.glob("*-*") if p.is_dir()):
        numbered = _numbered(session, r"(\d+)\.txt")
        if numbered:
            found[session.name] = list(numbered.values())
    return _nonempty(found, root, "<person>-<session>/<g>.txt")


def libemg(folder: str = "libemg-one-subject-myo") -> Subjects:
    """LibEMG-style: ``[<Subject>/]trial_<n>/R_<rep>_C_<class>.csv``; the subject is the folder holding the
    trials (the shared set: ``libemg-one-subject-myo`` itself), its files in trial order."""
    root = data_path(folder)
    found: Subjects = {}
    for subject in [root, *sorted(p for p in root.glob("*") if p.is_dir())]:
        trials = _numbered(subject, r"trial_(\d+)")
        files = [f for t in trials.values() for f in sorted(t.glob("R_*_C_*.csv"))]
        if files:
            found[subject.name] = files
    return _nonempty(found, root, "[<Subject>/]trial_<n>/R_<rep>_C_<class>.csv")


def grip_force(folder: str = "myo-grip-force") -> Subjects:
    """Myo grip force: ``recording_force_<id>.mat``; subject ``<id>`` (``v8``, ``v11_2``)."""
    root = data_path(folder)
    rx = re.compile(r"recording_force_(.+)\.mat")
    found = {m.group(1): [p] for p in sorted(root.glob("*.mat")) if (m := rx.fullmatch(p.name))}
    return _nonempty(found, root, "recording_force_<id>.mat")

