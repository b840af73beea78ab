"""Events a run reports. The CLI prints them (bars or JSON lines); the editor turns them into node states."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"event": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "preview":
                value = None if value is None else "<preview>"
            data[f.name] = value
        return data


@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    nodes: tuple[str, ...]
    targets: tuple[str, ...]
    # node id -> [kind, amount] for the nodes that will run (nodegraph.progress): what the overall bar weighs
    work: dict[str, tuple[str, float]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class NodeStarted(Event):
    kind: ClassVar[str] = "node_started"
    node: str
    type: str


@dataclass(frozen=True)
class NodeCached(Event):
    kind: ClassVar[str] = "node_cached"
    node: str
    type: str


@dataclass(frozen=True)
class NodeProgress(Event):
    kind: ClassVar[str] = "node_progress"
    node: str
    type: str
    step: int
    total: int
    message: str = ""
    preview: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class NodeLog(Event):
    kind: ClassVar[str] = "node_log"
    node: str
    type: str
    level: str
    message: str


@dataclass(frozen=True)
class NodeFinished(Event):
    kind: ClassVar[str] = "node_finished"
    node: str
    type: str
    seconds: float
    files: tuple[str, ...] = ()  # files the node wrote (Save Image's PNGs), as it reported them


@dataclass(frozen=True)
class NodeFailed(Event):
    kind: ClassVar[str] = "node_failed"
    node: str
    type: str
    message: str
    error_type: str
    inputs: dict[str, str] = field(default_factory=dict)
    field: str = ""  # the input or parameter the node blamed (NodeInputError), if any


@dataclass(frozen=True)
class CacheEvicted(Event):
    kind: ClassVar[str] = "cache_evicted"
    node: str
    type: str
    nbytes: int
    reason: str


@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    seconds: float
    executed: int
    cached: int


@dataclass(frozen=True)
class RunCancelled(Event):
    kind: ClassVar[str] = "run_cancelled"
    node: str
    seconds: float


@dataclass(frozen=True)
class RunFailed(Event):
    kind: ClassVar[str] = "run_failed"
    node: str
    seconds: float
