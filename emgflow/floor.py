"""The latency floor: a raw pyzmq PUB/SUB chain written as plainly as possible, for `emgflow bench chain`.

Same wire content as emgflow (msgpack header + raw numpy payload), same message size and rate,
same pacing and the same XPUB readiness wait, but no runtime: each process is a bare loop.
Run as ``python -m emgflow.floor ROLE IN_ENDPOINT OUT_ENDPOINT ARGS_JSON``; with ``"curve": {"server_key",
"key_file"}`` in the args, every socket speaks CURVE (encryption's cost, no gate), as emgflow's tcp does.
"""

from __future__ import annotations

import json
import sys

import msgpack
import numpy as np
import zmq

from .clock import sleep_until
from .clocksync import now_ns
from .keys import Curve


def _curve(args: dict) -> Curve | None:
    return Curve(allowed=[], **args["curve"]) if args.get("curve") else None


def _pub(ctx: zmq.Context, endpoint: str, curve: Curve | None = None) -> zmq.Socket:
    sock = ctx.socket(zmq.XPUB)
    if curve is not None:
        curve.server(sock)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.setsockopt(zmq.XPUB_NODROP, 1)
    sock.bind(endpoint)
    sock.recv()  # first subscription: the consumer is connected
    return sock


def _sub(ctx: zmq.Context, endpoint: str, curve: Curve | None = None) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    if curve is not None:
        curve.client(sock)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock


def source(out_ep: str, args: dict) -> None:
    ctx = zmq.Context()
    pub = _pub(ctx, out_ep, _curve(args))
    data = np.zeros((args["samples"], args["channels"]), np.float32)
    period = int(1e9 / args["rate"])
    t0 = now_ns() + 50_000_000
    for seq in range(args["count"]):
        sleep_until(t0 + seq * period)
        header = msgpack.packb({"q": seq, "t": now_ns(), "d": data.dtype.str, "s": data.shape})
        pub.send_multipart([b"x", header, data], copy=False)
    pub.send_multipart([b"x", msgpack.packb({"q": -1}), b""])
    pub.close()
    ctx.term()


def relay(in_ep: str, out_ep: str, args: dict) -> None:
    ctx = zmq.Context()
    sub = _sub(ctx, in_ep, _curve(args))
    pub = _pub(ctx, out_ep, _curve(args))
    while True:
        topic, raw, payload = sub.recv_multipart()
        header = msgpack.unpackb(raw)
        if header["q"] < 0:
            pub.send_multipart([topic, raw, payload])
            break
        data = np.frombuffer(payload, header["d"]).reshape(header["s"])
        pub.send_multipart([topic, msgpack.packb(header), data], copy=False)
    pub.close()
    sub.close()
    ctx.term()


def sink(in_ep: str, args: dict) -> None:
    ctx = zmq.Context()
    sub = _sub(ctx, in_ep, _curve(args))
    latencies, seqs = [], []
    while True:
        _, raw, payload = sub.recv_multipart()
        rx = now_ns()
        header = msgpack.unpackb(raw)
        if header["q"] < 0:
            break
        np.frombuffer(payload, header["d"]).reshape(header["s"])
        latencies.append((rx - header["t"]) / 1000)
        seqs.append(header["q"])
    np.savez(args["out"], latency_us=np.array(latencies), seq=np.array(seqs))
    sub.close()
    ctx.term()


def main() -> None:
    role, in_ep, out_ep, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if role == "source":
        source(out_ep, args)
    elif role == "relay":
        relay(in_ep, out_ep, args)
    else:
        sink(in_ep, args)


if __name__ == "__main__":
    main()
