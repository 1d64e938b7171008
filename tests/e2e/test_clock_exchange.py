"""A real clock exchange over zmq between two processes, the remote one on a skewed clock (the test
hook: 3.7 s ahead, running 50 ppm fast): the Tracker recovers that offset within the uncertainty it
reports."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import msgpack
import pytest
import zmq

from emgflow import clocksync, control

from .procs import STARTED

SKEW_NS, DRIFT_PPM = 3_700_000_000, 50.0


def test_recovers_an_injected_offset_over_real_sockets():
    assert clocksync.now_ns is time.monotonic_ns  # this process is the host on the true clock
    env = {**os.environ, clocksync.SKEW_ENV: str(SKEW_NS), clocksync.DRIFT_ENV: str(DRIFT_PPM)}
    proc = subprocess.Popen([sys.executable, "-m", "emgflow.tools.clock_responder", "tcp://127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    STARTED.append(proc)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(proc.stdout.readline().strip())
    tracker = clocksync.Tracker()
    try:
        for _ in range(400):  # 2 s, one exchange every 5 ms
            req = tracker.request()
            sock.send(msgpack.packb(req))
            assert sock.poll(10_000), "the responder did not answer"
            frame = sock.recv()
            t3 = clocksync.now_ns()
            tracker.add(control.unpack(frame, frozenset({control.CLOCK})), t3)
            time.sleep(0.005)
    finally:
        sock.close()
        proc.terminate()
        proc.wait(5)
    mid = (req["t0"] + t3) // 2  # the newest exchange, which offset_ns is quoted for
    injected = SKEW_NS + int(mid * DRIFT_PPM / 1e6)  # the skewed clock reads t + skew + t * ppm / 1e6
    assert tracker.samples == 400 and not tracker.refused
    assert abs(tracker.offset_ns - injected) <= tracker.uncertainty_ns
    assert tracker.uncertainty_ns < 2_000_000  # a loopback round trip, not a vacuous bound
    assert tracker.drift_ppm == pytest.approx(DRIFT_PPM, abs=40)  # 2 s of a loaded loopback: found, roughly
