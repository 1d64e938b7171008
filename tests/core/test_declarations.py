"""Node declarations: what a class states about its params and ports, checked when the class is made,
and the params checked when an instance is made (as the graph validator does)."""

from __future__ import annotations

import numpy as np
import pytest

from emgflow.errors import NodeDefinitionError, ParamError
from emgflow.message import Msg
from emgflow.node import Node
from emgflow.params import Param
from emgflow.ports import In, Out


class Scale(Node):
    """Multiplies by ``gain``; a node as the house writes one."""

    kind = "scale_test"
    gain = Param(float, 1.0, gt=0)
    label = Param(str, None)
    mode = Param(str, "fast", choices=["fast", "exact"])
    in_ = In()
    out = Out()

    def process(self, msg: Msg) -> Msg:
        return msg.replace(data=msg.data * self.gain)


def test_declared_params_and_ports_are_collected_by_name():
    assert list(Scale.params) == ["gain", "label", "mode"] and Scale.params["gain"].name == "gain"
    assert list(Scale.inputs) == ["in"] and list(Scale.outputs) == ["out"]  # in_ is port "in"
    assert Scale.inputs["in"].name == "in"


def test_construction_coerces_params_and_fills_defaults():
    node = Scale(gain=2, mode="exact")
    assert node.gain == 2.0 and type(node.gain) is float and node.label is None and node.mode == "exact"
    assert node.name == "scale"
    out = node.handle("in", Msg(np.ones((2, 3))))
    np.testing.assert_array_equal(out["out"].data, np.full((2, 3), 2.0))


def test_unknown_missing_and_bad_params_are_named():
    with pytest.raises(ParamError, match="gian: unknown parameter") as exc:
        Scale(gian=2.0)
    assert exc.value.hint == "did you mean 'gain'?"

    class Needs(Scale):
        kind = "needs_test"
        width = Param(int)

    with pytest.raises(ParamError, match="width: required parameter is missing"):
        Needs()
    with pytest.raises(ParamError, match=r"gain: 0\.0 must be > 0") as exc:
        Scale(gain=0)
    assert exc.value.param == "gain"


def test_subclasses_inherit_and_override_declarations():
    class Louder(Scale):
        kind = "louder_test"
        gain = Param(float, 10.0, ge=1)
        extra = Out()

    assert list(Louder.params) == ["gain", "label", "mode"] and Louder.params["gain"].default == 10.0
    assert list(Louder.outputs) == ["out", "extra"]
    assert Scale.params["gain"].default == 1.0  # the base keeps its own
    with pytest.raises(ParamError, match="must be >= 1"):
        Louder(gain=0.5)


def test_check_runs_at_construction():
    class Band(Node):
        kind = "band_test"
        low = Param(float, 20.0)
        high = Param(float, 450.0)
        in_ = In()
        out = Out()

        def check(self) -> None:
            if self.low >= self.high:
                raise ParamError("low", f"must be below high ({self.high})")

        def process(self, msg: Msg) -> Msg:
            return msg

    Band(low=10.0)
    with pytest.raises(ParamError, match=r"low: must be below high \(450\.0\)"):
        Band(low=500.0)


def test_a_name_cannot_be_both_param_and_port():
    with pytest.raises(NodeDefinitionError, match=r"Both: \['gain'\] declared as both param and port"):
        class Both(Node):
            gain = Param(float, 1.0)
            gain_ = Out()  # port "gain"


def test_an_input_without_a_handler_is_refused():
    with pytest.raises(NodeDefinitionError, match=r"Deaf: input\(s\) \['aux'\] have no handler"):
        class Deaf(Node):
            kind = "deaf_test"
            in_ = In()
            aux = In()

            def on_in(self, msg: Msg) -> None:
                return None

    class Listens(Node):  # one on_<port> per input
        kind = "listens_test"
        in_ = In()
        aux = In()

        def on_in(self, msg: Msg) -> None:
            return None

        def on_aux(self, msg: Msg) -> None:
            return None

    assert list(Listens.inputs) == ["in", "aux"]


def test_a_source_needs_generate_or_tick_and_an_abstract_base_nothing():
    with pytest.raises(NodeDefinitionError, match="Mute: a node without inputs must define generate"):
        class Mute(Node):
            kind = "mute_test"
            out = Out()

    class Base(Node):  # no kind: an abstract base, checked in its concrete subclasses
        in_ = In()

    class Ticker(Node):
        kind = "ticker_test"
        tick_ms = 10.0
        out = Out()

        def tick(self) -> Msg:
            return Msg(np.zeros((1, 1)))

    assert Base.inputs and Ticker.tick_ms == 10.0


def test_what_a_node_returns_is_checked_against_its_outputs():
    class Split(Node):
        kind = "split_test"
        in_ = In()
        low = Out()
        high = Out()

        def process(self, msg: Msg) -> object:
            return msg.meta["reply"]

    node, msg = Split(), Msg(np.zeros((1, 1)))
    with pytest.raises(TypeError, match="returned a Msg but has outputs"):
        node.handle("in", msg.replace(meta={"reply": msg}))
    with pytest.raises(TypeError, match=r"unknown output port\(s\) \['mid'\]"):
        node.handle("in", msg.replace(meta={"reply": {"mid": msg}}))
    assert node.handle("in", msg.replace(meta={"reply": {"low": msg, "high": None}})) == {"low": msg}
    assert node.handle("in", msg.replace(meta={"reply": None})) == {}
