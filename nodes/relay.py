"""Pass-through: forwards every message unchanged (the benchmark's hop, and a tap point)."""

from __future__ import annotations

from emgflow import In, Msg, Node, Out


class Relay(Node):
    """Forward each message unchanged; measures a hop's cost with no work in it."""

    kind = "relay"
    accepts_nonfinite = True  # it keeps no state: whatever it forwards is checked where it is used
    in_ = In(help="any stream")
    out = Out(help="the same stream")

    def process(self, msg: Msg) -> Msg:
        return msg
