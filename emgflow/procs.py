"""What the supervisor knows of each node and each OS process of a running graph: the rows of the live
table and the view, apart from the supervisor's logic so a view or a command can read them."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

from .contract import ProcessSpec
from .graph import NodeSpec
from .plan import RestartPolicy
from .remote import RemoteProcess


@dataclass
class NodeProc:
    """What the supervisor knows of one node (the live table's row)."""

    spec: NodeSpec
    process: str
    state: str = "new"            # new | starting | ready | running | done | failed | stopped
    restarts: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)
    error: str = ""

    @property
    def is_source(self) -> bool:
        return not self.spec.inputs


@dataclass
class OsProcess:
    """One OS process hosting one node, or every node of a group."""

    spec: ProcessSpec
    members: list[str]
    policy: RestartPolicy
    proc: subprocess.Popen | RemoteProcess | None = None
    state: str = "new"
    restarts: int = 0
    last_seen: float = 0.0
    restart_at: float | None = None
    released: bool = False        # told it may exit (all its consumers have finished)
    failed_node: str = ""
    spawned_ns: int = 0           # monotonic clock: start-up figures (spawn -> ready)
    ready_ns: int = 0
    stalls: set[str] = field(default_factory=set)  # nodes whose stall was reported
    refused: int = 0              # peers its gate refused (tcp), as its last heartbeat said
    host: str = ""                # graphs with hosts: where it runs (an agent runs it unless it is ours)
