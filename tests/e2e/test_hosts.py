"""One graph across two hosts (network namespaces joined by a veth pair, an agent in host b started
with `ip netns exec`): its recordings equal the one-host run's, strangers are refused and counted, a
cut link is reported and the hand on the surviving side goes safe, and an agent's processes die with it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

from emgflow import control
from emgflow.contract import ProcessSpec
from emgflow.keys import create

from .netns import TwoHosts
from .procs import STARTED, alive, children_of, start_run, wait_for
from .test_curve import client, received
from .test_safe_stop import UdpHand, moved

REPO = Path(__file__).resolve().parents[2]
AGENT_PORT = 7700


def host_keys(tmp_path: Path) -> Path:
    """Key pairs a and b; the agent on b admits the folder's public keys (a's is the supervisor's)."""
    for name in "ab":
        create(name, tmp_path / "keys")
    return tmp_path / "keys"


def hosts_section(keys: Path) -> str:
    return (f"hosts:\n  a: {{address: 10.77.0.1, key: {keys}/a.key}}\n"
            f"  b: {{address: 10.77.0.2, agent: {AGENT_PORT}, key: {keys}/b.key}}\n")


def start_agent(hosts: TwoHosts, tmp_path: Path, keys: Path, *args: str,
                env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "agent.log"
    agent = hosts.run("b", "agent", "--address", "10.77.0.2", "--port", str(AGENT_PORT), "--key",
                      str(keys / "b.key_secret"), "--admit", str(keys), *args, log=log, env=env)
    assert wait_for(lambda: "listening on" in log.read_text(), 30), log.read_text()
    return agent, log


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def runners(pid: int, n: int) -> dict[str, int]:
    """The ``n`` node processes ``pid`` (a supervisor or an agent) runs, by process name."""
    def spec(child: int) -> ProcessSpec:
        return ProcessSpec.from_json(Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[-2].decode())

    assert wait_for(lambda: len(children_of(pid)) == n, 60), children_of(pid)
    return {spec(child).name: child for child in children_of(pid)}


# --- (a) the graph across hosts records what it records on one host ---------------------------------
def model_graph(data: Path, out: Path, port: int, placed: bool) -> str:
    on_b = ", host: b" if placed else ""
    return f"""
    nodes:
      source: {{type: replay, params: {{path: {data}/ninapro-db5-e1/s1/S1_E1_A1.mat, speed: 4.0, chunk: 2,
               start_s: 45, stop_s: 53}}}}
      envelope: {{type: rms, inputs: {{in: source.emg}}, params: {{window: 20, step: 2}}{on_b}}}
      image: {{type: wp_image, group: model, inputs: {{in: envelope.out}}, params: {{window: 15, step: 15, norm: log,
              mode: tree15}}{on_b}}}
      classify: {{type: classify, group: model, inputs: {{in: image.out}},
                 params: {{model: {REPO}/models/db5_s1_lstm_cnn.onnx}}{on_b}}}
      vote: {{type: vote, group: model, inputs: {{in: classify.proba}}, params: {{votes: 5, hysteresis: 2}}{on_b}}}
      hand: {{type: hand_udp, inputs: {{in: {{from: vote.out, policy: latest, queue: 1}}}},
             params: {{model: brunel, input: class, gestures: ninapro-e1, port: {port}}}}}
      record_decisions: {{type: npz, inputs: {{in: vote.out, label: source.label}}, params: {{path: {out}/decisions.npz}}}}
      record_envelope: {{type: npz, inputs: {{in: envelope.out}}, params: {{path: {out}/envelope.npz}}}}
    """


def test_a_graph_across_hosts_records_what_it_records_on_one_host(tmp_path, data_dir, two_hosts):
    keys = host_keys(tmp_path)
    start_agent(two_hosts, tmp_path, keys)
    one, across = tmp_path / "one", tmp_path / "across"
    one.mkdir()
    across.mkdir()
    hand = UdpHand()
    run = start_run(write(tmp_path, "one.yaml", model_graph(data_dir, one, hand.port, placed=False)))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert any(moved(p) for _, p in hand.close()), "the one-host hand never held a grip"

    with two_hosts.inside("a"):
        hand = UdpHand()
    graph = write(tmp_path, "across.yaml", hosts_section(keys) + textwrap.dedent(model_graph(data_dir, across, hand.port, True)))
    run = two_hosts.run("a", "run", str(graph), "--quiet", "--stats", str(tmp_path / "stats.json"))
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    header = next(line for line in out.splitlines() if " node " in line and " process " in line)
    assert " host " in header   # the summary says where each node ran
    assert any(moved(p) for _, p in hand.close()), "the hand on host a never held a grip"
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert {n: s["host"] for n, s in stats["nodes"].items() if s["host"] == "b"} == dict.fromkeys(
        ["envelope", "image", "classify", "vote"], "b")
    assert stats["hosts"]["b"]["drops"] == 0 and stats["hosts"]["b"]["refused"] == 0
    for name, node in stats["nodes"].items():
        assert node["state"] == "done" and node["restarts"] == 0, (name, node)
        assert all(edge["gaps"] == 0 for edge in node["in"].values()), (name, node)
    for file in ("decisions.npz", "envelope.npz"):
        a, b = np.load(one / file), np.load(across / file)
        assert len(a["emg"]) > 20
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{file}:{key}")


# --- (b) strangers -------------------------------------------------------------------------------------
PULSES = 400


def relay_graph(keys: Path, out: Path, extra: str = "", rate: int = 100) -> str:
    return hosts_section(keys) + textwrap.dedent(f"""
        nodes:
          source: {{type: pulse, params: {{rate: {rate}, count: {PULSES}, channels: 2}}}}
          relay: {{type: relay, host: b, inputs: {{in: source.out}}}}
          rec: {{type: npz, inputs: {{in: relay.out}}, params: {{path: {out}}}}}
        """) + textwrap.indent(textwrap.dedent(extra), "  ")


def test_strangers_cannot_subscribe_publish_or_launch(tmp_path, two_hosts):
    keys = host_keys(tmp_path)
    create("stranger", tmp_path / "elsewhere")
    create("lab", tmp_path / "peers")   # a monitor the graph admits (keys: peers): it never stands in for a consumer
    stranger_key = tmp_path / "elsewhere" / "stranger.key_secret"
    agent, agent_log = start_agent(two_hosts, tmp_path, keys)
    graph = write(tmp_path, "g.yaml", f"keys: {tmp_path / 'peers'}\n" + relay_graph(keys, tmp_path / "rec.npz", rate=50))
    run = two_hosts.run("a", "run", str(graph), "--quiet", "--stats", str(tmp_path / "stats.json"))
    relay = runners(agent.pid, 1)["relay"]
    spec = ProcessSpec.from_json(Path(f"/proc/{relay}/cmdline").read_bytes().split(b"\0")[-2].decode())
    edges = [spec.nodes[0].inputs["in"], spec.nodes[0].outputs["out"]]  # a -> b and b -> a, both cross hosts
    assert [e.endpoint.split(":")[1] for e in edges] == ["//10.77.0.1", "//10.77.0.2"]
    b_key = zmq.auth.load_certificate(str(keys / "b.key"))[0].decode()
    a_key = zmq.auth.load_certificate(str(keys / "a.key"))[0].decode()
    with two_hosts.inside("a"):
        ctx = zmq.Context()
    try:
        with two_hosts.inside("a"):
            for edge, server in zip(edges, (a_key, b_key)):
                subs = [client(ctx, zmq.SUB, stranger_key, server), client(ctx, zmq.SUB, None, server)]
                listed = client(ctx, zmq.SUB, tmp_path / "peers" / "lab.key_secret", server)
                injector = client(ctx, zmq.PUB, stranger_key, server)
                for sock in (*subs, listed):
                    sock.subscribe(b"")
                for sock in (*subs, listed, injector):
                    sock.connect(edge.endpoint)
                for _ in range(10):
                    injector.send_multipart([edge.topic.encode(), b"forged", b"\0" * 8])
                    time.sleep(0.05)
                assert listed.poll(30_000), "a listed key is admitted (else the strangers' silence proves nothing)"
                assert received(subs[0], 0.5) == 0 and received(subs[1], 0.5) == 0
            launcher = client(ctx, zmq.DEALER, stranger_key, b_key)
            launcher.connect(f"tcp://10.77.0.2:{AGENT_PORT}")
            for _ in range(10):
                for msg in (control.pack("hello"), control.pack("launch", spec=spec.to_json())):
                    try:
                        launcher.send(msg, zmq.NOBLOCK)
                    except zmq.Again:
                        pass  # no handshake completed: nothing to queue for
                time.sleep(0.05)
            assert received(launcher, 0.5) == 0
    finally:
        ctx.destroy(linger=0)
    assert len(children_of(agent.pid)) <= 1           # nothing launched for the stranger
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "b: agent refused" in err and "refused" in agent_log.read_text()
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["hosts"]["b"]["refused"] >= 1 and stats["supervisor"]["refused_peers"] >= 2
    assert "forged" not in err and "crashed" not in err
    np.testing.assert_array_equal(np.load(tmp_path / "rec.npz")["emg"][:, 0], np.arange(PULSES))  # nothing forged


# --- (c) a cut link ---------------------------------------------------------------------------------------
def test_a_cut_link_is_reported_the_hand_goes_safe_and_data_flows_again(tmp_path, data_dir, two_hosts):
    keys = host_keys(tmp_path)
    start_agent(two_hosts, tmp_path, keys)
    with two_hosts.inside("a"):
        hand = UdpHand()
    graph = write(tmp_path, "g.yaml", hosts_section(keys) + textwrap.dedent(f"""
        nodes:
          source: {{type: replay, params: {{path: {data_dir}/ninapro-db5-e1/s1/S1_E1_A1.mat, start_s: 50.5, speed: 1}}}}
          relay: {{type: relay, host: b, inputs: {{in: source.label}}}}
          hand: {{type: hand_udp, inputs: {{in: {{from: relay.out, policy: latest, queue: 1}}}},
                 params: {{gestures: ninapro-e1, port: {hand.port}}}}}
        """))
    log = tmp_path / "run.log"
    run = two_hosts.run("a", "run", str(graph), "--quiet", "--duration", "12", "--stats", str(tmp_path / "stats.json"),
                        log=log)
    assert wait_for(lambda: any(moved(p) for _, p in hand.got), 60), "the hand never held a grip"
    two_hosts.link(up=False)
    cut = time.monotonic()
    assert wait_for(lambda: "b: agent silent" in log.read_text(), 3), log.read_text()
    detected = time.monotonic() - cut
    assert wait_for(lambda: hand.got[-1][1]["state"] == "safe", 2), "the hand did not go safe by its watchdog"
    time.sleep(max(0.0, 2.0 - (time.monotonic() - cut)))
    two_hosts.link(up=True)
    restored = time.monotonic()
    assert wait_for(lambda: "b: agent answers again" in log.read_text(), 10), log.read_text()
    assert wait_for(lambda: any(t > restored and p["state"] == "active" for t, p in hand.got), 10), \
        "no command reached the hand after the link returned"
    assert run.wait(60) == 0, log.read_text()
    hand.close()
    stats = json.loads((tmp_path / "stats.json").read_text())
    b = stats["hosts"]["b"]
    assert b["drops"] == 1 and b["down_s"] >= 1.0 and b["up"], b
    assert stats["nodes"]["relay"]["restarts"] == 0 and "killing" not in log.read_text()
    print(f"link cut reported after {detected:.2f} s")


# --- (d) an agent SIGKILLed -----------------------------------------------------------------------------
def test_an_agents_processes_die_with_it(tmp_path, two_hosts):
    keys = host_keys(tmp_path)
    agent, _ = start_agent(two_hosts, tmp_path, keys)
    graph = write(tmp_path, "g.yaml", relay_graph(keys, tmp_path / "rec.npz", """
        relay2: {type: relay, host: b, inputs: {in: relay.out}}
        sink: {type: discard, inputs: {in: relay2.out}}
        """, rate=20))
    log = tmp_path / "run.log"
    run = two_hosts.run("a", "run", str(graph), "--quiet", log=log)
    kids = runners(agent.pid, 2)
    assert wait_for(lambda: "running" in log.read_text() and all(alive(k) for k in kids.values()), 30)
    time.sleep(1.0)
    os.kill(agent.pid, signal.SIGKILL)
    assert wait_for(lambda: not any(alive(k) for k in kids.values()), 5), "the agent's node processes outlived it"
    assert wait_for(lambda: "b: agent silent" in log.read_text(), 3), log.read_text()
    os.killpg(run.pid, signal.SIGINT)
    assert run.wait(60) == 0, log.read_text()
    assert "left running: host 'b' cannot be reached" in log.read_text()


# --- an admitted peer's bad requests ------------------------------------------------------------------
def test_the_agent_answers_bad_requests_with_an_error_and_runs_nothing(tmp_path):
    keys = host_keys(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "agent.log"
    with open(log, "w") as out:
        agent = subprocess.Popen([sys.executable, "-m", "emgflow.cli.app", "agent", "--address", "127.0.0.1", "--port",
                                  str(port), "--key", str(keys / "b.key_secret"), "--admit", str(keys)],
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    STARTED.append(agent)
    assert wait_for(lambda: "listening on" in log.read_text(), 30), log.read_text()
    b_key = zmq.auth.load_certificate(str(keys / "b.key"))[0].decode()
    ctx = zmq.Context()
    try:
        peer = client(ctx, zmq.DEALER, keys / "a.key_secret", b_key)
        peer.connect(f"tcp://127.0.0.1:{port}")

        def ask(frame: bytes) -> dict:
            peer.send(frame)
            assert peer.poll(10_000), "no answer"
            return msgpack.unpackb(peer.recv())

        assert ask(b"\xc1 not msgpack")["error"].startswith("malformed request: not msgpack")
        assert ask(control.pack("launch", spec="{}")) == {"t": "unknown"}   # no session: nothing launched
        rundir = Path(ask(control.pack("hello"))["rundir"])
        assert rundir.is_dir()
        assert "not a control message" in ask(control.pack("shell", cmd="rm -rf /"))["error"]
        assert "malformed request" in ask(control.pack("launch", spec="not json"))["error"]
        assert "is not SIGTERM or SIGKILL" in ask(control.pack("signal", name="x", sig=1))["error"]
        assert 0 < ask(control.pack("port"))["port"] < 65536
        clock = ask(control.pack("clock", id=1, t0=5, n=1))
        assert clock["running"] == [] and clock["t0"] == 5 and clock["t1"] <= clock["t2"] and clock["refused"] == 0
    finally:
        ctx.destroy(linger=0)
    assert children_of(agent.pid) == [] and "malformed request refused (4 so far)" in log.read_text()
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(30) == 0 and not rundir.exists()


def test_a_restarted_agent_no_longer_runs_the_graphs_processes_and_their_policy_applies(tmp_path, two_hosts):
    keys = host_keys(tmp_path)
    agent, _ = start_agent(two_hosts, tmp_path, keys)
    graph = write(tmp_path, "g.yaml", relay_graph(keys, tmp_path / "rec.npz", rate=20))   # relay: restart never
    log = tmp_path / "run.log"
    run = two_hosts.run("a", "run", str(graph), "--quiet", log=log)
    relay = runners(agent.pid, 1)["relay"]
    time.sleep(1.0)
    os.kill(agent.pid, signal.SIGKILL)
    assert wait_for(lambda: not alive(relay) and "b: agent silent" in log.read_text(), 5), log.read_text()
    start_agent(two_hosts, tmp_path, keys)
    assert run.wait(30) == 1, log.read_text()
    text = log.read_text()
    assert "relay: is gone: host 'b''s agent no longer knows this run (it restarted)" in text
    assert "node 'relay' failed" in text


def test_a_hung_process_on_a_reachable_host_is_killed_through_its_agent(tmp_path, two_hosts):
    """Its agent keeps answering, so the silence is the process's own: killed as hung, as on one host."""
    keys = host_keys(tmp_path)
    agent, agent_log = start_agent(two_hosts, tmp_path, keys)
    log = tmp_path / "run.log"
    run = two_hosts.run("a", "run", str(write(tmp_path, "g.yaml", relay_graph(keys, tmp_path / "rec.npz", rate=20))),
                        "--quiet", log=log)
    relay = runners(agent.pid, 1)["relay"]
    time.sleep(1.5)
    os.kill(relay, signal.SIGSTOP)
    assert run.wait(30) == 1, log.read_text()
    assert "relay: no heartbeat for 1 s: killing it" in log.read_text() and "agent silent" not in log.read_text()
    assert f"'relay' exited with code -{int(signal.SIGKILL)}" in agent_log.read_text() and not alive(relay)


def test_a_supervisor_sigkilled_leaves_nothing_running_on_either_host(tmp_path, two_hosts):
    """Its own runners die with it; the agent stops the rest once the supervisor is silent for --orphan-s."""
    keys = host_keys(tmp_path)
    agent, agent_log = start_agent(two_hosts, tmp_path, keys, "--orphan-s", "2")
    run = two_hosts.run("a", "run", str(write(tmp_path, "g.yaml", relay_graph(keys, tmp_path / "rec.npz", rate=20))),
                        "--quiet")
    relay = runners(agent.pid, 1)["relay"]
    local = runners(run.pid, 2)
    time.sleep(1.0)
    os.kill(run.pid, signal.SIGKILL)
    assert wait_for(lambda: not any(alive(p) for p in (relay, *local.values())), 10), "a node process outlived its supervisor"
    assert "stopping 1 process(es): its supervisor has been silent for 2 s" in agent_log.read_text()
    assert agent.poll() is None   # the agent itself serves on


# --- one clock: host b runs 3.7 s ahead ------------------------------------------------------------------
SKEW_NS = 3_700_000_000


def test_a_skewed_host_clock_is_recovered_and_latency_across_hosts_is_on_one_clock(tmp_path, two_hosts):
    """b's processes read a clock 3.7 s ahead (the test hook): the supervisor recovers the offset within
    the uncertainty it reports, and every node's latency, across the hosts and back, is on one clock
    (without the mapping the relay on b would see -3.7 s and the recorder on a +3.7 s)."""
    keys = host_keys(tmp_path)
    start_agent(two_hosts, tmp_path, keys, env={"EMGFLOW_CLOCK_SKEW_NS": str(SKEW_NS)})
    graph = write(tmp_path, "g.yaml", relay_graph(keys, tmp_path / "rec.npz", rate=200))
    run = two_hosts.run("a", "run", str(graph), "--quiet", "--stats", str(tmp_path / "stats.json"))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    stats = json.loads((tmp_path / "stats.json").read_text())
    clock = stats["hosts"]["b"]
    assert abs(clock["offset_ns"] - SKEW_NS) <= clock["uncertainty_ns"], clock
    assert clock["uncertainty_ns"] < 50_000_000, clock   # a real bound, not a shrug
    for name in ("relay", "rec"):
        node = stats["nodes"][name]
        assert node["in"]["in"]["received"] == PULSES and node["in"]["in"]["unmapped"] == 0, (name, node)
        lat = node["latency"]
        assert 0 < lat["p50_us"] and lat["max_us"] < 1e6, (name, lat)   # us: under 1 s, never 3.7 s off
    assert len(np.load(tmp_path / "rec.npz")["emg"]) == PULSES
