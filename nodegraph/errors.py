"""Structured errors: every problem names the node, the field, what was expected and what was found."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow. ``node`` and ``field`` are empty when they do not apply."""

    code: str
    message: str
    node: str = ""
    field: str = ""
    expected: str = ""
    found: str = ""

    def __str__(self) -> str:
        where = self.node and f"node {self.node!r}" + (f", field {self.field!r}" if self.field else "")
        detail = f" (expected {self.expected}, found {self.found})" if self.expected or self.found else ""
        return f"{where}: {self.message}{detail}" if where else f"{self.message}{detail}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class WorkflowError(Exception):
    """A workflow cannot be loaded or run as written. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the workflow:\n{lines}")


class NodeExecutionError(Exception):
    """A node raised while running. Names the node and its type; the cause is chained."""

    def __init__(self, node_id: str, node_type: str, message: str) -> None:
        super().__init__(f"node {node_id!r} ({node_type}) failed: {message}")
        self.node_id = node_id
        self.node_type = node_type
        self.message = message


class NodeInputError(ValueError):
    """Raised by a node for bad input it can explain (a missing file, an image of the wrong mode)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Cancelled(Exception):
    """The run was cancelled; raised from the next cancellation check."""
