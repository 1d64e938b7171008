"""Typed node parameters, declared once: the validator, `--set` and the docs all read them."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from .errors import ParamError

REQUIRED: Any = object()

_TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "dict"}


@dataclass
class Param:
    """A node parameter with type, default, bounds, choices, unit and help text.

    Declare as a class attribute: ``window = Param(int, 40, ge=1, unit="samples", help="...")``.
    After construction the node instance holds the coerced value under the same name.
    ``type`` may be a tuple of types (``(int, float)``) or ``list``/``dict`` for structured values.
    ``nullable=True`` allows ``None`` (meaning "not set").
    """

    type: type | tuple[type, ...]
    default: Any = REQUIRED
    help: str = ""
    unit: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: Sequence[Any] | None = None
    nullable: bool = False
    path: bool = False
    """A file path: graph files resolve it relative to the YAML file's folder."""
    name: str = field(default="", init=False)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def type_name(self) -> str:
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        name = "|".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        return name + ("|null" if self.nullable else "")

    def coerce(self, value: Any) -> Any:
        """Convert ``value`` to the declared type and check bounds; raise ParamError otherwise."""
        if value is None and (self.nullable or self.default is None):
            return None
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        out = _coerce_to(value, types)
        if out is _FAIL:
            raise ParamError(self.name, f"expected {self.type_name()}, got {type(value).__name__} {value!r}")
        if not _finite(out):
            raise ParamError(self.name, f"{value!r} holds a NaN or infinite number; every number must be finite",
                             "write a finite number (an unbounded limit is a null where the param allows one)")
        if self.choices is not None and out not in self.choices:
            hint = difflib.get_close_matches(str(out), [str(c) for c in self.choices], n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ParamError(self.name, f"{out!r} is not one of {list(self.choices)}{extra}")
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            for bound, ok, sign in (
                (self.ge, lambda b: out >= b, ">="),
                (self.gt, lambda b: out > b, ">"),
                (self.le, lambda b: out <= b, "<="),
                (self.lt, lambda b: out < b, "<"),
            ):
                if bound is not None and not ok(bound):
                    raise ParamError(self.name, f"{out!r} must be {sign} {bound}")
        return out

    def doc_range(self) -> str:
        parts = []
        if self.choices is not None:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        for bound, sign in ((self.ge, ">="), (self.gt, ">"), (self.le, "<="), (self.lt, "<")):
            if bound is not None:
                parts.append(f"{sign} {bound}")
        return ", ".join(parts)

    def json_schema(self) -> dict[str, Any]:
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        names = {int: "integer", float: "number", str: "string", bool: "boolean", list: "array", dict: "object"}
        schema: dict[str, Any] = {"type": [names.get(t, "string") for t in types]}
        if self.nullable:
            schema["type"].append("null")
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        for key, bound in (("minimum", self.ge), ("exclusiveMinimum", self.gt),
                           ("maximum", self.le), ("exclusiveMaximum", self.lt)):
            if bound is not None:
                schema[key] = bound
        if not self.required:
            schema["default"] = self.default
        if self.help:
            schema["description"] = self.help
        return schema


_FAIL = object()


def _coerce_to(value: Any, types: tuple[type, ...]) -> Any:
    # A numpy scalar (np.int64(5), np.float32(1.5), np.bool_(True)) counts as the Python number it holds.
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    # Exact matches first, so a str param never turns 5 into "5" when int is also allowed.
    for t in types:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if t is bool and isinstance(value, bool):
            return value
        if t in (str, list, dict) and isinstance(value, t):
            return value
        if t is list and isinstance(value, tuple):
            return list(value)
    return _FAIL


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a value: a NaN bound compares false with everything and
    slips past every range check, and an infinite timeout or rate breaks the node at run time."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def unknown_key_hint(key: str, known: Sequence[str]) -> str:
    match = difflib.get_close_matches(key, list(known), n=1)
    return f"did you mean {match[0]!r}?" if match else f"known: {', '.join(sorted(known)) or 'none'}"
