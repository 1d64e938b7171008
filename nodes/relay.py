"""Pass-through: forwards every message unchanged (the benchmark's hop, and a tap point)."""

from __future__ import annotations

from emgflow import In, Msg, Node, Out


class Relay(Node):
    """Forward each message unchanged; measures a hop's cost with no work in it."""

    kind = "relay"
    in_ = In(help="any stream")
    out = Out(help="the same stream")

    def process(self, msg: Msg) -> Msg:
        return msg
