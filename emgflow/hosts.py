"""Placement: a graph's ``hosts:`` section and each node's ``host:``, validated like the rest of the
graph (every error with file:line:col and a hint).

A host is a name, an address its peers reach it on, and its public key file (``emgflow keys NAME``
makes the pair). Exactly one host has no ``agent:`` port: the one that runs ``emgflow run`` (the
supervisor's); every other host runs ``emgflow agent`` on that port. A node without ``host:`` runs on
the supervisor's host; a group is one process, so it cannot span hosts.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import zmq.auth

from .params import unknown_key_hint

if TYPE_CHECKING:
    from .graph import Edge, Graph

HOST_KEYS = {"address", "agent", "key"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
Err = Callable[..., None]   # _Validator.err: (message, *path, hint=..., key=...)


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str      # an IPv4 address: cross-host edges bind tcp on it
    key: str          # the host's public key file; its secret (NAME.key_secret) stays on the host
    agent: int = 0    # the agent's port; 0: the supervisor's host

    @property
    def public_key(self) -> str:
        return zmq.auth.load_certificate(self.key)[0].decode()

    @property
    def secret_file(self) -> str:
        """Where ``emgflow keys`` put the secret beside the public key (read only on this host)."""
        return str(Path(self.key).with_suffix(".key_secret"))


def read_hosts(err: Err, doc: dict[str, Any], base: Path) -> dict[str, HostSpec]:
    """The ``hosts:`` section ({} when the graph has none)."""
    raw = doc.get("hosts")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        err("'hosts' must map host names to {address, key, agent}", "hosts",
            hint="hosts:\n    lab: {address: 10.0.0.1, key: keys/lab.key}\n    arm: {address: 10.0.0.2, agent: 7700, key: keys/arm.key}")
        return {}
    if doc.get("transport", "ipc") != "ipc":
        err("a graph with hosts: carries edges between hosts on tcp+CURVE and edges within one on ipc", "transport",
            hint="remove `transport:`")
    hosts = {}
    for name, body in raw.items():
        host = _host(err, str(name), body, base)
        if host is not None:
            hosts[host.name] = host
    local = [h.name for h in hosts.values() if not h.agent]
    if len(hosts) == len(raw) and len(local) != 1:
        err(f"exactly one host runs `emgflow run` (has no `agent:`), got {len(local)}: {local}", "hosts",
            hint="leave `agent:` out of the supervisor's host only; every other host names its agent's port")
    return hosts


def _host(err: Err, name: str, body: Any, base: Path) -> HostSpec | None:
    at = ("hosts", name)
    if not _NAME.match(name):
        err(f"host name {name!r} is not a valid name", *at, key=True, hint="letters, digits, '_' and '-'")
        return None
    if not isinstance(body, dict):
        err(f"host {name!r} must be a mapping", *at, hint="{address: 10.0.0.2, agent: 7700, key: keys/arm.key}")
        return None
    for key in body:
        if key not in HOST_KEYS:
            err(f"host {name!r}: unknown key {key!r}", *at, key, key=True, hint=unknown_key_hint(str(key), list(HOST_KEYS)))
    ok = True
    try:
        ipaddress.IPv4Address(str(body.get("address")))
    except ValueError:
        err(f"host {name!r}: address must be an IPv4 address, got {body.get('address')!r}", *at,
            *(("address",) if "address" in body else ()), hint="the address the other hosts reach this one on")
        ok = False
    agent = body.get("agent", 0)
    if "agent" in body and (isinstance(agent, bool) or not isinstance(agent, int) or not 1 <= agent <= 65535):
        err(f"host {name!r}: agent must be a port number (1-65535)", *at, "agent", hint="the port `emgflow agent --port` listens on")
        ok = False
    key = str((base / str(body["key"])).resolve()) if body.get("key") is not None else ""
    if not key:
        err(f"host {name!r} has no key", *at, hint="key: keys/NAME.key (`emgflow keys NAME --dir keys` makes the pair)")
        return None
    try:
        public = zmq.auth.load_certificate(key)[0]
    except (OSError, ValueError) as exc:
        err(f"host {name!r}: key: {exc}", *at, "key", hint="the host's NAME.key from `emgflow keys NAME`, relative to the graph file")
        return None
    if len(public or b"") != 40:
        err(f"host {name!r}: key: no z85 public key in {key}", *at, "key", hint="`emgflow keys NAME` makes a pair")
        return None
    return HostSpec(name, str(body["address"]), key, int(agent)) if ok else None


def place(err: Err, specs: dict[str, Any], nodes_doc: dict[str, Any], hosts: dict[str, HostSpec], declared: Any) -> None:
    """Set each node's ``host`` (default: the supervisor's); refuse an unknown host or a group across hosts.
    ``declared``: the ``hosts:`` section as written (a host refused there already has its error)."""
    local = next((h.name for h in hosts.values() if not h.agent), "")
    groups: dict[str, str] = {}
    for nid, spec in specs.items():
        host = nodes_doc[nid].get("host")
        if host is not None and host not in hosts and isinstance(declared, dict) and host in declared:
            continue
        if host is not None and host not in hosts:
            err(f"node {nid!r}: no host {host!r}" + ("" if hosts else " (the graph has no hosts: section)"),
                "nodes", nid, "host", hint=unknown_key_hint(str(host), list(hosts)) if hosts else
                "add `hosts:` with this host's address and key, or remove `host:`")
            continue
        spec.host = str(host) if host is not None else local
        if spec.group and groups.setdefault(spec.group, spec.host) != spec.host:
            err(f"node {nid!r}: group {spec.group!r} spans hosts {groups[spec.group]!r} and {spec.host!r}",
                "nodes", nid, "host", hint="a group is one process: put its nodes on one host, or split the group")


def crossing(graph: "Graph") -> list["Edge"]:
    """The edges whose producer and consumer run on different hosts (tcp+CURVE on the producer's host)."""
    return [e for n in graph.nodes.values() for e in n.inputs.values() if graph.nodes[e.source].host != n.host]
