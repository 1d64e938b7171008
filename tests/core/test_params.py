"""Param.coerce: the one place every parameter value passes (graph files, --set, Python), type by type."""

from __future__ import annotations

import re

import numpy as np
import pytest

from emgflow.errors import ParamError
from emgflow.params import Param


def named(p: Param, name: str = "p") -> Param:
    p.name = name  # what a node class declaration does
    return p


@pytest.mark.parametrize("types, value, want", [
    (int, 5, 5), (int, 5.0, 5), (int, -3, -3), (int, 1e20, 10 ** 20),
    (float, 3, 3.0), (float, 2.5, 2.5), (float, -0.0, -0.0),
    (bool, True, True), (bool, False, False),
    (str, "rms", "rms"), (str, "", ""),
    (list, [1, "a"], [1, "a"]), (list, (1, 2), [1, 2]), (list, [], []),
    (dict, {"a": 1}, {"a": 1}),
    ((int, float), 3, 3), ((int, float), 2.5, 2.5), ((float, int), 3, 3.0),
    ((str, int), 5, 5), ((str, int), "5", "5"), ((str, list), (1,), [1]),
])
def test_values_of_the_declared_type_come_back_converted(types, value, want):
    out = named(Param(types)).coerce(value)
    assert out == want and type(out) is type(want)


@pytest.mark.parametrize("types, value", [
    (int, 5.5), (int, True), (int, "5"), (int, None), (int, [5]),
    (float, True), (float, "2.5"), (float, None),
    (bool, 1), (bool, "true"), (bool, 0.0),
    (str, 5), (str, b"rms"), (str, None),
    (list, "ab"), (list, {"a": 1}), (dict, [("a", 1)]),
    ((int, float), "3"), ((str, int), 2.5),
])
def test_values_of_another_type_are_refused_with_the_param_named(types, value):
    p = named(Param(types), "window")
    want = rf"^window: expected {re.escape(p.type_name())}, got {type(value).__name__} "
    with pytest.raises(ParamError, match=want) as exc:
        p.coerce(value)
    assert exc.value.param == "window"


def test_none_means_not_set_only_where_declared_so():
    assert named(Param(int, nullable=True)).coerce(None) is None
    assert named(Param(float, None)).coerce(None) is None  # a None default is "not set" too
    with pytest.raises(ParamError, match="expected int, got NoneType None"):
        named(Param(int, 4)).coerce(None)


@pytest.mark.parametrize("bound, ok, bad, text", [
    ({"ge": 1}, [1, 2], [0, -1], ">= 1"), ({"gt": 0}, [1e-9, 3], [0, -2], "> 0"),
    ({"le": 10}, [10, -5], [10.5, 11], "<= 10"), ({"lt": 1.0}, [0.999, 0.0], [1.0, 2.0], "< 1.0"),
])
def test_bounds_hold_at_their_edge(bound, ok, bad, text):
    p = named(Param(float, **bound), "cutoff")
    for v in ok:
        assert p.coerce(v) == v
    for v in bad:
        with pytest.raises(ParamError, match=f"cutoff: {float(v)!r} must be {text}"):
            p.coerce(v)


def test_bounds_check_the_converted_value():
    p = named(Param(int, ge=2), "order")
    assert p.coerce(2.0) == 2
    with pytest.raises(ParamError, match="1 must be >= 2"):
        p.coerce(1.0)


def test_choices_refuse_with_the_closest_spelling():
    p = named(Param(str, "log", choices=["log", "minmax"]), "norm")
    assert p.coerce("minmax") == "minmax"
    with pytest.raises(ParamError, match=r"'minmx' is not one of \['log', 'minmax'\] \(did you mean 'minmax'\?\)"):
        p.coerce("minmx")
    with pytest.raises(ParamError) as exc:
        p.coerce("zzz")
    assert "did you mean" not in str(exc.value)
    assert named(Param(float, choices=[1.0, 2.0])).coerce(2) == 2.0  # compared after conversion


def test_type_name_doc_range_and_schema_describe_the_declaration():
    p = named(Param((int, float), 40, ge=1, lt=100, nullable=True, help="window length", unit="samples"))
    assert p.type_name() == "int|float|null" and not p.required
    assert p.doc_range() == ">= 1, < 100"
    assert p.json_schema() == {"type": ["integer", "number", "null"], "minimum": 1, "exclusiveMaximum": 100,
                               "default": 40, "description": "window length"}
    q = named(Param(str, choices=("a", "b")))
    assert q.required and q.doc_range() == "one of a, b"
    assert q.json_schema() == {"type": ["string"], "enum": ["a", "b"]}


@pytest.mark.parametrize("types, value, want", [(int, np.int64(5), 5), (float, np.float32(1.5), 1.5),
                                                (bool, np.bool_(True), True)])
def test_numpy_scalars_are_taken_like_python_numbers(types, value, want):
    assert named(Param(types)).coerce(value) == want
