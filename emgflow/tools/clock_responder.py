"""A bare clock responder: ``clocksync.answer`` behind a ROUTER socket, to measure clock estimation
over a link without an agent (tests and ``bench/clock_sync.py`` run it under a skewed test clock).

Run as ``python -m emgflow.tools.clock_responder [ENDPOINT]``; it prints the bound endpoint, then
answers until killed.
"""

from __future__ import annotations

import sys

import msgpack
import zmq

from emgflow.clocksync import answer
from emgflow.control import CLOCK, ControlError, unpack


def serve(endpoint: str) -> None:
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(endpoint)
    print(sock.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
    while True:
        frames = sock.recv_multipart()
        try:
            reply = answer(unpack(frames[-1], frozenset({CLOCK})))
        except ControlError:
            continue  # not a clock request: nothing to answer
        sock.send_multipart([frames[0], msgpack.packb(reply)])


if __name__ == "__main__":
    serve(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:0")
