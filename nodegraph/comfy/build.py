"""From ComfyUI records to a nodegraph :class:`~nodegraph.graph.Graph`, through the mapping table.

Every record becomes one node with the same id: a mapped node (its values renamed and converted, its links
pointing at the nodegraph output names), a primitive (``core.Int``/``Float``/``String``/``Text``/``Bool``
for a PrimitiveNode, typed by what it feeds), a ``core.Reroute``, or a placeholder that keeps the ComfyUI
node's data under ``extra["comfy"]`` (an unknown node type to the engine: reported, kept on save, and
written back by the exporter's error message). Notes and groups become the workflow's notes and groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodegraph.comfy.mapping import ClassMapping
from nodegraph.comfy.placeholders import placeholder_type
from nodegraph.comfy.records import ComfyGraph, ComfyLink, ComfyNode
from nodegraph.comfy.report import ImportReport, MappedNode, Placeholder
from nodegraph.comfy.table import PENDING
from nodegraph.graph import Graph, GraphNode
from nodegraph.params import ParamError
from nodegraph.registry import Registry

REROUTE_TYPE = "core.Reroute"
NOTE_TYPE = "core.Note"


@dataclass
class BuildOptions:
    mappings: Mapping[str, ClassMapping]
    source_dir: Path | None = None  # where the imported file lies: LoadImage names are looked up beside it
    keep_modes: bool = False
    extra_layout: dict[str, Any] = field(default_factory=dict)


def _hex_rgb(color: Any) -> list[int] | None:
    if not isinstance(color, str) or not color.startswith("#"):
        return None
    digits = color[1:]
    if len(digits) in (3, 4):
        digits = "".join(c * 2 for c in digits[:3])
    try:
        return [int(digits[i : i + 2], 16) for i in (0, 2, 4)]
    except ValueError:
        return None


class GraphBuilder:
    def __init__(self, comfy: ComfyGraph, registry: Registry, report: ImportReport, options: BuildOptions) -> None:
        self.comfy = comfy
        self.registry = registry
        self.report = report
        self.options = options
        self.graph = Graph()
        self.kinds: dict[str, tuple[str, Any]] = {}  # record id -> ("mapped", mapping) | ("primitive", type) | ...
        self.records: dict[str, ComfyNode] = {**comfy.nodes, **comfy.reroutes}

    # -- deciding what each record becomes ------------------------------------------------------------------

    def _classify(self) -> None:
        consumers: dict[str, list[tuple[ComfyNode, str]]] = {}
        for record in self.records.values():
            for name, value in record.inputs.items():
                if isinstance(value, ComfyLink):
                    consumers.setdefault(value.source, []).append((record, name))
        for rid, record in self.records.items():
            if rid in self.comfy.reroutes:
                self.kinds[rid] = ("reroute", None)
            elif record.class_type == "PrimitiveNode":
                self.kinds[rid] = ("primitive", self._primitive_type(record, consumers.get(rid, [])))
            else:
                mapping = self.options.mappings.get(record.class_type)
                definition = self.registry.get(mapping.node_type) if mapping is not None else None
                if mapping is not None and definition is not None:
                    self.kinds[rid] = ("mapped", mapping)
                else:
                    self.kinds[rid] = ("placeholder", mapping)

    def _target_param(self, record: ComfyNode, name: str) -> Any:
        mapping = self.options.mappings.get(record.class_type)
        if mapping is None:
            return None
        definition = self.registry.get(mapping.node_type)
        return definition.param(mapping.field_for(name)) if definition is not None else None

    def _primitive_type(self, record: ComfyNode, consumers: list[tuple[ComfyNode, str]]) -> str:
        value = record.inputs.get("value")
        kinds = {getattr(self._target_param(r, n), "kind", None) for r, n in consumers}
        if "seed" in kinds and self.registry.get("core.Seed") is not None and isinstance(value, int):
            return "core.Seed"
        if isinstance(value, bool):
            return "core.Bool"
        if isinstance(value, (int, float)):
            return "core.Float" if (isinstance(value, float) and not float(value).is_integer()) or "float" in kinds else "core.Int"
        return "core.Text" if "text" in kinds else "core.String"

    # -- building -------------------------------------------------------------------------------------------

    def build(self) -> Graph:
        self._classify()
        for rid, record in self.records.items():
            kind, data = self.kinds[rid]
            if kind == "mapped":
                node = self._mapped(record, data)
            elif kind == "primitive":
                node = self._primitive(record, data)
            elif kind == "reroute":
                node = self._reroute(record)
            else:
                node = self._placeholder(record, data)
            self._layout(node, record)
            if self.options.keep_modes and record.mode:
                set_mode(node, record.mode)
            self.graph.nodes[rid] = node
        self._notes_and_groups()
        return self.graph

    def _output_name(self, link: ComfyLink, consumer: str) -> str | None:
        source = self.records.get(link.source)
        if source is None:
            self.report.warn(f"an input is linked to node {link.source}, which the graph does not have: left "
                             "unconnected", consumer)
            return None
        kind, data = self.kinds[link.source]
        if kind in ("primitive", "reroute"):
            return "value"
        if kind == "mapped":
            outputs = data.outputs
            if 0 <= link.slot < len(outputs):
                return outputs[link.slot]
            self.report.warn(f"an input is linked to output {link.slot} of node {link.source} ({source.class_type}), "
                             f"which has {len(outputs)} output(s): left unconnected", consumer)
            return None
        return _placeholder_output(source, link.slot)

    def _link(self, node: GraphNode, field_name: str, link: ComfyLink) -> None:
        output = self._output_name(link, node.id)
        if output is not None:
            node.inputs[field_name] = (link.source, output)

    def _mapped(self, record: ComfyNode, mapping: ClassMapping) -> GraphNode:
        definition = self.registry.get(mapping.node_type)
        assert definition is not None
        node = GraphNode(record.id, mapping.node_type, definition.version)
        ignored: dict[str, Any] = {}
        for name, value in record.inputs.items():
            if name in mapping.ignore:
                if not isinstance(value, ComfyLink):
                    ignored[name] = value
                continue
            field_name = mapping.field_for(name)
            target = definition.field_index.get(field_name)
            if target is None:
                self.report.warn(f"{record.class_type} input {name!r} has no counterpart in {mapping.node_type}: "
                                 "ignored", record.id)
                if not isinstance(value, ComfyLink):
                    ignored[name] = value
                continue
            if isinstance(value, ComfyLink):
                self._link(node, field_name, value)
                if definition.param(field_name) is not None and isinstance(getattr(node, "param_inputs", None), list):
                    node.param_inputs.append(field_name)  # a converted widget: an input socket in the editor
                continue
            param = definition.param(field_name)
            if param is None:
                self.report.warn(f"input {name!r} must be linked, found the value {value!r}", record.id)
                continue
            node.params[field_name] = self._param_value(record, mapping, param, field_name, value)
        for name, value in mapping.params.items():
            node.params.setdefault(name, value)
        if ignored:
            node.extra["comfy"] = {"class_type": record.class_type, "ignored": ignored}
        self.report.mapped.append(MappedNode(record.id, record.class_type, record.id, mapping.node_type))
        if mapping.note:
            self.report.warn(f"{record.class_type}: {mapping.note}", record.id)
        return node

    def _param_value(self, record: ComfyNode, mapping: ClassMapping, param: Any, field_name: str, value: Any) -> Any:
        value = mapping.to_node_value(field_name, value)
        if param.kind == "image_file" and isinstance(value, str):
            value = self._image_path(value, record.id)
        try:
            return param.check(value)
        except ParamError as exc:  # kept as written: validation reports it with the node and field
            self.report.warn(f"{field_name}: expected {exc.expected}, found {exc.found}", record.id)
            return value

    def _image_path(self, name: str, node_id: str) -> str:
        """ComfyUI names input images relative to its input folder ("name.png [input]" in some files)."""
        clean = name
        for suffix in (" [input]", " [output]", " [temp]"):
            clean = clean.removesuffix(suffix)
        if not clean or Path(clean).is_absolute():
            return clean
        if ".." in Path(clean).parts:  # ComfyUI refuses names outside its input folder; so does the import
            self.report.warn(f"input image {clean!r} points outside the input folder: not looked up", node_id)
            return clean
        roots = [d for d in (self.options.source_dir, Path.cwd()) if d is not None]
        for root in roots:
            for candidate in (root / clean, root / "input" / clean):
                if candidate.is_file():
                    return str(candidate.resolve())
        self.report.warn(f"input image {clean!r} was not found beside the workflow nor in an 'input' folder: "
                         "choose the file on the Load Image node", node_id)
        return clean

    def _primitive(self, record: ComfyNode, node_type: str) -> GraphNode:
        definition = self.registry.get(node_type)
        value = record.inputs.get("value")
        node = GraphNode(record.id, node_type, definition.version if definition else 1)
        if value is not None:
            param = definition.param("value") if definition else None
            node.params["value"] = float(value) if node_type == "core.Float" and isinstance(value, int) else value
            if param is not None:
                try:
                    node.params["value"] = param.check(node.params["value"])
                except ParamError as exc:
                    self.report.warn(f"primitive value: expected {exc.expected}, found {exc.found}", record.id)
        node.extra["comfy"] = {"class_type": "PrimitiveNode"}  # UI-only in ComfyUI: an export writes its value inline
        self.report.mapped.append(MappedNode(record.id, "PrimitiveNode", record.id, node_type))
        return node

    def _reroute(self, record: ComfyNode) -> GraphNode:
        definition = self.registry.get(REROUTE_TYPE)
        node = GraphNode(record.id, REROUTE_TYPE, definition.version if definition else 1)
        link = next((v for v in record.inputs.values() if isinstance(v, ComfyLink)), None)
        if link is not None:
            self._link(node, "value", link)
        return node

    def _placeholder(self, record: ComfyNode, mapping: ClassMapping | None) -> GraphNode:
        node = GraphNode(record.id, placeholder_type(record.class_type))
        values: dict[str, Any] = {}
        for name, value in record.inputs.items():
            if isinstance(value, ComfyLink):
                self._link(node, name, value)
            else:
                values[name] = value
        data: dict[str, Any] = {"class_type": record.class_type, "pack": record.pack, "inputs": values}
        if record.widgets_values is not None:
            data["widgets_values"] = record.widgets_values
        if record.output_names:
            data["outputs"] = list(record.output_names)
        node.extra["comfy"] = data
        if mapping is not None:
            reason = f"maps to {mapping.node_type}, which is not installed"
        elif record.class_type in PENDING:
            reason = PENDING[record.class_type]
        elif record.pack and record.pack != "comfy-core":
            reason = "a custom node pack this product has no mapping for"
        else:
            reason = "no mapping for this class type"
        self.report.placeholders.append(Placeholder(record.id, record.class_type, record.pack, record.id, reason))
        return node

    def _layout(self, node: GraphNode, record: ComfyNode) -> None:
        if record.pos is not None:
            node.layout["x"], node.layout["y"] = round(record.pos[0]), round(record.pos[1])
        if record.title:
            node.layout["title"] = record.title
        rgb = _hex_rgb(record.color)
        if rgb is not None:
            node.layout["color"] = rgb

    def _notes_and_groups(self) -> None:
        note_def = self.registry.get(NOTE_TYPE)
        kept_notes = []
        for note in self.comfy.notes:
            if note_def is not None:
                node = GraphNode(note.id, NOTE_TYPE, note_def.version, {"text": note.text})
                if note.pos is not None:
                    node.layout["x"], node.layout["y"] = round(note.pos[0]), round(note.pos[1])
                if note.title:
                    node.layout["title"] = note.title
                self.graph.nodes[note.id] = node
            else:
                kept_notes.append({"id": note.id, "title": note.title, "text": note.text,
                                   **({"x": round(note.pos[0]), "y": round(note.pos[1])} if note.pos else {})})
        if kept_notes:
            self.graph.meta.setdefault("comfy", {})["notes"] = kept_notes
        if self.comfy.notes:
            where = "as Note nodes" if note_def is not None else "in the workflow's metadata (no Note node type here)"
            self.report.layout.append(f"{len(self.comfy.notes)} note(s) kept {where}")
        self.report.layout.extend(self.comfy.resolved_modes)
        if self.comfy.reroutes:
            self.report.layout.append(f"{len(self.comfy.reroutes)} reroute(s) kept as Reroute nodes")
        groups = []
        for group in self.comfy.groups:
            entry: dict[str, Any] = {"title": group.title, "rect": [round(v) for v in group.rect]}
            rgb = _hex_rgb(group.color)
            if rgb is not None:
                entry["color"] = "#{:02x}{:02x}{:02x}".format(*rgb)
            groups.append(entry)
        if groups:
            set_groups(self.graph, groups)
            self.report.layout.append(f"{len(groups)} group(s) kept")


def set_mode(node: GraphNode, mode: str) -> None:
    """Bypass / mute on the node as the workflow file keeps it (a node attribute from file version 2)."""
    if hasattr(node, "mode"):
        node.mode = mode  # type: ignore[attr-defined]
    else:
        node.extra["mode"] = mode


def set_groups(graph: Graph, groups: list[dict[str, Any]]) -> None:
    """Groups go where the workflow file keeps them (a graph attribute from file version 2, else its meta)."""
    if isinstance(getattr(graph, "groups", None), list):
        graph.groups = groups  # type: ignore[attr-defined]
    else:
        graph.meta["groups"] = groups


def _placeholder_output(record: ComfyNode, slot: int) -> str:
    return f"output_{slot}"


def build_graph(comfy: ComfyGraph, registry: Registry, report: ImportReport, options: BuildOptions) -> Graph:
    return GraphBuilder(comfy, registry, report, options).build()


__all__ = ["BuildOptions", "GraphBuilder", "build_graph", "placeholder_type"]
