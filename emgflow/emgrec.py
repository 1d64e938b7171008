"""The ``.emgrec`` file: emgflow's append-only recording format, and files appended to safely.

Why a format of our own: a recorder must never need twice the space, never hold the take in memory,
and never leave a file its reader refuses, whatever stops it (SIGKILL, a crash, a full disk). An
.npz (a zip) cannot grow without rewriting, and an HDF5 file can be left unreadable by a writer
killed while updating its internal tree. Here the file only ever grows by whole, self-checking
blocks, so everything before the last write stays as it was:

    b"EMGREC\\x00\\x01", then blocks: <u32 header bytes> <u32 payload bytes> <u32 CRC-32 of both>,
    a msgpack header, the payload

    {"t": "stream", "name", "rate", "dtype", "width", "names", "meta"}   before a stream's first rows
    (a writer that opens the file again may declare a stream again, with the same dtype and width)
    {"t": "rows", "name", "start"}   payload: that stream's rows, C order; start = stream index of the first

``read`` keeps every whole block and stops at the first one cut short or damaged (the tail of a
write that a kill or a full disk interrupted), reporting how many bytes it left. A jump between
one block's end and the next block's ``start`` is a gap in the stream, kept as found.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import msgpack
import numpy as np

MAGIC = b"EMGREC\x00\x01"
_SIZES = struct.Struct("<III")
_MAX_HEADER = 1 << 20


class AppendFile:
    """A file that grows only by whole writes: a write that fails (a full disk) is cut back off, so
    the file always ends where the last successful write ended, and is then closed for good."""

    def __init__(self, path: str | Path, first: bytes = b"") -> None:
        self.path = str(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.size = 0
        self.write(first)

    def write(self, data: bytes) -> None:
        """Append ``data`` and sync it to disk; on any OSError cut the file back and raise."""
        if self.fd < 0:
            raise OSError(f"{self.path}: closed after an earlier write failed")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            os.fdatasync(self.fd)
        except OSError as exc:
            os.ftruncate(self.fd, self.size)
            self.close()
            raise OSError(exc.errno, f"{self.path}: {exc.strerror} while writing {len(data)} bytes; "
                                     f"the file keeps its first {self.size} bytes, every earlier write") from None
        self.size += len(data)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass
class _Pending:
    """Rows received since the last flush, as runs of consecutive stream indices."""

    runs: list[tuple[int, list[np.ndarray]]] = field(default_factory=list)
    end: int | None = None


class Writer:
    """Append streams to an .emgrec file; memory holds only the rows since the last ``flush``."""

    def __init__(self, path: str | Path) -> None:
        self.file = AppendFile(path, MAGIC)
        self.blocks: list[bytes] = []
        self.pending: dict[str, _Pending] = {}

    def declare(self, name: str, rate: float, dtype: np.dtype, width: int, names: list[str] | None,
                meta: dict[str, Any]) -> None:
        """A stream's description; written before its first rows."""
        self.blocks.append(_block({"t": "stream", "name": name, "rate": rate, "dtype": np.dtype(dtype).str,
                                   "width": width, "names": names, "meta": meta}, b""))
        self.pending[name] = _Pending()

    def append(self, name: str, start: int, rows: np.ndarray) -> None:
        """Rows of a declared stream (copied: the payload may view a reused buffer)."""
        pending = self.pending[name]
        if pending.end != start or not pending.runs:
            pending.runs.append((start, []))
        pending.runs[-1][1].append(np.array(rows))
        pending.end = start + len(rows)

    def flush(self) -> None:
        """Write everything pending as whole blocks, in one append."""
        for name, pending in self.pending.items():
            for start, parts in pending.runs:
                rows = np.ascontiguousarray(np.concatenate(parts))
                self.blocks.append(_block({"t": "rows", "name": name, "start": start}, rows.tobytes()))
            pending.runs = []
        if self.blocks:
            data, self.blocks = b"".join(self.blocks), []
            self.file.write(data)

    def close(self) -> None:
        self.file.close()


def _block(header: dict[str, Any], payload: bytes) -> bytes:
    head = msgpack.packb(header, use_bin_type=True)
    return _SIZES.pack(len(head), len(payload), zlib.crc32(payload, zlib.crc32(head))) + head + payload


