"""Authenticated, encrypted tcp: host keys, the graph's ``keys:`` folder, and strangers who try a
running tcp graph for real (subscribe to an output, publish into it, command the control socket)."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth

from emgflow import control
from emgflow.contract import ProcessSpec
from emgflow.errors import GraphErrors
from emgflow.graph import load_graph
from emgflow.keys import Curve, Gate, create
from emgflow.plan import Endpoints, plan
from emgflow.transport import InputSpec, OutputSpec, Publisher, Subscriber

from .procs import children_of, start_run, wait_for


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_keys_command_makes_a_private_pair_and_never_overwrites_it(tmp_path):
    cmd = [sys.executable, "-m", "emgflow.cli.app", "keys", "alice", "--dir", str(tmp_path / "k")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    public, secret = tmp_path / "k" / "alice.key", tmp_path / "k" / "alice.key_secret"
    assert str(public) in done.stdout and str(secret) in done.stdout
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    pub, sec = zmq.auth.load_certificate(str(secret))
    assert zmq.auth.load_certificate(str(public)) == (pub, None) and sec is not None
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert zmq.auth.load_certificate(str(secret)) == (pub, sec)
    with pytest.raises(ValueError, match="plain file name"):
        create("../escape", tmp_path)


def test_keys_folder_is_validated_with_its_position(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "typo.key").write_text("public-key = \"short\"\n")
    create("lab", tmp_path / "peers")
    base = "nodes:\n  source: {type: pulse}\n  sink: {type: discard, inputs: {in: source.out}}\n"
    for head, expected, hint in (("keys: peers\n", "only a `transport: tcp` graph", "transport: tcp"),
                                 ("transport: tcp\nkeys: missing\n", "Invalid certificate directory", "emgflow keys"),
                                 ("transport: tcp\nkeys: empty\n", "holds no public key", "emgflow keys"),
                                 ("transport: tcp\nkeys: junk\n", "not a z85 public key: 'short'", "emgflow keys")):
        with pytest.raises(GraphErrors) as info:
            load_graph(write(tmp_path, head + base))
        (err,) = info.value.errors
        assert expected in err.message and err.line == head.count("\n") and hint in err.hint
    g = load_graph(write(tmp_path, "transport: tcp\nkeys: peers\n" + base))
    assert g.keys == str(tmp_path / "peers")


def test_every_tcp_socket_of_a_run_gets_the_keys_but_no_secret_goes_in_the_spec(tmp_path):
    create("lab", tmp_path / "peers")
    g = load_graph(write(tmp_path, """
        transport: tcp
        keys: peers
        nodes:
          source: {type: pulse}
          relay: {type: relay, inputs: {in: source.out}}
          sink: {type: discard, inputs: {in: relay.out}}
        """))
    curve = Curve.for_run(str(tmp_path), g.keys)
    lab = zmq.auth.load_certificate(str(tmp_path / "peers" / "lab.key"))[0].decode()
    assert curve.allowed == sorted([curve.server_key, lab])
    specs = plan(g, Endpoints("tcp", str(tmp_path), curve), "tcp://127.0.0.1:1")
    secret = zmq.auth.load_certificate(curve.key_file)[1].decode()
    for spec in specs.values():
        assert spec.curve == curve and ProcessSpec.from_json(spec.to_json()) == spec
        assert secret not in spec.to_json()
        ports = [*(o for n in spec.nodes for o in n.outputs.values()), *(i for n in spec.nodes for i in n.inputs.values())]
        assert ports and all(p.curve == curve for p in ports)


def _specs(run: subprocess.Popen, n: int) -> dict[str, ProcessSpec]:
    """The running graph's process specs, read from its node processes' command lines."""
    def argv(pid: int) -> list[bytes]:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")

    assert wait_for(lambda: len(kids := children_of(run.pid)) == n and all(b"emgflow.runner" in argv(k) for k in kids), 60)
    specs = (ProcessSpec.from_json(argv(pid)[-2].decode()) for pid in children_of(run.pid))
    return {spec.name: spec for spec in specs}


def client(ctx: zmq.Context, kind: int, key_file: Path | None, server_key: str) -> zmq.Socket:
    """A socket that speaks CURVE with ``key_file``'s pair to ``server_key`` (None: no CURVE at all)."""
    sock = ctx.socket(kind)
    sock.linger = 0
    if key_file is not None:
        Curve(server_key, str(key_file), []).client(sock)
    return sock


