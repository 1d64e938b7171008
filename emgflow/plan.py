"""From a validated graph to the specs of its node processes: which node runs where, and how each
edge is carried (a socket between processes, a function call inside one)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace

from .codec import payload_limit
from .contract import NodeRuntime, ProcessSpec
from .graph import Graph, NodeSpec
from .keys import Curve, Plain
from .message import StreamInfo
from .registry import class_path
from .transport import InputSpec, OutputSpec

CONNECT_TIMEOUT_S = 30.0
_RESTART_RANK = {"never": 0, "on-failure": 1, "always": 2}


@dataclass(frozen=True)
class RestartPolicy:
    """A process's policy. A group follows its most permissive member (its policy, restart budget and
    delay): a node that asked to be restarted is restarted, and its group with it."""

    restart: str
    max_restarts: int
    restart_delay_s: float

    @classmethod
    def of(cls, members: list[NodeSpec]) -> "RestartPolicy":
        m = max(members, key=lambda m: _RESTART_RANK[m.restart])  # the first of the most permissive
        return cls(m.restart, m.max_restarts, m.restart_delay_s)


class Endpoints:
    """Where each output binds: ``ipc://`` in the run directory, or a free loopback TCP port (with
    ``curve``: every tcp socket of the run authenticated and encrypted; ipc with ``plain``: every data
    socket of the run authenticated)."""

    def __init__(self, transport: str, rundir: str, curve: Curve | None = None, plain: Plain | None = None) -> None:
        self.transport, self.rundir, self.curve, self.plain = transport, rundir, curve, plain

    def control(self) -> str:
        return "tcp://127.0.0.1:0" if self.transport == "tcp" else f"ipc://{self.rundir}/_control"

    def output(self, name: str) -> str:
        if self.transport != "tcp":
            return f"ipc://{self.rundir}/{name}"
        with socket.socket() as s:  # reserve a free port; the node binds it a moment later
            s.bind(("127.0.0.1", 0))
            return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def plan(graph: Graph, endpoints: Endpoints, control: str) -> dict[str, ProcessSpec]:
    """Process name -> its spec, every process's nodes listed producers first."""
    outputs: dict[tuple[str, str], OutputSpec] = {}
    for nid in graph.order:
        spec = graph.nodes[nid]
        for port in spec.cls.outputs:
            remote = [e for e in graph.consumers(nid, port) if graph.nodes[e.node].process != spec.process]
            if remote:
                outputs[nid, port] = OutputSpec(endpoint=endpoints.output(f"{nid}.{port}"), topic=f"{nid}.{port}",
                                                subscribers=len(remote),
                                                lossless=any(e.policy == "all" for e in remote),
                                                curve=endpoints.curve, plain=endpoints.plain)
    procs = {}
    for name, members in graph.processes().items():
        nodes = []
        for nid in members:
            spec = graph.nodes[nid]
            inputs, local = {}, {}
            for port, e in spec.inputs.items():
                if graph.nodes[e.source].process == spec.process:
                    local[port] = f"{e.source}.{e.output}"
                else:
                    out, info = outputs[e.source, e.output], graph.nodes[e.source].streams.get(e.output, StreamInfo())
                    inputs[port] = InputSpec(endpoint=out.endpoint, topic=out.topic, policy=e.policy, queue=e.queue,
                                             curve=out.curve, max_payload=payload_limit(info),
                                             plain=out.plain and replace(out.plain, user=nid))
            nodes.append(NodeRuntime(name=nid, cls=class_path(spec.cls), params=spec.params,
                                     outputs={p: o for (n, p), o in outputs.items() if n == nid},
                                     inputs=inputs, local_inputs=local))
        procs[name] = ProcessSpec(name=name, nodes=nodes, control=control, supervisor_pid=os.getpid(),
                                  connect_timeout_s=CONNECT_TIMEOUT_S, curve=endpoints.curve, plain=endpoints.plain)
    return procs