@dataclass
class Stream:
    """One stream read back: its rows in file order, where they begin, and the gaps between blocks."""

    rate: float
    names: list[str] | None
    meta: dict[str, Any]
    start: int
    rows: np.ndarray
    gaps: list[tuple[int, int]]
    """(row, jump): before row ``row`` the stream index jumped by ``jump`` (> 0 samples lost)."""


class Block(NamedTuple):
    """One whole block read back: its header, its payload and the file bytes it spans."""

    header: dict[str, Any]
    payload: bytes
    offset: int
    end: int


def blocks(path: str | Path) -> Iterator[Block]:
    """Each whole block of the file in order, reading one at a time (memory holds one block, whatever
    the file's length); stops at the first block cut short or damaged. Raises ValueError if the file
    is not an .emgrec file, or if a whole block (a good checksum: a recorder wrote it) is malformed."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"does not begin with the .emgrec signature {MAGIC!r}")
        pos, size = len(MAGIC), os.fstat(f.fileno()).st_size
        while len(sizes := f.read(_SIZES.size)) == _SIZES.size:
            head_size, payload_size, crc = _SIZES.unpack(sizes)
            end = pos + _SIZES.size + head_size + payload_size
            if head_size > _MAX_HEADER or end > size:
                return
            body = f.read(head_size + payload_size)
            if zlib.crc32(body) != crc:
                return
            try:
                header = msgpack.unpackb(body[:head_size], raw=False)
                if header["t"] not in ("stream", "rows") or not isinstance(header["name"], str):
                    raise ValueError(f"unknown block {header['t']!r}")
            except Exception as exc:  # msgpack and dict access raise many unrelated types
                raise ValueError(f"bad block at byte {pos}: {type(exc).__name__}: {exc}") from None
            yield Block(header, body[head_size:], pos, end)
            pos = end


def read(path: str | Path) -> tuple[dict[str, Stream], int]:
    """Every stream in the file and the number of bytes left unread at the end (a cut or damaged
    tail). Raises ValueError if the file is not an .emgrec file at all."""
    decls: dict[str, dict[str, Any]] = {}
    parts: dict[str, list[tuple[int, np.ndarray]]] = {}
    end = len(MAGIC)
    for block in blocks(path):
        try:
            name = block.header["name"]
            if block.header["t"] == "stream":
                declare(decls, block.header)
                parts.setdefault(name, [])
            else:
                rows = np.frombuffer(block.payload, stream_dtype(decls[name]["dtype"])).reshape(-1, decls[name]["width"])
                parts[name].append((int(block.header["start"]), rows))
        except Exception as exc:  # numpy and dict access raise many unrelated types
            raise ValueError(f"bad block at byte {block.offset}: {type(exc).__name__}: {exc}") from None
        end = block.end
    streams = {name: _stream(decls[name], found) for name, found in parts.items() if found}
    return streams, os.path.getsize(path) - end


def declare(decls: dict[str, dict[str, Any]], header: dict[str, Any]) -> None:
    """Note a stream's declaration in ``decls``; again for a known stream (a restarted recorder) it
    goes on, with the same dtype and width or the file is bad (ValueError)."""
    known = decls.setdefault(header["name"], header)
    if (known["dtype"], known["width"]) != (header["dtype"], header["width"]):
        raise ValueError(f"stream {header['name']!r} declared again as {header['width']} x {header['dtype']}")


def stream_dtype(text: str) -> np.dtype:
    """A declared dtype; an object dtype (it would need pickles) makes the file bad."""
    dtype = np.dtype(text)
    if dtype.hasobject:
        raise ValueError(f"object dtype {text!r}")
    return dtype


def _stream(decl: dict[str, Any], blocks: list[tuple[int, np.ndarray]]) -> Stream:
    gaps, row, expected = [], 0, blocks[0][0]
    for start, rows in blocks:
        if start != expected:
            gaps.append((row, start - expected))
        row += len(rows)
        expected = start + len(rows)
    return Stream(float(decl["rate"]), decl.get("names"), decl.get("meta") or {}, blocks[0][0],
                  np.concatenate([rows for _, rows in blocks]), gaps)
