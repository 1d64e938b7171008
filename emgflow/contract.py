"""The runtime contract: what the supervisor hands a node process, in one typed definition.

The supervisor writes a ``ProcessSpec`` (JSON on the command line: no secret goes in it), the runner reads it back; both sides
use these classes, so a field cannot be spelled two ways. A process hosts one node, or every node of a
group; an input whose producer lives in the same process has no endpoint (``local``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .keys import Curve, Plain
from .transport import InputSpec, OutputSpec


@dataclass(frozen=True)
class NodeRuntime:
    """One hosted node: its class, params and ports as the runtime wires them."""

    name: str
    cls: str                                   # "module:Qualname", imported without the registry
    params: dict[str, Any]
    outputs: dict[str, OutputSpec]             # only outputs with a consumer in another process
    inputs: dict[str, InputSpec]               # inputs fed from another process
    local_inputs: dict[str, str] = field(default_factory=dict)  # port -> "node.output" in this process


@dataclass(frozen=True)
class ProcessSpec:
    """One node process: its name on the control channel and the nodes it hosts, producers first."""

    name: str
    nodes: list[NodeRuntime]
    control: str
    supervisor_pid: int
    connect_timeout_s: float = 30.0
    curve: Curve | None = None                 # tcp: the run's keys (the secret stays in a 0600 file)
    plain: Plain | None = None                 # ipc: the run's password file (0600)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ProcessSpec":
        raw = json.loads(text)
        nodes = [NodeRuntime(**{**n, "outputs": {p: OutputSpec(**_keys(o)) for p, o in n["outputs"].items()},
                                "inputs": {p: InputSpec(**_keys(i)) for p, i in n["inputs"].items()}})
                 for n in raw.pop("nodes")]
        return cls(nodes=nodes, **_keys(raw))


def _keys(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with its ``curve`` / ``plain`` fields (dicts in JSON) read back as ``Curve`` / ``Plain``."""
    kinds = {"curve": Curve, "plain": Plain}
    return {**raw, **{k: kind(**raw[k]) for k, kind in kinds.items() if raw.get(k)}}
