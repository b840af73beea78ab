"""Reading ComfyUI's UI format (the ``.json`` the editor saves, the ``workflow`` text chunk of its PNGs).

Schema 0.4 stores links as arrays, schema 1 as objects; both store each node's widget values positionally
(see :mod:`nodegraph.comfy.widgets`). Subgraphs and legacy group nodes are flattened (see
:mod:`nodegraph.comfy.scopes`); PrimitiveNode, Reroute, Note and MarkdownNote become records of their own;
groups keep their title, colour and rectangle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nodegraph.comfy.mapping import ClassMapping, widget_name
from nodegraph.comfy.records import ComfyGraph, ComfyGroup, ComfyLink, ComfyNode, ComfyNote
from nodegraph.comfy.scopes import (
    SUBGRAPH_INPUT,
    SUBGRAPH_OUTPUT,
    Endpoint,
    RawLink,
    Scope,
    as_int,
    group_name,
    is_group_node,
    items,
    node_mode,
    scope_links,
)
from nodegraph.comfy.widgets import is_control_slot, name_widget_values
from nodegraph.errors import Problem, WorkflowError
from nodegraph.params import describe

MAX_DEPTH = 16  # nesting of subgraphs / group nodes; deeper (or self-containing) definitions are refused
NOTE_TYPES = {"Note": False, "MarkdownNote": True}


@dataclass
class UiOptions:
    """What the engine can keep as it is (otherwise the reader resolves it away)."""

    keep_reroutes: bool = False
    keep_modes: bool = False
    mappings: Mapping[str, ClassMapping] = field(default_factory=dict)


def schema_kind(doc: dict) -> str:
    version = doc.get("version")
    if version == 1 or (isinstance(doc.get("links"), list) and doc["links"] and isinstance(doc["links"][0], dict)):
        return "ui-1"
    return "ui-0.4"


def _pos(raw: dict) -> tuple[float, float] | None:
    pos = raw.get("pos")
    if isinstance(pos, dict):
        pos = [pos.get("0"), pos.get("1")]
    if isinstance(pos, (list, tuple)) and len(pos) >= 2 and all(isinstance(v, (int, float)) for v in pos[:2]):
        return float(pos[0]), float(pos[1])
    return None


def _pack(raw: dict) -> str:
    props = raw.get("properties")
    if isinstance(props, dict):
        for key in ("cnr_id", "aux_id"):
            if isinstance(props.get(key), str) and props[key]:
                return props[key]
    return ""


class UiReader:
    """Reads one UI-format document into a :class:`ComfyGraph` (see :func:`read_ui_workflow`)."""

    def __init__(self, doc: dict, options: UiOptions) -> None:
        self.doc = doc
        self.options = options
        self.graph = ComfyGraph(kind=schema_kind(doc))
        self.warnings: list[tuple[str, str]] = []  # (node, message)
        self.subgraphs: dict[str, dict] = {}
        self.group_defs: dict[str, dict] = {}
        self.children: dict[int, dict[str, Scope]] = {}  # id(scope) -> local id -> child scope
        self._collect_definitions(doc, 0)
        extra = doc.get("extra")
        if isinstance(extra, dict) and isinstance(extra.get("groupNodes"), dict):
            self.group_defs = {k: v for k, v in extra["groupNodes"].items() if isinstance(v, dict)}

    def warn(self, message: str, node: str = "") -> None:
        self.warnings.append((node, message))

    # -- definitions and scopes ---------------------------------------------------------------------------

    def _collect_definitions(self, doc: dict, depth: int) -> None:
        definitions = doc.get("definitions")
        subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
        for sub in subgraphs if isinstance(subgraphs, list) else []:
            if isinstance(sub, dict) and isinstance(sub.get("id"), str):
                self.subgraphs.setdefault(sub["id"], sub)
                if depth < MAX_DEPTH:
                    self._collect_definitions(sub, depth + 1)

    def build_scope(self, prefix: str, raw_nodes: Any, raw_links: Any, *, parent: Scope | None = None,
                    instance: dict | None = None, kind: str = "top", mode: str = "", stack: tuple = ()) -> Scope:
        scope = Scope(prefix, parent=parent, instance=instance, kind=kind, mode=mode)
        for raw in raw_nodes if isinstance(raw_nodes, list) else []:
            if isinstance(raw, dict) and raw.get("id") is not None:
                scope.nodes[str(raw["id"])] = raw
            else:
                self.warn(f"a node without an id was skipped: {describe(raw)}")
        scope_links(scope, raw_links, lambda m: self.warn(m))
        children: dict[str, Scope] = {}
        for local_id, raw in scope.nodes.items():
            node_type = raw.get("type")
            inner_mode = scope.mode or node_mode(raw)
            if isinstance(node_type, str) and node_type in self.subgraphs:
                if node_type in stack or len(stack) >= MAX_DEPTH:
                    raise WorkflowError([Problem("comfy_subgraph_loop", "a subgraph contains itself (or nests too "
                                                 "deeply)", scope.gid(local_id), "type", f"at most {MAX_DEPTH} levels",
                                                 node_type)])
                sub = self.subgraphs[node_type]
                children[local_id] = self.build_scope(
                    f"{scope.gid(local_id)}:", items(sub, "nodes"), items(sub, "links"), parent=scope, instance=raw,
                    kind="subgraph", mode=inner_mode, stack=(*stack, node_type),
                )
                children[local_id].definition = sub
            elif is_group_node(node_type):
                definition = self.group_defs.get(group_name(node_type))
                if definition is None:
                    continue  # reported as an unknown node type with its data kept
                children[local_id] = self._group_scope(scope, local_id, raw, definition, inner_mode)
        self.children[id(scope)] = children
        return scope

    def _group_scope(self, parent: Scope, local_id: str, raw: dict, definition: dict, mode: str) -> Scope:
        """A legacy group node: inner nodes by index, inputs and outputs numbered as the frontend numbers them."""
        inner_nodes = [n for n in items(definition, "nodes") if isinstance(n, dict)]
        scope = Scope(f"{parent.gid(local_id)}:", parent=parent, instance=raw, kind="group", mode=mode,
                      definition=definition)
        for index, node in enumerate(inner_nodes):
            scope.nodes[str(index)] = {**node, "id": index}
        for link in items(definition, "links"):
            if isinstance(link, list) and len(link) >= 4 and link[0] is not None:
                scope.add_link(RawLink(str(link[0]), as_int(link[1]), str(link[2]), as_int(link[3]),
                                       link[5] if len(link) > 5 else None))
        external = {(str(e[0]), as_int(e[1])) for e in items(definition, "external") if isinstance(e, list) and len(e) >= 2}
        count = 0
        converted: list[tuple[str, int]] = []
        for index, node in enumerate(inner_nodes):
            for slot, inp in enumerate(items(node, "inputs")):
                if (str(index), slot) in scope.into or not isinstance(inp, dict):
                    continue
                if inp.get("widget"):
                    converted.append((str(index), slot))  # converted widgets come after every plain input
                else:
                    scope.group_inputs[count] = (str(index), slot)
                    count += 1
        for target in converted:
            scope.group_inputs[count] = target
            count += 1
        out = 0
        for index, node in enumerate(inner_nodes):
            for slot, _ in enumerate(items(node, "outputs")):
                internal = (str(index), slot) in scope.out_of
                if internal and (str(index), slot) not in external:
                    continue  # linked inside only: hidden on the group node
                scope.group_outputs[out] = (str(index), slot)
                out += 1
        self.children[id(scope)] = {}
        self.warn(f"legacy group node {group_name(raw.get('type', ''))!r} expanded into {len(inner_nodes)} node(s)",
                  parent.gid(local_id))
        return scope

    # -- resolving links ------------------------------------------------------------------------------------

    def _instance_local_id(self, scope: Scope) -> str:
        return str(scope.instance.get("id")) if scope.instance else ""

    def source(self, scope: Scope, target: str, slot: int, depth: int = 0) -> Endpoint | None:
        """Where input ``slot`` of node ``target`` (local to ``scope``) really gets its value, or None."""
        if depth > 256:
            return None
        link = scope.into.get((target, slot))
        if link is None:
            if scope.kind == "group" and scope.parent is not None:
                for k, inner in scope.group_inputs.items():
                    if inner == (target, slot):
                        return self.source(scope.parent, self._instance_local_id(scope), k, depth + 1)
            return None
        return self.output(scope, link.origin, link.origin_slot, depth + 1)

    def output(self, scope: Scope, origin: str, slot: int, depth: int = 0) -> Endpoint | None:
        """What output ``slot`` of node ``origin`` (local to ``scope``) carries, followed to its producer."""
        if depth > 256:
            return None
        if origin == SUBGRAPH_INPUT and scope.kind == "subgraph" and scope.parent is not None:
            return self.source(scope.parent, self._instance_local_id(scope), slot, depth + 1)
        child = self.children.get(id(scope), {}).get(origin)
        if child is not None and child.kind == "subgraph":
            inner = child.into.get((SUBGRAPH_OUTPUT, slot))
            return self.output(child, inner.origin, inner.origin_slot, depth + 1) if inner else None
        if child is not None and child.kind == "group":
            inner_target = child.group_outputs.get(slot)
            return self.output(child, inner_target[0], inner_target[1], depth + 1) if inner_target else None
        raw = scope.nodes.get(origin)
        if raw is None:
            return None
        node_type = raw.get("type")
        if node_type == "Reroute" and not self.options.keep_reroutes:
            return self.source(scope, origin, 0, depth + 1)
        mode = scope.mode or node_mode(raw)
        if mode and not self.options.keep_modes and node_type not in ("PrimitiveNode", "Reroute"):
            if mode == "mute":
                return None
            return self._bypass(scope, origin, raw, slot, depth)
        return Endpoint(scope.gid(origin), slot)

    def _bypass(self, scope: Scope, origin: str, raw: dict, slot: int, depth: int) -> Endpoint | None:
        """ComfyUI's bypass: the output carries the input of the same type (the same index first)."""
        outputs, inputs = items(raw, "outputs"), items(raw, "inputs")
        wanted = outputs[slot].get("type") if 0 <= slot < len(outputs) and isinstance(outputs[slot], dict) else None
        order = ([slot] if 0 <= slot < len(inputs) else []) + [i for i in range(len(inputs)) if i != slot]
        for i in order:
            inp = inputs[i]
            if isinstance(inp, dict) and inp.get("type") == wanted and (origin, i) in scope.into:
                return self.source(scope, origin, i, depth + 1)
        return None

    # -- records ----------------------------------------------------------------------------------------------

    def read(self) -> ComfyGraph:
        top = self.build_scope("", items(self.doc, "nodes"), items(self.doc, "links"))
        self._records(top, None)
        for raw in items(self.doc, "groups"):
            group = _group(raw)
            if group is not None:
                self.graph.groups.append(group)
        return self.graph

    def _records(self, scope: Scope, offset: tuple[float, float] | None) -> None:
        children = self.children.get(id(scope), {})
        origin = self._origin(scope) if offset is not None else (0.0, 0.0)
        for local_id, raw in scope.nodes.items():
            if local_id in children:
                child = children[local_id]
                self._records(child, _pos(raw) or (0.0, 0.0))
                continue
            gid = scope.gid(local_id)
            pos = _pos(raw)
            if pos is not None and offset is not None:
                pos = (offset[0] + pos[0] - origin[0], offset[1] + pos[1] - origin[1])
            node_type = raw.get("type")
            if not isinstance(node_type, str) or not node_type:
                self.warn(f"a node without a type was skipped: {describe(node_type)}", gid)
                continue
            if node_type in NOTE_TYPES:
                values = raw.get("widgets_values")
                text = values[0] if isinstance(values, list) and values and isinstance(values[0], str) else ""
                self.graph.notes.append(ComfyNote(gid, text, raw.get("title") or "", pos, NOTE_TYPES[node_type]))
                continue
            if node_type == "Reroute" and not self.options.keep_reroutes:
                continue
            mode = scope.mode or node_mode(raw)
            if mode and not self.options.keep_modes and node_type not in ("PrimitiveNode", "Reroute"):
                what = "its inputs pass straight on to what it fed" if mode == "bypass" else "it and its outputs are left out"
                self.graph.resolved_modes.append(f"node {gid} ({node_type}) is {'bypassed' if mode == 'bypass' else 'muted'}: {what}")
                continue
            record = self._record(scope, local_id, raw, gid, pos)
            if node_type == "Reroute":
                self.graph.reroutes[gid] = record
            else:
                self.graph.nodes[gid] = record
        if scope.kind == "subgraph":
            self._apply_promoted_widgets(scope)
        elif scope.kind == "group":
            self._apply_group_widgets(scope)

    def _origin(self, scope: Scope) -> tuple[float, float]:
        points = [p for p in (_pos(r) for r in scope.nodes.values()) if p is not None]
        return (min(p[0] for p in points), min(p[1] for p in points)) if points else (0.0, 0.0)

    def _record(self, scope: Scope, local_id: str, raw: dict, gid: str, pos: tuple[float, float] | None) -> ComfyNode:
        node_type = raw["type"]
        mode = (scope.mode or node_mode(raw)) if self.options.keep_modes else ""
        props = raw.get("properties") if isinstance(raw.get("properties"), dict) else {}
        record = ComfyNode(gid, node_type, title=raw.get("title") if isinstance(raw.get("title"), str) else "",
                           pos=pos, color=raw.get("bgcolor") or raw.get("color"), mode=mode, pack=_pack(raw),
                           properties=dict(props))
        linked: set[str] = set()
        converted: set[str] = set()
        for slot, inp in enumerate(items(raw, "inputs")):
            if not isinstance(inp, dict) or not isinstance(inp.get("name"), str):
                continue
            name = inp["name"]
            widget = inp.get("widget")
            if isinstance(widget, dict) and isinstance(widget.get("name"), str):
                name = widget["name"]
                converted.add(name)
            record.input_types[name] = str(inp.get("type", ""))
            endpoint = self.source(scope, local_id, slot)
            if endpoint is None:
                continue
            linked.add(name)
            record.inputs[name] = endpoint.value if endpoint.is_value else ComfyLink(endpoint.node, endpoint.slot)
        for out in items(raw, "outputs"):
            if isinstance(out, dict):
                record.output_names.append(str(out.get("name", "")))
                record.output_types.append(str(out.get("type", "")))
        named_values = raw.get("widgets_values_named")
        values = named_values if isinstance(named_values, dict) else raw.get("widgets_values")
        mapping = self.options.mappings.get(node_type)
        if node_type == "PrimitiveNode":
            if isinstance(values, list) and values:
                record.inputs["value"] = values[0]
        elif mapping is not None:
            named, warning = name_widget_values(mapping.widget_lists(), values, linked, converted)
            if warning:
                self.warn(f"{node_type}: {warning}", gid)
            for name, value in named.items():
                record.inputs.setdefault(name, value)
        record.widgets_values = values
        return record

    def _apply_promoted_widgets(self, scope: Scope) -> None:
        """Values a subgraph instance shows for inner widgets override the definition's (newer frontends)."""
        instance = scope.instance or {}
        values = instance.get("widgets_values")
        props = instance.get("properties") if isinstance(instance.get("properties"), dict) else {}
        exposed = props.get("proxyWidgets") or [
            [w.get("id"), w.get("name")] for w in items(scope.definition or {}, "widgets") if isinstance(w, dict)
        ]
        if not isinstance(values, list) or not isinstance(exposed, list) or len(values) != len(exposed):
            return
        for value, entry in zip(values, exposed):
            if isinstance(entry, (list, tuple)) and len(entry) == 2:
                record = self.graph.nodes.get(scope.gid(str(entry[0])))
                if record is not None and isinstance(entry[1], str) and not isinstance(record.inputs.get(entry[1]), ComfyLink):
                    record.inputs[entry[1]] = value

    def _apply_group_widgets(self, scope: Scope) -> None:
        """A legacy group node's own widget values, in inner-node order, override the definition's."""
        values = (scope.instance or {}).get("widgets_values")
        if not isinstance(values, list) or not values:
            return
        assignments: list[tuple[ComfyNode, str, Any]] = []
        i = 0
        for local_id in scope.nodes:
            record = self.graph.nodes.get(scope.gid(local_id))
            mapping = self.options.mappings.get(record.class_type) if record is not None else None
            if mapping is None:
                continue
            for entry in mapping.widgets:
                name = widget_name(entry)
                if isinstance(record.inputs.get(name), ComfyLink):
                    continue
                if i >= len(values):
                    break
                assignments.append((record, name, values[i]))
                i += 1
                if entry.endswith("*") and i < len(values) and is_control_slot(values[i]):
                    i += 1
        if i != len(values):
            self.warn(f"the group node's {len(values)} widget value(s) do not fit its inner nodes' widgets: the "
                      "values saved in the group's definition are used", scope.prefix.rstrip(":"))
            return
        for record, name, value in assignments:
            record.inputs[name] = value


def _group(raw: Any) -> ComfyGroup | None:
    if not isinstance(raw, dict):
        return None
    box = raw.get("bounding")
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        return None
    title = raw.get("title") if isinstance(raw.get("title"), str) else ""
    color = raw.get("color") if isinstance(raw.get("color"), str) else None
    return ComfyGroup(title, (float(box[0]), float(box[1]), float(box[2]), float(box[3])), color)


def read_ui_workflow(doc: Any, options: UiOptions | None = None) -> tuple[ComfyGraph, list[tuple[str, str]]]:
    """Records of a UI-format document and the reader's warnings ``(node, message)``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        raise WorkflowError([Problem("not_comfy_ui", "a ComfyUI UI-format workflow has a 'nodes' list", field="nodes",
                                     expected="a list of nodes", found=describe(doc.get("nodes") if isinstance(doc, dict) else doc))])
    reader = UiReader(doc, options or UiOptions())
    graph = reader.read()
    return graph, reader.warnings
