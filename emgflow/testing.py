"""Run nodes in-process, without sockets: the tool for offline-equals-online tests."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .message import Msg
from .node import Node


def chunk(data: np.ndarray, sizes: Sequence[int] | np.random.Generator | None = None, *,
          rate: float = 0.0, max_size: int = 64, start: int = 0, meta: dict | None = None) -> list[Msg]:
    """Cut ``data`` along axis 0 into messages with consecutive ``start`` indices.

    ``sizes``: explicit chunk sizes, or a numpy Generator for random sizes in [1, max_size].
    """
    msgs, i, k = [], 0, 0
    n = len(data)
    while i < n:
        if sizes is None:
            size = max_size
        elif isinstance(sizes, np.random.Generator):
            size = int(sizes.integers(1, max_size + 1))
        else:
            size = int(sizes[k % len(sizes)])
        size = min(size, n - i)
        msgs.append(Msg(data=data[i:i + size], rate=rate, start=start + i, meta=dict(meta or {})))
        i += size
        k += 1
    return msgs


def run_node(node: Node, inputs: Iterable[Msg] | Iterable[tuple[str, Msg]] | None = None,
             *, finish: bool = True) -> dict[str, list[Msg]]:
    """Feed messages to ``node`` (plain Msgs go to its single input; ``(port, Msg)`` pairs
    to the named port) and collect everything it publishes, per output port.

    For a source, drains ``generate()``. Calls setup/finish/teardown like the runtime does.
    """
    out: dict[str, list[Msg]] = {name: [] for name in node.outputs}

    def collect(result: dict[str, Msg]) -> None:
        for port, msg in result.items():
            out[port].append(msg)

    node.setup()
    try:
        if not node.inputs:
            for result in node.generate():
                collect(node.normalize(result))
        else:
            default_port = next(iter(node.inputs))
            for item in inputs or ():
                port, msg = item if isinstance(item, tuple) else (default_port, item)
                collect(node.handle(port, msg))
        if finish:
            collect(node.normalize(node.finish()))
    finally:
        node.teardown()
    return out


def concat(msgs: Sequence[Msg]) -> np.ndarray:
    """Stack message payloads along axis 0 (checking that no rows were skipped or repeated)."""
    for a, b in zip(msgs, msgs[1:]):
        if b.start != a.end:
            raise AssertionError(f"stream not contiguous: message at {a.start} ends at {a.end}, next starts {b.start}")
    return np.concatenate([m.data for m in msgs], axis=0) if msgs else np.empty((0,))
