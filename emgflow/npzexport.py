"""An .emgrec recording exported as the npz recorder's .npz, streamed: memory holds one block.

Why an export: a zip cannot grow without rewriting its directory, so the npz recorder records to an
append-only .emgrec (every flushed row survives any crash) and writes the .npz once, when it stops.
Each array is one stored (uncompressed) zip member written block by block after its npy header,
whose row count the first pass over the file found; np.load reads the result as np.savez's.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import emgrec


@dataclass
class _Layout:
    """What one pass over the file learns of a stream: all the npz needs besides its rows."""

    decl: dict[str, Any]
    start: int | None = None
    rows: int = 0
    end: int = 0
    gaps: list[list[int]] = field(default_factory=list)  # [row, samples jumped] before that row


def export_npz(source: str | Path, path: str | Path) -> None:
    """Write the recording in ``source`` (.emgrec) to ``path`` (.npz) in the npz recorder's layout;
    nothing when it holds no emg rows. Written to ``<path>.tmp.npz``, synced and renamed, so ``path``
    is never a partial file; a failed write (a full disk) removes the temp file and raises."""
    layouts = _scan(source)
    emg = layouts.get("emg")
    if emg is None or emg.start is None:
        return
    temp = f"{path}.tmp.npz"
    try:
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for name, layout in layouts.items():
                if layout.start is not None:
                    _write_rows(z, source, name, layout)
            for name, value in _small_arrays(layouts).items():
                with z.open(f"{name}.npy", "w") as member:
                    np.lib.format.write_array(member, value, allow_pickle=False)
        with open(temp, "rb") as f:
            os.fsync(f.fileno())  # on disk before the rename, as the recorder then removes the .emgrec
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise OSError(exc.errno, f"{path}: {exc.strerror} while exporting {source} (kept whole; the temp file "
                                 f"is removed)") from None
    os.replace(temp, path)


def _scan(source: str | Path) -> dict[str, _Layout]:
    """Each stream's declaration, row count, first index and gaps, reading headers only."""
    layouts: dict[str, _Layout] = {}
    decls: dict[str, dict[str, Any]] = {}
    for block in emgrec.blocks(source):
        name = block.header["name"]
        if block.header["t"] == "stream":
            emgrec.declare(decls, block.header)
            layouts.setdefault(name, _Layout(decls[name]))
            continue
        layout, start = layouts[name], int(block.header["start"])
        if layout.start is None:
            layout.start = layout.end = start
        elif start != layout.end:
            layout.gaps.append([layout.rows, start - layout.end])
        n, extra = divmod(len(block.payload), emgrec.stream_dtype(layout.decl["dtype"]).itemsize * layout.decl["width"])
        if extra:
            raise ValueError(f"bad block at byte {block.offset}: {len(block.payload)} bytes are not whole rows")
        layout.rows += n
        layout.end = start + n
    return layouts


def _write_rows(z: zipfile.ZipFile, source: str | Path, name: str, layout: _Layout) -> None:
    """The stream's rows as member ``<name>.npy``: the npy header, then each block's payload as read."""
    header = {"descr": np.lib.format.dtype_to_descr(emgrec.stream_dtype(layout.decl["dtype"])),
              "fortran_order": False, "shape": (layout.rows, int(layout.decl["width"]))}
    with z.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        for block in emgrec.blocks(source):
            if block.header["t"] == "rows" and block.header["name"] == name:
                member.write(block.payload)


def _small_arrays(layouts: dict[str, _Layout]) -> dict[str, np.ndarray]:
    """rate, start, channel_names and meta of emg; ``<name>_start`` and ``<name>_rate`` of the others."""
    emg = layouts["emg"]
    meta = dict(emg.decl.get("meta") or {})
    stream_names = {k: s.decl["names"] for k, s in layouts.items() if k != "emg" and s.decl.get("names")}
    if stream_names:
        meta["stream_names"] = stream_names
    gaps = {k: s.gaps for k, s in layouts.items() if s.gaps}
    if gaps:  # a discontinuity is in the file, never a silent shift
        meta["gaps"] = gaps
    arrays = {"rate": np.float64(emg.decl["rate"]), "start": np.int64(emg.start),
              "meta": np.array(json.dumps(meta, default=str))}
    if emg.decl.get("names"):
        arrays["channel_names"] = np.array(emg.decl["names"])
    for key, layout in layouts.items():
        if key != "emg" and layout.start is not None:
            arrays.update({f"{key}_start": np.int64(layout.start), f"{key}_rate": np.float64(layout.decl["rate"])})
    return {k: np.asarray(v) for k, v in arrays.items()}
