"""Export to ComfyUI's API format (what ``POST /prompt`` takes), through the same mapping table.

Every node must have a ComfyUI counterpart: a mapped node type, a placeholder that came from ComfyUI (its
class type and values are written back as imported), or a UI-only node (a note is left out, a reroute or a
value primitive from a PrimitiveNode is resolved into the links and values it stands for). Otherwise
:class:`ExportError` names each node that has none. Bypassed nodes pass their input on, as in ComfyUI; muted
nodes are left out.
"""

from __future__ import annotations

from typing import Any

from nodegraph.comfy.mapping import MAPPINGS, ClassMapping, MappingTable
from nodegraph.comfy.placeholders import PLACEHOLDER_PREFIX
from nodegraph.errors import Problem, WorkflowError
from nodegraph.graph import Graph, GraphNode
from nodegraph.registry import Registry

UI_ONLY_TYPES = ("core.Note", "core.Reroute")
PRIMITIVE_TYPES = ("core.Int", "core.Float", "core.String", "core.Text", "core.Bool", "core.Seed")
INLINE_MARK = "PrimitiveNode"


class ExportError(WorkflowError):
    """The graph has nodes ComfyUI cannot run; ``problems`` names each one."""


def _mode(node: GraphNode) -> str:
    mode = getattr(node, "mode", None) or node.extra.get("mode")
    return mode if mode in ("bypass", "mute") else ""


def _comfy_data(node: GraphNode) -> dict[str, Any]:
    data = node.extra.get("comfy")
    return data if isinstance(data, dict) else {}


class Exporter:
    def __init__(self, graph: Graph, registry: Registry, mappings: MappingTable) -> None:
        self.graph = graph
        self.registry = registry
        self.mappings = mappings
        self.problems: list[Problem] = []

    def _fail(self, node_id: str, message: str, field: str = "", expected: str = "", found: str = "") -> None:
        self.problems.append(Problem("comfy_export", message, node_id, field, expected, found))

    def _is_inline(self, node: GraphNode) -> bool:
        """A value node ComfyUI has no node for (a PrimitiveNode, a seed): its value is written where it goes."""
        if _comfy_data(node).get("class_type") == INLINE_MARK:
            return True
        return node.type in PRIMITIVE_TYPES and self._mapping(node) is None

    def _mapping(self, node: GraphNode) -> ClassMapping | None:
        return self.mappings.for_node_type(node.type)

    # -- following links to what ComfyUI sees -------------------------------------------------------------

    def resolve(self, source: str, output: str, depth: int = 0) -> tuple[str, str] | None:
        """The (node, output) an input really reads, through reroutes and bypassed nodes; None if muted away."""
        node = self.graph.nodes.get(source)
        if node is None or depth > 256:
            return None
        if node.type == "core.Reroute" or _mode(node) == "bypass":
            link = self._bypass_input(node, output)
            return self.resolve(*link, depth + 1) if link else None
        if _mode(node) == "mute":
            return None
        return source, output

    def _bypass_input(self, node: GraphNode, output: str) -> tuple[str, str] | None:
        if node.type == "core.Reroute":
            return node.inputs.get("value")
        definition = self.registry.get(node.type)
        out = definition.output(output) if definition else None
        for name, link in node.inputs.items():
            field = definition.field_index.get(name) if definition else None
            field_type = getattr(field, "type", None) or getattr(field, "socket_type", None)
            if out is None or field_type is None or field_type.name == out.type.name:
                return link
        return None

    def _output_index(self, source: GraphNode, output: str, consumer: str, field: str) -> int | None:
        if source.type.startswith(PLACEHOLDER_PREFIX) and _comfy_data(source):
            if output.startswith("output_") and output[7:].isdigit():
                return int(output[7:])
        mapping = self._mapping(source)
        if mapping is not None and output in mapping.outputs:
            return mapping.outputs.index(output)
        what = mapping.class_type if mapping else source.type
        self._fail(consumer, f"reads output {output!r} of node {source.id!r}, which ComfyUI's {what} does not have",
                   field, "one of " + ", ".join(mapping.outputs) if mapping else "a mapped output", repr(output))
        return None

    def _link_value(self, node: GraphNode, field: str, link: tuple[str, str]) -> Any:
        resolved = self.resolve(*link)
        if resolved is None:
            return None
        source = self.graph.nodes[resolved[0]]
        if self._is_inline(source):
            return source.params.get("value")
        index = self._output_index(source, resolved[1], node.id, field)
        return None if index is None else [source.id, index]

    # -- nodes --------------------------------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        prompt: dict[str, Any] = {}
        for node in self.graph.nodes.values():
            if node.type in UI_ONLY_TYPES or _mode(node) or self._is_inline(node):
                continue
            entry = self._placeholder(node) if node.type.startswith(PLACEHOLDER_PREFIX) else self._mapped(node)
            if entry is not None:
                title = node.layout.get("title")
                if isinstance(title, str) and title:
                    entry["_meta"] = {"title": title}
                prompt[node.id] = entry
        if self.problems:
            raise ExportError(self.problems)
        return prompt

    def _placeholder(self, node: GraphNode) -> dict[str, Any] | None:
        data = _comfy_data(node)
        class_type = data.get("class_type")
        if not isinstance(class_type, str):
            self._fail(node.id, f"node type {node.type!r} is not installed and carries no ComfyUI data to write back")
            return None
        inputs = dict(data.get("inputs") or {})
        for name, link in node.inputs.items():
            value = self._link_value(node, name, link)
            if value is not None:
                inputs[name] = value
        return {"class_type": class_type, "inputs": inputs}

    def _mapped(self, node: GraphNode) -> dict[str, Any] | None:
        mapping = self._mapping(node)
        definition = self.registry.get(node.type)
        if mapping is None or definition is None:
            hint = " (a nodegraph-only node: ComfyUI has no node that does the same)" if definition else " (not installed)"
            self._fail(node.id, f"node type {node.type} has no ComfyUI counterpart{hint}", expected="a node type "
                       "with a ComfyUI mapping", found=node.type)
            return None
        widgets = set(mapping.widget_names()) - set(mapping.ignore)
        inputs: dict[str, Any] = {}
        params = {**definition.default_params(), **node.params}
        for field, value in params.items():
            comfy = mapping.comfy_name(field)
            if field in node.inputs:
                continue
            if comfy in widgets:
                inputs[comfy] = mapping.to_comfy_value(field, value)
        for field, link in node.inputs.items():
            value = self._link_value(node, field, link)
            if value is not None:
                inputs[mapping.comfy_name(field)] = value
        for name, value in {**mapping.export_values, **(_comfy_data(node).get("ignored") or {})}.items():
            inputs.setdefault(name, value)
        return {"class_type": mapping.class_type, "inputs": inputs}


def export_api_prompt(graph: Graph, registry: Registry, mappings: MappingTable | None = None) -> dict[str, Any]:
    """The graph in ComfyUI's API format. Raises :class:`ExportError` naming every node without a counterpart."""
    return Exporter(graph, registry, mappings or MAPPINGS).export()
