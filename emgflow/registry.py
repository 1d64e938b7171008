"""Find node classes: kinds registered under the ``emgflow.nodes`` entry-point group, or
``package.module:Class``.

The stock library registers its kinds exactly as a plugin package does (``pyproject.toml``:
``[project.entry-points."emgflow.nodes"] rms = "emgflow.nodes.envelope:Rms"``), so looking up one
kind imports one module: a node process holds its own node's code and the core, not the library.
"""

from __future__ import annotations

import difflib
import importlib
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

from .errors import EmgflowError
from .node import Node

GROUP = "emgflow.nodes"


class UnknownNodeType(EmgflowError):
    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@lru_cache(maxsize=1)
def registered() -> dict[str, EntryPoint]:
    """Every registered kind -> its entry point (first registration wins; nothing imported)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


_IMPORT_ERRORS: dict[str, str] = {}


def import_errors() -> dict[str, str]:
    """Kinds whose module failed to import so far: kind -> "module:Class (Error: text)"."""
    return dict(_IMPORT_ERRORS)


def _load(kind: str, ep: EntryPoint) -> type[Node]:
    try:
        cls = ep.load()
    except Exception as exc:  # a broken plugin must not hide the others: remember and report it
        _IMPORT_ERRORS[kind] = f"{ep.value} ({type(exc).__name__}: {exc})"
        raise UnknownNodeType(f"node type {kind!r} is registered as {ep.value} but failed to import: "
                              f"{type(exc).__name__}: {exc}",
                              "fix or reinstall the package that provides it (`emgflow nodes` lists every failure)"
                              ) from None
    if not (isinstance(cls, type) and issubclass(cls, Node)):
        _IMPORT_ERRORS[kind] = f"{ep.value} (not a Node subclass)"
        raise UnknownNodeType(f"entry point {kind!r} = {ep.value} is not an emgflow Node class",
                              "an emgflow.nodes entry point must name a Node subclass")
    return cls


def stock_nodes() -> dict[str, type[Node]]:
    """Every registered kind that imports, by name (imports every node module: listing only)."""
    found: dict[str, type[Node]] = {}
    for kind, ep in registered().items():
        try:
            found[kind] = _load(kind, ep)
        except UnknownNodeType:
            continue  # recorded in import_errors()
    return found


def class_path(cls: type) -> str:
    """``module:Qualname``: how a node process finds the class without the registry."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_registered(kind: str) -> type[Node]:
    """A registered kind only, never ``module:Class``: for node specs that arrive as data (a
    checkpoint's pipeline), which must not make us import a module they name."""
    if ":" in kind:
        raise UnknownNodeType(f"{kind!r} is not a registered node kind; a pipeline stored in a file may name "
                              "only registered kinds", "register the class under the emgflow.nodes entry points "
                              "(see tests/plugin) to use it in a pipeline")
    return resolve(kind)


def resolve(type_name: str) -> type[Node]:
    """The node class for a graph's ``type:`` value."""
    if ":" in type_name:
        module_name, _, attr = type_name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise UnknownNodeType(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}",
                                  "the module must be importable (on PYTHONPATH or installed)") from None
        cls: object = module
        for part in attr.split("."):
            cls = getattr(cls, part, None)
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise UnknownNodeType(f"{type_name!r} is not an emgflow Node class", "point at a Node subclass")
        return cls
    kinds = registered()
    if type_name in kinds:
        return _load(type_name, kinds[type_name])
    match = difflib.get_close_matches(type_name, list(kinds), n=1)
    hint = f"did you mean {match[0]!r}?" if match else "see `emgflow nodes` for the registered nodes"
    raise UnknownNodeType(f"unknown node type {type_name!r}", hint)
