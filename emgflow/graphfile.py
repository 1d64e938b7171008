"""Reading a graph file: bounded YAML to plain values, remembering each value's line and column.

Bounded because a graph path comes from a user: only a regular file of at most MAX_GRAPH_BYTES is
read (``/dev/zero`` or a FIFO would be read forever), and the document may expand to at most
MAX_GRAPH_VALUES values (a YAML alias bomb stops there instead of filling memory).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import GraphError, GraphErrors

MAX_GRAPH_BYTES = 1 << 20
MAX_GRAPH_VALUES = 100_000
"""Values after alias expansion; a real graph holds a few hundred."""
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Pos:
    line: int
    column: int


class _TooLarge(Exception):
    """The document expands past MAX_GRAPH_VALUES (raised from deep inside ``convert``)."""

    def __init__(self, node: yaml.Node) -> None:
        self.mark = node.start_mark


class Loader:
    """Turns a composed YAML tree into plain values, remembering where each path came from."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[tuple, Pos] = {}
        self.errors: list[GraphError] = []
        self._scalar = yaml.SafeLoader("")
        self._values = 0

    def convert(self, node: yaml.Node, path: tuple = ()) -> Any:
        self._values += 1
        if self._values > MAX_GRAPH_VALUES:  # an alias re-expands its whole anchor each time it is used
            raise _TooLarge(node)
        self.marks[path] = Pos(node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):  # `? [a, b]` makes a list a key
                    self.errors.append(GraphError("a key must be a plain name or number", self.file,
                                                  key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                                  "write `name: value`"))
                    continue
                key = self._construct(key_node)
                if key in out:
                    self.errors.append(GraphError(f"duplicate key {key!r}" + (f" in {'.'.join(map(str, path))}" if path else ""),
                                                  self.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1,
                                                  "each node id and each key may appear once"))
                    continue
                self.marks[path + (key, "__key__")] = Pos(key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.convert(value_node, path + (key,))
                if not isinstance(value_node, yaml.ScalarNode):  # point at the key line, not the block below
                    self.marks[path + (key,)] = self.marks[path + (key, "__key__")]
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(v, path + (i,)) for i, v in enumerate(node.value)]
        value = self._construct(node)
        if isinstance(value, str):
            if "${" in value:  # an expanded value is typed as if written in place: '${RATE}' -> 200
                value = self._expand(value, path)
                try:
                    typed = yaml.safe_load(value) if value.strip() else value
                except yaml.YAMLError:
                    typed = value
                value = typed if isinstance(typed, (int, float, bool, str)) else value
        return value

    def _construct(self, node: yaml.Node) -> Any:
        """A scalar's value; a tag that cannot make one (``!!python/name:...``, ``!!float abc``) is an error."""
        try:
            return self._scalar.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            self.errors.append(GraphError(f"cannot read this value: {getattr(exc, 'problem', None) or exc}", self.file,
                                          node.start_mark.line + 1, node.start_mark.column + 1,
                                          "remove the !!tag, or quote the value"))
            return None

    def _expand(self, text: str, path: tuple) -> str:
        def sub(m: re.Match) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            pos = self.marks[path]
            self.errors.append(GraphError(f"environment variable ${{{name}}} is not set", self.file, pos.line,
                                          pos.column, f"export {name}=... or write ${{{name}:-default}}"))
            return ""
        return _VAR.sub(sub, text)


def position(loader: Loader, *path: Any, key: bool = False) -> tuple[int | None, int | None]:
    """Best position for a path: the exact one, or the nearest enclosing one we know."""
    p = tuple(path) + (("__key__",) if key else ())
    while p:
        if p in loader.marks:
            return loader.marks[p].line, loader.marks[p].column
        p = p[:-2] + (p[-2],) if p[-1] == "__key__" else p[:-1]
    return (1, 1)


def read_graph_file(file: str) -> tuple[Loader, Any]:
    """The document as plain values, with a Loader that knows where each came from."""
    text = _read_text(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise GraphErrors([GraphError(f"YAML syntax error: {problem}", file,
                                      mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                                      "check indentation, colons and quotes")]) from None
    except RecursionError:
        raise GraphErrors([GraphError("YAML nested too deeply", file, hint="a graph is a few levels deep")]) from None
    loader = Loader(file)
    try:
        doc = loader.convert(root) if root is not None else None
    except _TooLarge as exc:
        raise GraphErrors([GraphError(f"the graph expands to more than {MAX_GRAPH_VALUES} values", file,
                                      exc.mark.line + 1, exc.mark.column + 1,
                                      "YAML aliases (*name) copy their anchor each time; write the values out")]) from None
    return loader, doc


def _read_text(file: str) -> str:
    """The file's text, if it is a regular file of at most MAX_GRAPH_BYTES (``/dev/zero`` would be read
    forever; O_NONBLOCK so that opening a FIFO does not wait for a writer; the size is checked on what
    is read, not on what stat said)."""
    try:
        with os.fdopen(os.open(file, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise GraphErrors([GraphError("not a regular file", file, hint="give the path of a .yaml graph file")])
            data = f.read(MAX_GRAPH_BYTES + 1)
    except OSError as exc:
        raise GraphErrors([GraphError(f"cannot read graph file: {exc.strerror}", file)]) from None
    if len(data) > MAX_GRAPH_BYTES:
        raise GraphErrors([GraphError(f"graph file larger than {MAX_GRAPH_BYTES // 1024} KiB", file,
                                      hint="a graph is a few KiB of YAML; data belongs in recordings")])
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise GraphErrors([GraphError(f"graph file is not UTF-8 text ({exc.reason} at byte {exc.start})", file)]) from None
