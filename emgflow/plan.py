"""From a validated graph to the specs of its node processes: which node runs where, and how each
edge is carried (a socket between processes, a function call inside one)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, replace
from typing import Callable

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
    """Where one host's outputs bind: ``ipc://`` in its run folder, or a free tcp port on its address
    (with ``curve``: every tcp socket of the run authenticated and encrypted; ipc with ``plain``: every
    data socket of the run authenticated). ``reserve``: a port that host's agent reserved (the
    supervisor cannot reserve one on another host)."""

    def __init__(self, transport: str, rundir: str, curve: Curve | None = None, plain: Plain | None = None,
                 address: str = "127.0.0.1", reserve: Callable[[], int] | None = None) -> None:
        self.transport, self.rundir, self.curve, self.plain, self.address = transport, rundir, curve, plain, address
        self.reserve = reserve or (lambda: free_port(address))

    def control(self) -> str:
        return f"tcp://{self.address}:0" if self.transport == "tcp" else f"ipc://{self.rundir}/_control"

    def output(self, name: str, tcp: bool = False) -> str:
        """``tcp``: the output has a consumer on another host."""
        if self.transport != "tcp" and not tcp:
            return f"ipc://{self.rundir}/{name}"
        return f"tcp://{self.address}:{self.reserve()}"


def free_port(address: str) -> int:
    """A tcp port free on ``address`` now (the supervisor's or an agent's): the node binds it a moment later."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def one_host(graph: Graph, rundir: str) -> tuple[Curve | None, Endpoints]:
    """A graph without ``hosts:``: its CURVE (tcp: a fresh key pair for the run) and its endpoints (ipc: a
    fresh password for the run)."""
    curve = Curve.for_run(rundir, graph.keys) if graph.transport == "tcp" else None
    plain = Plain.for_run(rundir) if graph.transport != "tcp" else None
    return curve, Endpoints(graph.transport, rundir, curve, plain)


def plan(graph: Graph, endpoints: Endpoints | dict[str, Endpoints], control: str) -> dict[str, ProcessSpec]:
    """Process name -> its spec, every process's nodes listed producers first. ``endpoints``: one host's,
    or each host's by name for a graph with ``hosts:`` (edges between hosts are tcp with CURVE)."""
    at = endpoints if isinstance(endpoints, dict) else {"": endpoints}
    supervisor = next((h.name for h in graph.hosts.values() if not h.agent), "")
    host = lambda nid: graph.nodes[nid].host  # noqa: E731
    outputs: dict[tuple[str, str], OutputSpec] = {}
    for nid in graph.order:
        spec = graph.nodes[nid]
        for port in spec.cls.outputs:
            remote = [e for e in graph.consumers(nid, port) if graph.nodes[e.node].process != spec.process]
            if remote:
                endpoint = at[spec.host].output(f"{nid}.{port}", tcp=any(host(e.node) != spec.host for e in remote))
                outputs[nid, port] = OutputSpec(endpoint=endpoint, topic=f"{nid}.{port}", subscribers=len(remote),
                                                lossless=any(e.policy == "all" for e in remote),
                                                curve=_tcp(endpoint, at[spec.host].curve),
                                                plain=at[spec.host].plain if endpoint.startswith("ipc://") else None)
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
                    curve = _tcp(out.endpoint, at[spec.host].curve, at[host(e.source)].curve)
                    inputs[port] = InputSpec(endpoint=out.endpoint, topic=out.topic, policy=e.policy, queue=e.queue,
                                             curve=curve, host=host(e.source) if host(e.source) != spec.host else "",
                                             max_payload=payload_limit(info),
                                             plain=out.plain and replace(out.plain, user=nid))
            nodes.append(NodeRuntime(name=nid, cls=class_path(spec.cls), params=spec.params,
                                     outputs={p: o for (n, p), o in outputs.items() if n == nid},
                                     inputs=inputs, local_inputs=local))
        own = at[graph.nodes[members[0]].host].curve
        procs[name] = ProcessSpec(name=name, nodes=nodes, control=control, supervisor_pid=os.getpid(),
                                  connect_timeout_s=CONNECT_TIMEOUT_S, curve=_tcp(control, own, at[supervisor].curve),
                                  plain=at[graph.nodes[members[0]].host].plain)
    return procs


def _tcp(endpoint: str, own: Curve | None, server: Curve | None = None) -> Curve | None:
    """A tcp socket's CURVE: this host's keys, talking to ``server``'s host (default: its own)."""
    if own is None or not endpoint.startswith("tcp://"):
        return None
    return replace(own, server_key=server.server_key) if server is not None else own
