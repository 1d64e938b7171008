"""Errors the runtime raises, each mapped to a CLI exit code."""

from __future__ import annotations


class EmgflowError(Exception):
    """Base class; ``exit_code`` is what the CLI returns for it."""

    exit_code = 1


class ParamError(EmgflowError):
    """A parameter value is wrong; ``param`` names it so the graph loader can point at its line."""

    exit_code = 2

    def __init__(self, param: str, message: str, hint: str = "") -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param
        self.message = message
        self.hint = hint


class NodeDefinitionError(EmgflowError):
    """A node class declares its ports or params wrongly (raised at class creation)."""


class GraphError(EmgflowError):
    """A graph file is invalid. Carries file, line and column for the message."""

    exit_code = 2

    def __init__(self, message: str, file: str = "", line: int | None = None,
                 column: int | None = None, hint: str = "") -> None:
        self.message, self.file, self.line, self.column, self.hint = message, file, line, column, hint
        where = file or "<graph>"
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        text = f"{where}: {message}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


class GraphErrors(EmgflowError):
    """Several graph errors found in one validation pass."""

    exit_code = 2

    def __init__(self, errors: list[GraphError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
