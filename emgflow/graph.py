"""Graph files: YAML -> a validated ``Graph``. Every error names file, line, column and a hint.

Validation runs entirely before any process starts: YAML syntax, unknown or duplicate keys,
node types, params (types, ranges, names), ports, missing inputs, cycles, and stream checks
(each node's ``describe()`` sees its inputs' rates, so a 450 Hz corner on a 200 Hz stream is refused).
Reading the file (bounded, with positions) is graphfile.py. Run-time limits are checked here too
(node ids that fit the ``ipc://`` socket path and a trace hop, chains no deeper than a trace holds),
so nothing fails after processes start.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .codec import MAX_HOP_NAME, MAX_TRACE_HOPS
from .errors import GraphError, GraphErrors, ParamError
from .graphfile import Loader, position, read_graph_file
from .hosts import HostSpec, place, read_hosts
from .keys import public_keys
from .message import StreamInfo
from .node import Node
from .params import unknown_key_hint
from .ports import POLICIES
from .registry import UnknownNodeType, resolve

GRAPH_KEYS = {"name", "description", "transport", "keys", "hosts", "nodes"}
NODE_KEYS = {"type", "params", "inputs", "restart", "max_restarts", "restart_delay_s", "group", "host", "description"}
EDGE_KEYS = {"from", "policy", "queue"}
RESTART_POLICIES = ("never", "on-failure", "always")
TRANSPORTS = ("ipc", "tcp")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
SUN_PATH_MAX = 107
"""Longest ``ipc://`` socket path: Linux's sun_path holds 108 bytes with the terminating NUL."""
RUNDIR_PREFIX = "emgflow-"
"""The supervisor's run folder is ``tempfile.mkdtemp(prefix=RUNDIR_PREFIX)``: 8 random characters follow."""


@dataclass
class Edge:
    """``inputs: {port: source.output}`` on the consumer."""

    node: str
    port: str
    source: str
    output: str
    policy: str
    queue: int


@dataclass
class NodeSpec:
    id: str
    type: str
    cls: type[Node]
    params: dict[str, Any]
    inputs: dict[str, Edge]
    restart: str = "never"
    max_restarts: int = 3
    restart_delay_s: float = 0.5
    group: str = ""           # nodes of one group share one OS process; "" = a process of its own
    host: str = ""            # graphs with hosts: the host it runs on (hosts.py); "" = no hosts section
    streams: dict[str, StreamInfo] = field(default_factory=dict)

    @property
    def process(self) -> str:
        """The name of the OS process that hosts this node."""
        return self.group or self.id


@dataclass
class Graph:
    name: str
    file: str
    nodes: dict[str, NodeSpec]
    order: list[str]          # topological: producers before consumers
    transport: str = "ipc"
    description: str = ""
    keys: str = ""            # tcp: a folder of further public keys the run admits ("" = the run's own only)
    hosts: dict[str, HostSpec] = field(default_factory=dict)  # placement (hosts.py); {} = one host

    def consumers(self, node: str, output: str) -> list[Edge]:
        return [e for n in self.nodes.values() for e in n.inputs.values() if (e.source, e.output) == (node, output)]

    def processes(self) -> dict[str, list[str]]:
        """OS process name -> the node ids it hosts, producers first."""
        out: dict[str, list[str]] = {}
        for nid in self.order:
            out.setdefault(self.nodes[nid].process, []).append(nid)
        return out

    def fused(self, group: str = "fused") -> "Graph":
        """The same graph with every node that has no group put into ``group`` (``emgflow run --fuse``)."""
        nodes = {nid: replace(spec, group=spec.group or group) for nid, spec in self.nodes.items()}
        return replace(self, nodes=nodes)


# --- validation ---------------------------------------------------------------------------------

def load_graph(path: str | Path, overrides: list[str] | None = None) -> Graph:
    """Parse and validate a graph file. Raises GraphErrors listing every problem found."""
    loader, doc = read_graph_file(str(path))
    return _Validator(loader, doc, Path(path).resolve().parent, overrides or []).run()


