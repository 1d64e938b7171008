"""The runtime contract: what the supervisor hands a node process, in one typed definition.

The supervisor writes a ``ProcessSpec`` (JSON on the command line: no secret goes in it), the runner reads it back; both sides
use these classes, so a field cannot be spelled two ways. A process hosts one node, or every node of a
group; an input whose producer lives in the same process has no endpoint (``local``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
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

    def on_host(self, key_file: str, parent_pid: int) -> "ProcessSpec":
        """This spec as an agent runs it: every CURVE socket with the agent's host key pair (a secret
        never leaves its host, so the supervisor leaves ``key_file`` to it), and the agent as the
        parent the runner dies with."""
        mine = lambda c: c and replace(c, key_file=key_file)  # noqa: E731
        nodes = [replace(n, outputs={p: replace(o, curve=mine(o.curve)) for p, o in n.outputs.items()},
                         inputs={p: replace(i, curve=mine(i.curve)) for p, i in n.inputs.items()}) for n in self.nodes]
        return replace(self, nodes=nodes, curve=mine(self.curve), supervisor_pid=parent_pid)

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


def spawn(spec: ProcessSpec) -> subprocess.Popen:
    """Start ``python -m emgflow.runner SPEC`` as a child of this process (the supervisor, or an agent)."""
    # -P semantics (PYTHONSAFEPATH): `python -m` must not import a `emgflow` or node module that
    # happens to sit in the working directory; PYTHONPATH still counts (users' own node modules).
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    return subprocess.Popen([sys.executable, "-m", "emgflow.runner", spec.to_json()], stdin=subprocess.DEVNULL, env=env)
