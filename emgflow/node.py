"""The node SDK: declare ports and params on a class, implement `process` (or `generate`)."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Callable, ClassVar, Iterator, Mapping, Union

from .errors import NodeDefinitionError, ParamError
from .message import Msg, StreamInfo
from .params import Param, unknown_key_hint
from .ports import In, Out

Output = Union[Msg, Mapping[str, Msg], None]


class Node:
    """Base class of every node. A node never sees sockets, topics or loops.

    Declare ``Param``, ``In`` and ``Out`` class attributes, then implement:

    - ``process(msg)`` for a node with one input, or ``on_<port>(msg)`` per input;
    - ``generate()`` for a source (no inputs): a generator yielding outputs; yield ``None``
      when nothing is ready so the runtime can serve control messages;
    - optionally ``setup()`` (heavy work: open devices, load models), ``tick()`` (called
      every ``tick_ms`` even without input, e.g. watchdogs), ``finish()`` (end of stream:
      flush what is buffered) and ``teardown()`` (release resources).

    Returning a ``Msg`` publishes it on the only output; a ``{port: Msg}`` dict publishes on
    several; ``None`` publishes nothing. Construction only checks params (it runs in the
    validator too), so keep it cheap.
    """

    params: ClassVar[dict[str, Param]] = {}
    inputs: ClassVar[dict[str, In]] = {}
    outputs: ClassVar[dict[str, Out]] = {}
    tick_ms: ClassVar[float | None] = None
    accepts_nonfinite: ClassVar[bool] = False
    """True for a node that handles NaN / infinity itself; otherwise the runtime drops and counts
    any message holding one before it reaches the node (``nonfinite`` in the stats)."""
    kind: ClassVar[str] = ""
    """Stock name used in graph files (``type: rms``); empty for abstract bases."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params: dict[str, Param] = {}
        inputs: dict[str, In] = {}
        outputs: dict[str, Out] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Param):
                    value.name = attr
                    params[attr] = value
                elif isinstance(value, (In, Out)):
                    value.name = attr.rstrip("_")
                    (inputs if isinstance(value, In) else outputs)[value.name] = value
        overlap = set(params) & (set(inputs) | set(outputs))
        if overlap:
            raise NodeDefinitionError(f"{cls.__name__}: {sorted(overlap)} declared as both param and port")
        cls.params, cls.inputs, cls.outputs = params, inputs, outputs
        if not cls.__dict__.get("kind"):
            return  # abstract base or helper class: handlers are checked on concrete nodes
        if inputs:
            has_process = cls.process is not Node.process
            missing = [p for p in inputs if not has_process and not callable(getattr(cls, f"on_{p}", None))]
            if missing:
                raise NodeDefinitionError(
                    f"{cls.__name__}: input(s) {missing} have no handler; define process() or on_<port>()")
        elif cls.generate is Node.generate and cls.tick is Node.tick:
            raise NodeDefinitionError(f"{cls.__name__}: a node without inputs must define generate() or tick()")

    def __init__(self, name: str = "", **params: Any) -> None:
        self.name = name or type(self).__name__.lower()
        self.log = logging.getLogger(f"emgflow.{self.name}")
        self.counters: Counter[str] = Counter()
        for key in params:
            if key not in self.params:
                raise ParamError(key, "unknown parameter", unknown_key_hint(key, list(self.params)))
        for key, spec in self.params.items():
            if key in params:
                value = spec.coerce(params[key])
            elif spec.required:
                raise ParamError(key, "required parameter is missing")
            else:
                value = spec.default
            setattr(self, key, value)
        self.check()

    # --- hooks a node overrides -------------------------------------------------------------
    def check(self) -> None:
        """Cross-parameter checks; raise ParamError. Runs at construction (validation time)."""

    def describe(self, inputs: Mapping[str, StreamInfo]) -> dict[str, StreamInfo]:
        """Output stream info from input stream info, at validation time.

        Raise ParamError for params that make no sense for the stream (a corner above Nyquist).
        Default: every output carries the first input's info (unknown for sources).
        """
        first = next(iter(inputs.values()), StreamInfo())
        return {name: first for name in self.outputs}

    def setup(self) -> None:
        """Acquire resources; runs in the node's own process before the graph starts."""

    def process(self, msg: Msg) -> Output:
        """Handle one message on the node's single input."""
        raise NotImplementedError

    def generate(self) -> Iterator[Output]:
        """Source nodes: yield outputs until the stream ends."""
        raise NotImplementedError
        yield  # pragma: no cover

    def tick(self) -> Output:
        """Called every ``tick_ms`` milliseconds when the class sets it."""
        return None

    def finish(self) -> Output:
        """End of stream on every input: flush buffered state."""
        return None

    def teardown(self) -> None:
        """Release resources; runs on every exit, normal or not."""

    # --- helpers for node code ---------------------------------------------------------------
    def count(self, key: str, n: int = 1) -> None:
        """Increment a named counter reported in the node's live stats (drops, gaps, ...)."""
        self.counters[key] += n

    # --- runtime side ------------------------------------------------------------------------
    def handler(self, port: str) -> Callable[[Msg], dict[str, Msg]]:
        """What handles a message on ``port``: ``on_<port>`` (or ``process``), its result as
        {output: Msg}. The runtime binds it once per input (the per-message path stays short)."""
        call = getattr(self, f"on_{port}", None)
        call = call if callable(call) else self.process
        if len(self.outputs) != 1:
            return lambda msg: self.normalize(call(msg))
        only = next(iter(self.outputs))

        def single(msg: Msg) -> dict[str, Msg]:
            result = call(msg)
            return {only: result} if type(result) is Msg else self.normalize(result)
        return single

    def handle(self, port: str, msg: Msg) -> dict[str, Msg]:
        """Dispatch one input message and normalise what the node returns."""
        return self.handler(port)(msg)

    def normalize(self, result: Output) -> dict[str, Msg]:
        if result is None:
            return {}
        if isinstance(result, Msg):
            if len(self.outputs) != 1:
                raise TypeError(f"{self.name}: returned a Msg but has outputs {list(self.outputs)}; "
                                "return {port: Msg}")
            return {next(iter(self.outputs)): result}
        unknown = set(result) - set(self.outputs)
        if unknown:
            raise TypeError(f"{self.name}: returned unknown output port(s) {sorted(unknown)}")
        return {k: v for k, v in result.items() if v is not None}

    @classmethod
    def doc(cls) -> str:
        """First paragraph of the class docstring."""
        return (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
