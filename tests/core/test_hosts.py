"""Placement: the hosts: section and host: on nodes (validated with positions and hints), how plan
carries edges between hosts (tcp+CURVE on the producer host's address, each side with its own host's
keys) and within one (ipc), and what an agent fills in (its own key file, itself as the parent)."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import zmq.auth
from typer.testing import CliRunner

from emgflow.cli.app import app
from emgflow.contract import ProcessSpec
from emgflow.errors import GraphErrors
from emgflow.graph import load_graph
from emgflow.hosts import crossing
from emgflow.keys import Curve, Plain, create
from emgflow.plan import Endpoints, plan

HOSTS = """\
hosts:
  a: {address: 10.77.0.1, key: keys/a.key}
  b: {address: 10.77.0.2, agent: 7700, key: keys/b.key}
"""
NODES = """\
nodes:
  source: {type: pulse}
  relay: {type: relay, host: b, inputs: {in: source.out}}
  inner: {type: relay, host: b, inputs: {in: relay.out}}
  sink: {type: discard, inputs: {in: inner.out}}
"""


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    for name in "ab":
        create(name, tmp_path / "keys")
    return tmp_path / "keys"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text, line, column, fault, hint", [
    (HOSTS + NODES.replace("host: b, inputs: {in: relay", "host: c, inputs: {in: relay"), 7, 30, "no host 'c'", "known: a, b"),
    (NODES.replace("host: b, inputs: {in: source", "host: a, inputs: {in: source"), 3, 30,
     "no host 'a' (the graph has no hosts: section)", "add `hosts:`"),
    (HOSTS + NODES.replace("host: b, inputs: {in: relay.out}}", "host: b, group: g, inputs: {in: relay.out}}")
                  .replace("{type: discard,", "{type: discard, group: g,"), 8, 3, "group 'g' spans hosts 'b' and 'a'",
     "put its nodes on one host"),
    (HOSTS.replace(", agent: 7700", "") + NODES, 1, 1, "exactly one host runs `emgflow run`", "leave `agent:` out"),
    (HOSTS.replace("a: {address: 10.77.0.1,", "a: {address: 10.77.0.1, agent: 7701,") + NODES, 1, 1,
     "exactly one host runs `emgflow run` (has no `agent:`), got 0", "every other host"),
    (HOSTS.replace("10.77.0.2", "lab-pc") + NODES, 3, 16, "address must be an IPv4 address, got 'lab-pc'", "reach this one"),
    (HOSTS.replace("agent: 7700", "agent: 70000") + NODES, 3, 34, "agent must be a port number", "--port"),
    (HOSTS.replace("keys/b.key", "keys/missing.key") + NODES, 3, 45, "key:", "emgflow keys NAME"),
    (HOSTS.replace("key: keys/b.key", "port: 1") + NODES, 3, 40, "unknown key 'port'", "agent"),
    ("transport: tcp\n" + HOSTS + NODES, 1, 12, "edges between hosts on tcp+CURVE", "remove `transport:`"),
])
def test_placement_errors_name_file_line_column_and_a_hint(tmp_path, keys, text, line, column, fault, hint):
    with pytest.raises(GraphErrors) as info:
        load_graph(write(tmp_path, text))
    errors = [e for e in info.value.errors if fault in e.message]
    assert errors, info.value.errors
    assert (errors[0].line, errors[0].column) == (line, column) and hint in errors[0].hint, errors[0]


def test_a_refused_host_is_not_refused_again_on_each_node_placed_there(tmp_path, keys):
    with pytest.raises(GraphErrors) as info:
        load_graph(write(tmp_path, HOSTS.replace("keys/b.key", "keys/missing.key") + NODES))
    (error,) = info.value.errors
    assert "host 'b': key:" in error.message


def test_validate_and_graph_say_which_edges_cross_hosts(tmp_path, keys):
    path = write(tmp_path, HOSTS + NODES)
    g = load_graph(path)
    assert {n: s.host for n, s in g.nodes.items()} == {"source": "a", "relay": "b", "inner": "b", "sink": "a"}
    assert [(e.source, e.node) for e in crossing(g)] == [("source", "relay"), ("inner", "sink")]
    out = CliRunner().invoke(app, ["validate", str(path)]).output
    assert "on 2 hosts" in out and "crosses hosts: source.out (a) -> relay.in (b), tcp+CURVE" in out
    assert "inner.out (b) -> sink.in (a)" in out and "relay.out (b) -> inner" not in out
    text = CliRunner().invoke(app, ["graph", str(path)]).output
    assert "relay : relay [host b]" in text and "(crosses hosts a -> b, tcp+CURVE)" in text
    dot = CliRunner().invoke(app, ["graph", "--dot", str(path)]).output
    assert 'subgraph "cluster_host_b" { label="host b (10.77.0.2)";\n    "relay";\n    "inner";\n  }' in dot
    assert '"source" -> "relay" [label="out -> in" color=red];' in dot and '"relay" -> "inner" [label="out -> in"];' in dot


def test_plan_carries_edges_between_hosts_on_tcp_with_each_hosts_keys(tmp_path, keys):
    g = load_graph(write(tmp_path, HOSTS + NODES))
    key = {h: zmq.auth.load_certificate(str(keys / f"{h}.key"))[0].decode() for h in "ab"}
    curve = Curve(key["a"], str(keys / "a.key_secret"), sorted(key.values()), sorted(key.values()))
    ports, own = iter(range(9000, 9010)), iter(range(8000, 8010))
    plain = {h: Plain(f"/run-{h}/run.password") for h in "ab"}
    endpoints = {"a": Endpoints("ipc", "/run-a", curve, plain["a"], "10.77.0.1", lambda: next(own)),
                 "b": Endpoints("ipc", "/run-b", replace(curve, server_key=key["b"], key_file=""), plain["b"],
                                "10.77.0.2", lambda: next(ports))}
    specs = plan(g, endpoints, "tcp://10.77.0.1:5000")
    node = {n.name: n for spec in specs.values() for n in spec.nodes}
    out = node["source"].outputs["out"]
    assert out.endpoint.startswith("tcp://10.77.0.1:") and out.curve.key_file == str(keys / "a.key_secret")
    into_b = node["relay"].inputs["in"]
    assert into_b.endpoint == out.endpoint and into_b.host == "a"
    assert into_b.curve.server_key == key["a"] and into_b.curve.key_file == ""      # b's agent fills in its own
    assert node["relay"].outputs["out"].endpoint == "ipc:///run-b/relay.out"          # within b: ipc in b's folder
    assert node["relay"].outputs["out"].plain == plain["b"] and out.plain is None      # ipc: b's run password
    assert node["inner"].inputs["in"].plain == replace(plain["b"], user="inner")        # logs in as its node
    assert node["inner"].inputs["in"].curve is None and node["inner"].inputs["in"].host == ""
    assert node["inner"].outputs["out"].endpoint == "tcp://10.77.0.2:9000"
    back = node["sink"].inputs["in"]
    assert back.host == "b" and back.curve.server_key == key["b"] and back.curve.key_file == str(keys / "a.key_secret")
    for spec in specs.values():   # every process talks to the supervisor (a) over tcp+CURVE
        assert spec.curve.server_key == key["a"] and spec.curve.member(key["b"]) and spec.control.startswith("tcp://")
        assert ProcessSpec.from_json(spec.to_json()) == spec
        assert zmq.auth.load_certificate(str(keys / "a.key_secret"))[1].decode() not in spec.to_json()
    on_b = specs["relay"].on_host("/etc/emgflow/b.key_secret", 4321)
    curves = [on_b.curve, *(p.curve for n in on_b.nodes for p in (*n.inputs.values(), *n.outputs.values()) if p.curve)]
    assert on_b.supervisor_pid == 4321 and len(curves) == 2
    assert all(c.key_file == "/etc/emgflow/b.key_secret" for c in curves)
    assert on_b.nodes[0].inputs["in"].curve.server_key == key["a"]


def test_a_secret_missing_on_the_supervisors_host_is_said_before_anything_starts(tmp_path, keys):
    (keys / "a.key_secret").unlink()
    result = CliRunner().invoke(app, ["run", str(write(tmp_path, HOSTS + NODES)), "--quiet"])
    assert result.exit_code == 1
    assert "a.key_secret is missing: host 'a' (no `agent:`) runs `emgflow run`" in result.output


def test_running_on_a_machine_that_is_not_the_supervisors_host_is_said_before_anything_starts(tmp_path, keys):
    result = CliRunner().invoke(app, ["run", str(write(tmp_path, HOSTS + NODES)), "--quiet"])  # 10.77.0.1: a test netns's
    assert result.exit_code == 1
    assert "host 'a' (no `agent:`) runs `emgflow run`, but its address 10.77.0.1 is not this machine's" in result.output


def test_the_agent_refuses_a_bad_key_or_admit_folder_with_exit_2(tmp_path, keys):
    for key, admit, said in ((tmp_path / "none.key_secret", keys, "Invalid certificate file"),
                             (keys / "b.key_secret", tmp_path / "none", "Invalid certificate directory")):
        result = CliRunner().invoke(app, ["agent", "--address", "127.0.0.1", "--port", "1", "--key", str(key),
                                          "--admit", str(admit)])
        assert result.exit_code == 2 and said in result.output, result.output
