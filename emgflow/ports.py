"""Input and output port declarations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Policy = Literal["all", "latest"]
POLICIES: tuple[str, ...] = ("all", "latest")


@dataclass
class In:
    """An input port. Declare as a class attribute; a trailing ``_`` is dropped (``in_`` is port ``in``).

    ``policy``: ``all`` (lossless: bounded queue, the producer waits when it is full) suits data
    paths where windows must not lose samples; ``latest`` (bounded queue that drops the oldest
    message, counted) suits control paths where only the freshest value matters.
    ``queue``: queue bound in messages. ``optional``: the graph may leave it unconnected.
    """

    policy: Policy = "all"
    queue: int = 64
    optional: bool = False
    help: str = ""
    name: str = field(default="", init=False)


@dataclass
class Out:
    """An output port. Declare as a class attribute; a trailing ``_`` is dropped."""

    help: str = ""
    name: str = field(default="", init=False)
