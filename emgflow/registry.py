"""Find node classes: stock names from the ``nodes`` package, or ``package.module:Class``."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from functools import lru_cache

from .errors import EmgflowError
from .node import Node


class UnknownNodeType(EmgflowError):
    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@lru_cache(maxsize=1)
def stock_nodes() -> dict[str, type[Node]]:
    """Every stock node by its ``kind``; a module that fails to import is skipped, and remembered."""
    import nodes as package

    found: dict[str, type[Node]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        try:
            module = importlib.import_module(f"nodes.{info.name}")
        except Exception as exc:  # a broken module must not hide the others
            _IMPORT_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Node) and value.__dict__.get("kind"):
                found.setdefault(value.kind, value)
    return found


_IMPORT_ERRORS: dict[str, str] = {}


def resolve(type_name: str) -> type[Node]:
    """The node class for a graph's ``type:`` value."""
    if ":" in type_name:
        module_name, _, attr = type_name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise UnknownNodeType(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}",
                                  "the module must be importable (on PYTHONPATH or installed)") from None
        cls = getattr(module, attr, None)
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise UnknownNodeType(f"{type_name!r} is not an emgflow Node class", "point at a Node subclass")
        return cls
    stock = stock_nodes()
    if type_name in stock:
        return stock[type_name]
    match = difflib.get_close_matches(type_name, list(stock), n=1)
    hint = f"did you mean {match[0]!r}?" if match else "see `emgflow nodes` for the stock nodes"
    broken = ", ".join(f"nodes.{k} ({v})" for k, v in _IMPORT_ERRORS.items())
    if broken:
        hint += f"; these node modules failed to import: {broken}"
    raise UnknownNodeType(f"unknown node type {type_name!r}", hint)