class _Validator:
    def __init__(self, loader: Loader, doc: Any, base: Path, overrides: list[str]) -> None:
        self.loader, self.doc, self.base, self.overrides = loader, doc, base, overrides
        self.errors = loader.errors

    def err(self, message: str, *path: Any, hint: str = "", key: bool = False) -> None:
        line, col = position(self.loader, *path, key=key)
        self.errors.append(GraphError(message, self.loader.file, line, col, hint))

    def fail(self) -> GraphErrors:
        return GraphErrors(sorted(self.errors, key=lambda e: (e.line or 0, e.column or 0)))

    def run(self) -> Graph:
        doc = self.doc
        if not isinstance(doc, dict):
            self.err("a graph file must be a mapping with a 'nodes' key", hint="start with `name: ...` and `nodes:`")
            raise self.fail()
        for key in doc:
            if key not in GRAPH_KEYS:
                self.err(f"unknown top-level key {key!r}", key, key=True, hint=unknown_key_hint(str(key), list(GRAPH_KEYS)))
        transport = doc.get("transport", "ipc")
        if transport not in TRANSPORTS:
            self.err(f"transport must be one of {list(TRANSPORTS)}, got {transport!r}", "transport")
        keys = str(self.base / str(doc["keys"])) if doc.get("keys") is not None else ""
        if keys and transport != "tcp" and "hosts" not in doc:
            self.err("keys: only a `transport: tcp` graph (or one with hosts:) admits keys", "keys",
                     hint="add `transport: tcp`, or remove `keys:`")
        elif keys:
            try:
                public_keys(keys)
            except ValueError as exc:
                self.err(f"keys: {exc}", "keys", hint="a folder of peers' NAME.key files (`emgflow keys NAME --dir DIR` "
                                                      "makes a pair), relative to the graph file")
        nodes_doc = doc.get("nodes")
        if not isinstance(nodes_doc, dict) or not nodes_doc:
            self.err("'nodes' must be a non-empty mapping of node id -> node", "nodes" if "nodes" in doc else (),
                     hint="nodes:\n    source: {type: replay, params: {path: rec.mat}}")
            raise self.fail()
        overrides = self._parse_overrides(nodes_doc)
        specs = {}
        for node_id, body in nodes_doc.items():
            spec = self._node(str(node_id), body, overrides.get(str(node_id), {}))
            if spec is not None:
                specs[spec.id] = spec
        self._edges(specs, nodes_doc)
        self._groups(specs)
        hosts = read_hosts(self.err, doc, self.base)
        place(self.err, specs, nodes_doc, hosts, doc.get("hosts"))
        if transport == "ipc":
            self._socket_paths(specs)
        order = self._toposort(specs)
        if order is not None:
            self._trace_depth(specs, order)
            self._streams(specs, order)
        if self.errors:
            raise self.fail()
        return Graph(name=str(doc.get("name", Path(self.loader.file).stem)), file=self.loader.file, nodes=specs,
                     order=order or [], transport=transport, description=str(doc.get("description", "")), keys=keys, hosts=hosts)

    def _parse_overrides(self, nodes_doc: dict) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for item in self.overrides:
            target, eq, value = item.partition("=")
            node_id, dot, param = target.partition(".")
            if not eq or not dot or not param:
                self.errors.append(GraphError(f"--set {item!r}: expected NODE.PARAM=VALUE", "<command line>"))
                continue
            if node_id not in nodes_doc:
                self.errors.append(GraphError(f"--set {item!r}: no node {node_id!r}", "<command line>",
                                              hint=unknown_key_hint(node_id, list(map(str, nodes_doc)))))
                continue
            try:
                if any(isinstance(token, yaml.AliasToken) for token in yaml.scan(value)):
                    self.errors.append(GraphError(f"--set {item!r}: YAML aliases (*name) are not allowed here",
                                                  "<command line>", hint="write the value out"))
                    continue
                out.setdefault(node_id, {})[param] = yaml.safe_load(value) if value else ""
            except yaml.YAMLError as exc:
                self.errors.append(GraphError(f"--set {item!r}: the value is not valid YAML "
                                              f"({getattr(exc, 'problem', None) or exc})", "<command line>",
                                              hint="quote it for the shell: --set 'x.window=[1, 2]'"))
        return out

    def _node(self, node_id: str, body: Any, overrides: dict[str, Any]) -> NodeSpec | None:
        at = ("nodes", node_id)
        if not _ID.match(node_id):
            self.err(f"node id {node_id!r} is not a valid name", *at, key=True,
                     hint="use letters, digits, '_' and '-', starting with a letter (no dots)")
            return None
        if len(node_id) > MAX_HOP_NAME:
            self.err(f"node id {node_id[:20]}... is {len(node_id)} characters, more than {MAX_HOP_NAME}", *at, key=True,
                     hint="every message's trace carries the node id; use a short name")
            return None
        if not isinstance(body, dict):
            self.err(f"node {node_id!r} must be a mapping with a 'type'", *at, hint="e.g. {type: rms, inputs: {in: src.emg}}")
            return None
        for key in body:
            if key not in NODE_KEYS:
                self.err(f"node {node_id!r}: unknown key {key!r}", *at, key, key=True,
                         hint=unknown_key_hint(str(key), list(NODE_KEYS)))
        type_name = body.get("type")
        if not isinstance(type_name, str) or not type_name:
            self.err(f"node {node_id!r} has no 'type'", *at, hint="a stock node name (see `emgflow nodes`) or package.module:Class")
            return None
        try:
            cls = resolve(type_name)
        except UnknownNodeType as exc:
            self.err(f"node {node_id!r}: {exc}", *at, "type", hint=exc.hint)
            return None
        params = body.get("params", {}) or {}
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            self.err(f"node {node_id!r}: 'params' must map names to values", *at, "params")
            return None
        params = {**params, **overrides}
        for key, value in list(params.items()):
            spec = cls.params.get(key)
            if spec is not None and spec.path and isinstance(value, str) and value and not os.path.isabs(value):
                params[key] = str((self.base / value).resolve())
        try:
            cls(name=node_id, **params)
        except ParamError as exc:
            where = ("params", exc.param) if exc.param in params else ("params",)
            self.err(f"node {node_id!r} ({type_name}): param {exc}", *at, *where,
                     hint=exc.hint or self._param_hint(cls, exc.param))
            return None
        restart = body.get("restart", "never")
        if restart not in RESTART_POLICIES:
            self.err(f"node {node_id!r}: restart must be one of {list(RESTART_POLICIES)}", *at, "restart")
        max_restarts = body.get("max_restarts", 3)
        if not isinstance(max_restarts, int) or max_restarts < 0:
            self.err(f"node {node_id!r}: max_restarts must be an integer >= 0", *at, "max_restarts")
        delay = body.get("restart_delay_s", 0.5)
        if not isinstance(delay, (int, float)) or not 0 <= delay < math.inf:  # NaN fails both
            self.err(f"node {node_id!r}: restart_delay_s must be a finite number >= 0", *at, "restart_delay_s")
        group = body.get("group", "")
        if not isinstance(group, str) or (group and not _ID.match(group)):
            self.err(f"node {node_id!r}: group must be a name", *at, "group",
                     hint="letters, digits, '_' and '-'; nodes with the same group share one process")
            group = ""
        return NodeSpec(id=node_id, type=type_name, cls=cls, params=params, inputs={}, restart=str(restart),
                        group=group,
                        max_restarts=max_restarts if isinstance(max_restarts, int) else 3,
                        restart_delay_s=float(delay) if isinstance(delay, (int, float)) else 0.5)

    @staticmethod
    def _param_hint(cls: type[Node], name: str) -> str:
        p = cls.params.get(name)
        if p is None:
            return ""
        parts = [p.type_name()]
        if p.doc_range():
            parts.append(p.doc_range())
        if p.help:
            parts.append(p.help)
        return "; ".join(parts)

    def _edges(self, specs: dict[str, NodeSpec], nodes_doc: dict) -> None:
        for node_id, spec in specs.items():
            at = ("nodes", node_id, "inputs")
            inputs = nodes_doc[node_id].get("inputs", {}) or {}
            if not isinstance(inputs, dict):
                self.err(f"node {node_id!r}: 'inputs' must map port -> 'node.output'", *at)
                continue
            for port, wire in inputs.items():
                if port not in spec.cls.inputs:
                    known = list(spec.cls.inputs)
                    self.err(f"node {node_id!r} ({spec.type}) has no input port {port!r}", *at, port, key=True,
                             hint=unknown_key_hint(str(port), known) if known else f"{spec.type} is a source: it takes no inputs")
                    continue
                decl = spec.cls.inputs[port]
                policy, queue = decl.policy, decl.queue
                if isinstance(wire, dict):
                    for key in wire:
                        if key not in EDGE_KEYS:
                            self.err(f"input {node_id}.{port}: unknown key {key!r}", *at, port, key, key=True,
                                     hint=unknown_key_hint(str(key), list(EDGE_KEYS)))
                    policy = wire.get("policy", policy)
                    queue = wire.get("queue", queue)
                    source = wire.get("from")
                    if policy not in POLICIES:
                        self.err(f"input {node_id}.{port}: policy must be one of {list(POLICIES)}, got {policy!r}",
                                 *at, port, "policy", hint="'all' is lossless; 'latest' keeps the newest and drops the oldest")
                    if not isinstance(queue, int) or isinstance(queue, bool) or queue < 1:
                        self.err(f"input {node_id}.{port}: queue must be an integer >= 1", *at, port, "queue")
                        queue = decl.queue
                else:
                    source = wire
                if not isinstance(source, str) or source.count(".") != 1:
                    self.err(f"input {node_id}.{port}: expected 'node.output', got {source!r}", *at, port,
                             hint="e.g. `in: source.emg`, or {from: source.emg, policy: latest, queue: 8}")
                    continue
                src_node, src_port = source.split(".")
                if src_node not in specs:
                    if src_node in nodes_doc:
                        continue  # that node already has its own error
                    self.err(f"input {node_id}.{port}: no node {src_node!r}", *at, port,
                             hint=unknown_key_hint(src_node, list(specs)))
                    continue
                if src_port not in specs[src_node].cls.outputs:
                    self.err(f"input {node_id}.{port}: node {src_node!r} ({specs[src_node].type}) has no output {src_port!r}",
                             *at, port, hint=unknown_key_hint(src_port, list(specs[src_node].cls.outputs)))
                    continue
                if src_node == node_id:
                    self.err(f"input {node_id}.{port}: a node cannot consume its own output", *at, port)
                    continue
                spec.inputs[port] = Edge(node_id, port, src_node, src_port, str(policy), int(queue))
            for port, decl in spec.cls.inputs.items():
                if port not in spec.inputs and not decl.optional and port not in inputs:
                    self.err(f"node {node_id!r} ({spec.type}): input {port!r} is not connected",
                             "nodes", node_id, hint=f"add `inputs: {{{port}: <node>.<output>}}`")

    def _groups(self, specs: dict[str, NodeSpec]) -> None:
        for spec in specs.values():
            if spec.group and spec.group in specs and spec.group != spec.id:
                self.err(f"node {spec.id!r}: group {spec.group!r} has the name of another node", "nodes", spec.id,
                         "group", hint="a group names a process: pick a name no node uses")

    def _socket_paths(self, specs: dict[str, NodeSpec]) -> None:
        """Each consumed output becomes ``ipc://<rundir>/<node>.<output>``; a path past SUN_PATH_MAX
        would fail only when the node binds it, after the graph started."""
        rundir = os.path.join(tempfile.gettempdir(), RUNDIR_PREFIX + "x" * 8)
        outputs = {(e.source, e.output) for spec in specs.values() for e in spec.inputs.values()}
        for node_id, output in sorted(outputs):
            size = len(os.fsencode(os.path.join(rundir, f"{node_id}.{output}")))
            if size > SUN_PATH_MAX:
                self.err(f"node id {node_id!r} is too long for its socket path {rundir}/{node_id}.{output} "
                         f"({size} bytes, the limit is {SUN_PATH_MAX})", "nodes", node_id, key=True,
                         hint=f"shorten the id by {size - SUN_PATH_MAX} characters, set TMPDIR to a shorter "
                              "folder, or use `transport: tcp`")

    def _trace_depth(self, specs: dict[str, NodeSpec], order: list[str]) -> None:
        """Each node adds a hop to the trace of what it passes on, and a frame whose trace holds more
        than MAX_TRACE_HOPS is refused on receipt: a longer chain would lose every message."""
        depth: dict[str, int] = {}
        for node_id in order:
            depth[node_id] = 1 + max((depth[e.source] for e in specs[node_id].inputs.values()), default=0)
            if depth[node_id] > MAX_TRACE_HOPS:
                self.err(f"node {node_id!r} is {depth[node_id]} nodes down a chain; messages carry a trace of "
                         f"at most {MAX_TRACE_HOPS} hops", "nodes", node_id, key=True,
                         hint="split the chain into graphs, or merge steps into one node")
                return

    def _toposort(self, specs: dict[str, NodeSpec]) -> list[str] | None:
        state: dict[str, int] = {}
        order: list[str] = []
        stack: list[str] = []

        def visit(n: str) -> bool:
            if state.get(n) == 2:
                return True
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                self.err(f"cycle in the graph: {' -> '.join(cycle)}", "nodes", n,
                         hint="data flows one way; break the loop (feedback belongs in a node's state)")
                return False
            state[n] = 1
            stack.append(n)
            ok = all(visit(e.source) for e in specs[n].inputs.values())
            stack.pop()
            state[n] = 2
            order.append(n)
            return ok

        ok = all([visit(n) for n in specs])
        return order if ok else None

    def _streams(self, specs: dict[str, NodeSpec], order: list[str]) -> None:
        for node_id in order:
            spec = specs[node_id]
            infos = {}
            for port, edge in spec.inputs.items():
                src = specs[edge.source].streams
                if src and edge.output not in src:
                    self.err(f"input {node_id}.{port}: {edge.source!r} does not produce {edge.output!r} here "
                             f"(it produces {sorted(src)})", "nodes", node_id, "inputs", port,
                             hint="that output exists on the node type but not for these params (e.g. the recording lacks the stream)")
                    return
                infos[port] = src.get(edge.output, StreamInfo())
            try:
                spec.streams = spec.cls(name=node_id, **spec.params).describe(infos)
            except ParamError as exc:
                where = ("params", exc.param) if exc.param in spec.params else ()
                self.err(f"node {node_id!r} ({spec.type}): {exc}", "nodes", node_id, *where, hint=exc.hint)
                return
            except (OSError, ValueError) as exc:
                self.err(f"node {node_id!r} ({spec.type}): {exc}", "nodes", node_id, "params")
                return