def received(sock: zmq.Socket, timeout_s: float) -> int:
    """How many messages ``sock`` received in ``timeout_s``."""
    deadline, n = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        if sock.poll(50):
            sock.recv_multipart()
            n += 1
    return n


def test_strangers_get_nothing_and_inject_nothing_while_a_listed_peer_is_admitted(tmp_path):
    create("lab", tmp_path / "peers")
    create("stranger", tmp_path / "elsewhere")
    g = write(tmp_path, """
        transport: tcp
        keys: peers
        nodes:
          source: {type: pulse, params: {rate: 50, count: 500, channels: 2}}
          relay: {type: relay, inputs: {in: source.out}}
          rec: {type: npz, inputs: {in: relay.out}, params: {path: rec.npz}}
        """)
    run = start_run(g)
    specs = _specs(run, 3)
    out = specs["source"].nodes[0].outputs["out"]
    server_key, control_ep = specs["source"].curve.server_key, specs["source"].control
    ctx = zmq.Context()
    try:
        stranger = client(ctx, zmq.SUB, tmp_path / "elsewhere" / "stranger.key_secret", server_key)
        plain = client(ctx, zmq.SUB, None, server_key)
        lab = client(ctx, zmq.SUB, tmp_path / "peers" / "lab.key_secret", server_key)
        for sub in (stranger, plain, lab):
            sub.subscribe(b"")
            sub.connect(out.endpoint)
        injector = client(ctx, zmq.PUB, tmp_path / "elsewhere" / "stranger.key_secret", server_key)
        injector.connect(out.endpoint)
        commander = client(ctx, zmq.DEALER, tmp_path / "elsewhere" / "stranger.key_secret", server_key)
        commander.identity = b"relay"   # poses as a process of the graph
        commander.connect(control_ep)
        for _ in range(20):
            injector.send_multipart([out.topic.encode(), b"forged", b"\0" * 8])
            try:
                commander.send(control.pack(control.ERROR, node="relay", tb="forged", error="injected"), zmq.NOBLOCK)
            except zmq.Again:
                pass  # no handshake completed: a DEALER has no peer to queue for
            time.sleep(0.05)
        assert lab.poll(30_000), "the listed peer must be admitted (else the strangers' silence proves nothing)"
        lab.close()
        assert received(stranger, 1.0) == 0 and received(plain, 1.0) == 0
    finally:
        ctx.destroy(linger=0)
    _, err = run.communicate(timeout=90)
    assert run.returncode == 0, err
    assert "injected" not in err and "crashed" not in err
    assert "source: refused" in err and "supervisor: refused" in err   # counted, and said
    emg = np.load(tmp_path / "rec.npz")["emg"]
    np.testing.assert_array_equal(emg[:, 0], np.arange(500))           # nothing lost, nothing forged



def test_an_admitted_peer_does_not_stand_in_for_a_consumer_at_the_start(tmp_path):
    """The start waits for the graph's own subscriptions: a listed peer that subscribes first must not
    let a source start before its real consumer can receive sample 0."""
    create("lab", tmp_path / "peers")
    curve = Curve.for_run(str(tmp_path), str(tmp_path / "peers"))
    lab_curve = Curve(curve.server_key, str(tmp_path / "peers" / "lab.key_secret"), [])
    ctx = zmq.Context()
    gate = Gate(ctx, curve)
    try:
        pub = Publisher(ctx, OutputSpec(Endpoints("tcp", str(tmp_path)).output("x"), "x.out", subscribers=1,
                                        lossless=True, curve=curve))
        lab = Subscriber(ctx, InputSpec(pub.spec.endpoint, "x.out", "all", 10, curve=lab_curve))
        assert not pub.wait_subscribers(time.monotonic() + 1.0) and gate.refused == 0  # admitted, not counted
        consumer = Subscriber(ctx, InputSpec(pub.spec.endpoint, "x.out", "all", 10, curve=curve))
        assert pub.wait_subscribers(time.monotonic() + 10.0) and pub.subscribed == 1
        for sock in (pub, lab, consumer):
            sock.close()
    finally:
        gate.stop()
        ctx.destroy(linger=0)
