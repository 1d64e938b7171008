"""The runtime contract: one spec definition both sides read, and a control channel that refuses strangers."""

from __future__ import annotations

import shutil
import textwrap

import msgpack
import pytest
import zmq

from emgflow import control
from emgflow.contract import ProcessSpec
from emgflow.graph import load_graph
from emgflow.plan import Endpoints, RestartPolicy, plan
from emgflow.supervisor import Supervisor


def graph(tmp_path, text: str):
    path = tmp_path / "g.yaml"
    path.write_text(textwrap.dedent(text))
    return load_graph(path)


GROUPED = """
    nodes:
      source: {type: pulse, params: {rate: 200}}
      a: {type: relay, inputs: {in: source.out}, group: work, restart: on-failure, max_restarts: 5}
      b: {type: relay, inputs: {in: a.out}, group: work}
      c: {type: discard, inputs: {in: {from: b.out, policy: latest, queue: 2}}}
      d: {type: discard, inputs: {in: a.out}}
    """


def test_plan_carries_edges_as_sockets_between_processes_and_calls_inside_one(tmp_path):
    specs = plan(graph(tmp_path, GROUPED), Endpoints("ipc", str(tmp_path)), "ipc://ctl")
    assert list(specs) == ["source", "work", "c", "d"]
    work = {n.name: n for n in specs["work"].nodes}
    assert [n.name for n in specs["work"].nodes] == ["a", "b"]           # producers first
    assert work["b"].local_inputs == {"in": "a.out"} and not work["b"].inputs
    assert work["a"].inputs["in"].endpoint == specs["source"].nodes[0].outputs["out"].endpoint
    assert work["a"].outputs["out"].subscribers == 1                     # d only: b is in-process
    assert work["b"].outputs["out"].lossless is False                    # its one remote consumer takes latest
    assert specs["c"].nodes[0].inputs["in"].policy == "latest" and specs["c"].nodes[0].inputs["in"].queue == 2
    assert work["a"].cls == "emgflow.nodes.relay:Relay"


def test_process_spec_survives_its_json_round_trip(tmp_path):
    for spec in plan(graph(tmp_path, GROUPED), Endpoints("tcp", str(tmp_path)), "tcp://127.0.0.1:1").values():
        assert ProcessSpec.from_json(spec.to_json()) == spec


def test_a_group_follows_its_most_permissive_member(tmp_path):
    g = graph(tmp_path, GROUPED)
    assert RestartPolicy.of([g.nodes["a"], g.nodes["b"]]) == RestartPolicy("on-failure", 5, 0.5)
    assert RestartPolicy.of([g.nodes["b"]]) == RestartPolicy("never", 3, 0.5)


def test_control_messages_pack_and_refuse_anything_else():
    assert control.unpack(control.pack(control.HB, stats={}), control.FROM_PROCESS) == {"t": "hb", "stats": {}}
    for frame in (b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"t": "launch"}), control.pack(control.START)):
        with pytest.raises(control.ControlError):
            control.unpack(frame, control.FROM_PROCESS)  # garbage, not a map, unknown kind, wrong direction


def test_supervisor_counts_and_survives_strangers_on_its_control_socket(tmp_path):
    sup = Supervisor(graph(tmp_path, GROUPED))
    stranger = sup.ctx.socket(zmq.DEALER)
    try:
        stranger.setsockopt(zmq.IDENTITY, b"work")  # even a process's name
        stranger.connect(sup.control.getsockopt(zmq.LAST_ENDPOINT).decode())
        junk = [[b"a", b"b", b"c"], [b"\x00" * 10], [msgpack.packb({"t": "hb", "stats": 5})],
                [msgpack.packb({"t": "done", "node": ["x"]})], [control.pack(control.STOP)]]
        for frames in junk:
            stranger.send_multipart(frames)
        for _ in range(20):
            sup._handle_control(50)
            if sup.bad_control == len(junk):
                break
        assert sup.bad_control == len(junk)
        assert all(p.state == "new" for p in sup.procs.values())
    finally:
        stranger.close(0)
        sup.control.close(0)
        sup.ctx.term()
        shutil.rmtree(sup.rundir)


def test_latency_log_stays_bounded_whatever_names_frames_carry():
    from emgflow.trace import MAX_KEYS, LatencyLog

    log = LatencyLog(capacity=100)
    for i in range(2000):  # a stranger's frames, each naming new hops
        log.add([[f"hop{i}", 1, 2], [f"x{i}", 3, 4]], 10)
    assert len(log.hops) <= MAX_KEYS and log.overflow > 1800
    assert log.n == 2000 and log.summary()["n"] == 100  # end to end still counted
