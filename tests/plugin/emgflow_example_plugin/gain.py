"""A gain node: the smallest useful node a plugin can ship."""

from __future__ import annotations

import numpy as np

from emgflow import In, Msg, Node, Out, Param


class Gain(Node):
    """Multiply every sample by a constant (why: a plugin needs a node to register)."""

    kind = "gain"
    factor = Param(float, 2.0, help="multiplier")
    in_ = In(help="any (samples, channels) stream")
    out = Out(help="factor * x")

    def process(self, msg: Msg) -> Msg:
        return msg.replace(data=np.multiply(msg.data, self.factor, dtype=np.float32))
