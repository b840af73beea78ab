"""The importer's middle stage: a ComfyUI graph reduced to plain records, whatever file it came from.

Both file formats are first read into :class:`ComfyGraph` (the API format almost directly; the UI format
after subgraphs and group nodes are flattened and UI-only nodes resolved), and one builder turns that into
a nodegraph :class:`~nodegraph.graph.Graph`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ComfyLink:
    """An input fed by output ``slot`` of node ``source``."""

    source: str
    slot: int


@dataclass
class ComfyNode:
    """One node of a ComfyUI graph. ``inputs`` maps ComfyUI input names to a value or a :class:`ComfyLink`.

    ``widgets_values`` keeps a UI-format node's raw widget values for nodes whose widgets the importer cannot
    name (no mapping), so nothing the file held is lost. ``output_names`` are the UI file's output names.
    """

    id: str
    class_type: str
    inputs: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    pos: tuple[float, float] | None = None
    color: str | None = None
    mode: str = ""  # "" (always), "mute" or "bypass"
    pack: str = ""  # cnr_id or aux_id of the node pack
    widgets_values: Any = None
    output_names: list[str] = field(default_factory=list)
    output_types: list[str] = field(default_factory=list)
    input_types: dict[str, str] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class ComfyGroup:
    title: str
    rect: tuple[float, float, float, float]
    color: str | None = None


@dataclass
class ComfyNote:
    id: str
    text: str
    title: str = ""
    pos: tuple[float, float] | None = None
    markdown: bool = False


@dataclass
class ComfyGraph:
    """A ComfyUI graph as records: executable nodes (in file order), reroutes, notes and groups."""

    nodes: dict[str, ComfyNode] = field(default_factory=dict)
    reroutes: dict[str, ComfyNode] = field(default_factory=dict)  # UI "Reroute" nodes: input "value"
    notes: list[ComfyNote] = field(default_factory=list)
    groups: list[ComfyGroup] = field(default_factory=list)
    kind: str = "api"  # "api", "ui-0.4" or "ui-1"
    resolved_modes: list[str] = field(default_factory=list)  # bypassed/muted nodes resolved away, for the report
    extra: dict[str, Any] = field(default_factory=dict)
