"""The open workflow: the engine :class:`~nodegraph.Graph` (the truth), its file and its undo stack.

Every edit goes through a method here, which checks it with the engine's rules and pushes an undoable
command (:mod:`ui.commands`). The signals tell the views what changed; views never change the graph.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from nodegraph.graph import MODES, Graph, GraphNode, LinkRefused, input_socket
from nodegraph.node import NodeDef
from nodegraph.registry import Registry
from nodegraph.workflow import save_workflow, to_document
from ui.commands import (
    AddNodesCommand,
    RemoveNodesCommand,
    SetGroupsCommand,
    SetLayoutCommand,
    SetLinksCommand,
    SetNodeFieldsCommand,
    SetParamCommand,
    UpgradeNodesCommand,
)

Link = tuple[str, str]


class Document(QObject):
    node_added = Signal(str)
    node_removed = Signal(str)
    inputs_changed = Signal(str)  # the links into this node changed
    param_changed = Signal(str, str)
    layout_changed = Signal(str)
    node_replaced = Signal(str)  # a node's version and parameters changed together (an upgrade)
    node_changed = Signal(str)  # a node's mode or parameter inputs changed
    groups_changed = Signal()
    reset = Signal()  # a whole new graph (new, open)
    path_changed = Signal()

    def __init__(self, registry: Registry, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.graph = Graph()
        self.path: Path | None = None
        self.undo_stack = QUndoStack(self)
        # extra starting values for a new node (the canvas picks a model when exactly one is installed)
        self.initial_params: Callable[[NodeDef], dict[str, Any]] = lambda definition: {}

    # -- whole documents -------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def replace(self, graph: Graph, path: Path | None, *, dirty: bool = False) -> None:
        """Show another graph (New, Open, recovery). The canvas places nodes that have no position."""
        self.graph = graph
        self.path = path
        self.undo_stack.clear()
        if dirty:
            # a recovered or imported graph is not saved anywhere yet: an empty macro makes the stack unclean
            self.undo_stack.beginMacro("recover")
            self.undo_stack.endMacro()
            self.undo_stack.resetClean()
        self.reset.emit()
        self.path_changed.emit()

    def open(self, path: str | Path) -> None:
        """Load a workflow file or a PNG saved by the product, or import a ComfyUI workflow (JSON, PNG, WebP;
        its report is left in ``import_report``). Raises WorkflowError for a bad file."""
        from nodegraph.comfy.files import load_any

        path = Path(path)
        graph, self.import_report = load_any(path, self.registry)
        # a PNG is an image and a ComfyUI file is not ours to overwrite: saving must ask for a .json name
        keep_path = self.import_report is None and path.suffix.lower() not in (".png", ".webp")
        self.replace(graph, path if keep_path else None, dirty=self.import_report is not None)

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("the workflow has no file name yet")
        save_workflow(self.graph, target)
        self.path = target
        self.undo_stack.setClean()
        self.path_changed.emit()
        return target

    def document(self) -> dict[str, Any]:
        return to_document(self.graph)

    # -- edits (each one undoable) ---------------------------------------------------------------

    def add_node(self, node_type: str, pos: tuple[float, float] = (0.0, 0.0), params: dict[str, Any] | None = None) -> str:
        """Add a node of a registered type; returns its id. Raises KeyError for an unknown type."""
        node = self._new_node(node_type, pos, params)
        definition = self.registry.get(node_type)
        self.undo_stack.push(AddNodesCommand(self, [node], f"add {definition.name if definition else node_type}"))
        return node.id

    def _new_node(self, node_type: str, pos: tuple[float, float], params: dict[str, Any] | None) -> GraphNode:
        definition = self.registry.get(node_type)
        if definition is None:
            raise KeyError(f"unknown node type {node_type!r}")
        values = {**self.initial_params(definition), **(params or {})}
        scratch = Graph(self.graph.nodes.values())
        return scratch.add_node(self.registry, node_type, params=values, layout={"x": round(pos[0]), "y": round(pos[1])})

    def add_linked_node(self, node_type: str, pos: tuple[float, float], link: tuple[str, str, str, str]) -> str:
        """Add a node and a link to or from it as one undo step. ``link`` is (source, output, target, input)
        with the new node's place written as ``""``. Raises LinkRefused (and adds nothing) if refused."""
        node = self._new_node(node_type, pos, None)
        source, output, target, input_name = (node.id if part == "" else part for part in link)
        scratch = self.graph.copy()
        scratch.nodes[node.id] = copy.deepcopy(node)
        scratch.connect(self.registry, source, output, target, input_name)
        definition = self.registry.get(node_type)
        self.undo_stack.beginMacro(f"add {definition.name if definition else node_type}")
        self.undo_stack.push(AddNodesCommand(self, [node], "add"))
        if input_name in definition.field_index and target == node.id and definition.param(input_name) is not None:
            self.undo_stack.push(SetNodeFieldsCommand(self, {node.id: {"param_inputs": [input_name]}}, "parameter to input"))
        self.undo_stack.push(SetLinksCommand(self, {(target, input_name): (source, output)}, "connect"))
        self.undo_stack.endMacro()
        return node.id

    def remove_nodes(self, node_ids: Iterable[str]) -> None:
        ids = [i for i in dict.fromkeys(node_ids) if i in self.graph.nodes]
        if ids:
            self.undo_stack.push(RemoveNodesCommand(self, ids))

    def set_links(self, changes: dict[tuple[str, str], Link | None], text: str = "connect") -> None:
        """Apply link changes as one undo step. Raises :class:`LinkRefused` (and changes nothing) if the
        engine's rule refuses any of the new links."""
        changes = {k: v for k, v in changes.items() if self.graph.nodes[k[0]].inputs.get(k[1]) != v}
        if not changes:
            return
        scratch = self.graph.copy()
        for (target, name), link in changes.items():
            if link is None:
                scratch.disconnect(target, name)
        for (target, name), link in changes.items():
            if link is not None:
                scratch.connect(self.registry, link[0], link[1], target, name)
        self.undo_stack.push(SetLinksCommand(self, changes, text))

    def connect(self, source: str, output: str, target: str, input_name: str) -> None:
        self.set_links({(target, input_name): (source, output)}, "connect")

    def disconnect(self, target: str, input_name: str) -> None:
        if input_name in self.graph.nodes[target].inputs:
            self.set_links({(target, input_name): None}, "disconnect")

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set a parameter, checked by its kind (raises ParamError for a value out of bounds)."""
        node = self.graph.nodes[node_id]
        definition = self.registry.get(node.type)
        param = definition.param(name) if definition else None
        if definition is not None and param is None:
            raise KeyError(f"node {node_id!r} ({node.type}) has no parameter {name!r}")
        value = param.check(value) if param else value
        if node.params.get(name) == value and name in node.params:
            return
        self.undo_stack.push(SetParamCommand(self, node_id, name, value))

    def move_nodes(self, positions: dict[str, tuple[float, float]]) -> None:
        changes = {
            node_id: {"x": round(x), "y": round(y)}
            for node_id, (x, y) in positions.items()
            if node_id in self.graph.nodes
            and (self.graph.nodes[node_id].layout.get("x"), self.graph.nodes[node_id].layout.get("y")) != (round(x), round(y))
        }
        if changes:
            self.undo_stack.push(SetLayoutCommand(self, changes, f"move {len(changes)} node(s)"))

    def set_title(self, node_id: str, title: str) -> None:
        """Rename a node; an empty title (or the type's own name) goes back to the type's name."""
        node = self.graph.nodes[node_id]
        definition = self.registry.get(node.type)
        title = title.strip()
        value = None if not title or (definition is not None and title == definition.name) else title
        if node.layout.get("title") != value:
            self.undo_stack.push(SetLayoutCommand(self, {node_id: {"title": value}}, "rename node"))

    def set_color(self, node_id: str, color: tuple[int, int, int] | None) -> None:
        value = list(color) if color is not None else None
        if self.graph.nodes[node_id].layout.get("color") != value:
            self.undo_stack.push(SetLayoutCommand(self, {node_id: {"color": value}}, "colour node"))

    def set_size(self, node_id: str, size: tuple[float, float] | None) -> None:
        """A node's size set with its resize grip (None: back to the size its fields need)."""
        layout = self.graph.nodes[node_id].layout
        width, height = (round(size[0]), round(size[1])) if size is not None else (None, None)
        if (layout.get("width"), layout.get("height")) != (width, height):
            self.undo_stack.push(SetLayoutCommand(self, {node_id: {"width": width, "height": height}}, "resize node"))

    def set_mode(self, node_ids: Iterable[str], mode: str | None) -> None:
        """Bypass or mute nodes (None: back to normal); one undo step."""
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown node mode {mode!r}")
        changes = {i: {"mode": mode} for i in node_ids if i in self.graph.nodes and self.graph.nodes[i].mode != mode}
        if changes:
            text = {None: "back to normal", "bypass": "bypass", "mute": "mute"}[mode]
            self.undo_stack.push(SetNodeFieldsCommand(self, changes, f"{text} {len(changes)} node(s)"))

    def toggle_mode(self, node_ids: Iterable[str], mode: str) -> None:
        """Ctrl+B / Ctrl+M: set the mode on the nodes, or clear it if all of them have it already."""
        ids = [i for i in node_ids if i in self.graph.nodes]
        if ids:
            self.set_mode(ids, None if all(self.graph.nodes[i].mode == mode for i in ids) else mode)

    def set_param_input(self, node_id: str, name: str, as_input: bool) -> None:
        """Show a parameter as an input socket (``as_input``) or back as a field. Turning it back drops the
        link that drove it (one undo step)."""
        node = self.graph.nodes[node_id]
        definition = self.registry.get(node.type)
        if definition is None or definition.param(name) is None:
            raise KeyError(f"node {node_id!r} ({node.type}) has no parameter {name!r}")
        names = [n for n in node.param_inputs if n != name] + ([name] if as_input else [])
        if names == node.param_inputs:
            return
        label = definition.param(name).label or name
        self.undo_stack.beginMacro(f"{label} {'to input' if as_input else 'to field'}")
        if not as_input and name in node.inputs:
            self.undo_stack.push(SetLinksCommand(self, {(node_id, name): None}, "disconnect"))
        self.undo_stack.push(SetNodeFieldsCommand(self, {node_id: {"param_inputs": names}}, "parameter inputs"))
        self.undo_stack.endMacro()

    def connect_to_param(self, source: str, output: str, target: str, name: str) -> None:
        """A link dropped on a parameter's field: the parameter becomes an input and the link is made (one
        undo step). Raises LinkRefused if the types do not fit."""
        scratch = self.graph.copy()
        scratch.connect(self.registry, source, output, target, name)
        node = self.graph.nodes[target]
        self.undo_stack.beginMacro("connect to parameter")
        if name not in node.param_inputs:
            self.undo_stack.push(SetNodeFieldsCommand(self, {target: {"param_inputs": [*node.param_inputs, name]}}, "parameter to input"))
        self.undo_stack.push(SetLinksCommand(self, {(target, name): (source, output)}, "connect"))
        self.undo_stack.endMacro()

    def accepts(self, node_id: str, name: str, type_name: str) -> bool:
        """Whether input or parameter ``name`` of a node takes a value of this socket type."""
        from nodegraph.types import compatible, type_named

        definition = self.registry.get(self.graph.nodes[node_id].type)
        socket = input_socket(definition, name) if definition is not None else None
        return socket is not None and compatible(type_named(type_name), socket)

    # -- groups ----------------------------------------------------------------------------------

    def set_groups(self, groups: list[dict[str, Any]], text: str) -> None:
        if groups != self.graph.groups:
            self.undo_stack.push(SetGroupsCommand(self, groups, text))

    def add_group(self, rect: tuple[float, float, float, float], title: str = "Group", color: str = "#3f6f9f") -> int:
        group = {"title": title, "color": color, "rect": [round(v) for v in rect]}
        self.set_groups([*self.graph.groups, group], "add group")
        return len(self.graph.groups) - 1

    def update_group(self, index: int, text: str = "edit group", **changes: Any) -> None:
        groups = copy.deepcopy(self.graph.groups)
        groups[index].update(changes)
        self.set_groups(groups, text)

    def remove_group(self, index: int) -> None:
        groups = copy.deepcopy(self.graph.groups)
        del groups[index]
        self.set_groups(groups, "delete group")

    def move_group(self, index: int, rect: list[float], positions: dict[str, tuple[float, float]]) -> None:
        """A group dragged to ``rect`` with the nodes inside it at ``positions``: one undo step."""
        groups = copy.deepcopy(self.graph.groups)
        groups[index]["rect"] = [round(v) for v in rect]
        self.undo_stack.beginMacro("move group")
        self.set_groups(groups, "move group")
        self.move_nodes(positions)
        self.undo_stack.endMacro()

    def upgrade_nodes(self) -> tuple[list[str], list[str]]:
        """Bring nodes saved by an older version of their type up to the installed one, through the type's
        ``migrate`` (as opening the file would have done); one undo step. Needed after a plugin reload made a
        newer version available. Returns (upgraded node ids, one line per node whose migration failed)."""
        after: dict[str, tuple[int, dict[str, Any]]] = {}
        failures: list[str] = []
        for node in self.graph.nodes.values():
            definition = self.registry.get(node.type)
            if definition is None or node.version >= definition.version:
                continue
            params = dict(node.params)
            if definition.migrate is not None:
                try:
                    params = dict(definition.migrate(node.version, copy.deepcopy(params)))
                except Exception as exc:  # a plugin's migration is foreign code: report it, keep the node as is
                    failures.append(f"{node.id}: could not upgrade {node.type} from version {node.version}: {exc}")
                    continue
            after[node.id] = (definition.version, params)
        if after:
            self.undo_stack.push(UpgradeNodesCommand(self, after, f"upgrade {len(after)} node(s)"))
        return list(after), failures

    # -- clipboard -------------------------------------------------------------------------------

    def fragment(self, node_ids: Iterable[str]) -> dict[str, Any]:
        """A workflow document holding only these nodes, with all their input links (what Copy puts on the
        clipboard; a plain paste keeps the links among the copied nodes, Ctrl+Shift+V the others too)."""
        wanted = set(node_ids)
        chosen = [i for i in self.graph.nodes if i in wanted]  # in the file's order
        return to_document(Graph(copy.deepcopy(self.graph.nodes[i]) for i in chosen))

    def paste(
        self,
        fragment: dict[str, Any],
        offset: tuple[float, float] = (40.0, 40.0),
        *,
        at: tuple[float, float] | None = None,
        keep_outside_links: bool = False,
        text: str = "paste",
    ) -> list[str]:
        """Insert a copied fragment with fresh ids; returns the new ids. ``at`` puts the fragment's top-left
        corner there (the mouse), else it is shifted by ``offset``. Links among the pasted nodes are kept;
        links from other nodes only with ``keep_outside_links`` and if those nodes still exist."""
        from nodegraph.workflow import parse_workflow

        source = parse_workflow(fragment, self.registry)
        if not source.nodes:
            return []
        if at is not None:
            left = min(float(n.layout.get("x", 0)) for n in source.nodes.values())
            top = min(float(n.layout.get("y", 0)) for n in source.nodes.values())
            offset = (at[0] - left, at[1] - top)
        taken = Graph(self.graph.nodes.values())
        renamed: dict[str, str] = {}
        for old_id, node in source.nodes.items():
            stem = node.type if self.registry.get(node.type) else "node"
            new_id = old_id if old_id not in taken.nodes else taken.new_id(stem)
            renamed[old_id] = new_id
            taken.nodes[new_id] = node  # reserve the id
        fresh: list[GraphNode] = []
        for old_id, node in source.nodes.items():
            node = copy.deepcopy(node)
            node.id = renamed[old_id]
            inputs = {}
            for name, (src, out) in node.inputs.items():
                if src in renamed:
                    inputs[name] = (renamed[src], out)
                elif keep_outside_links and src in self.graph.nodes:
                    inputs[name] = (src, out)
            node.inputs = inputs
            node.layout["x"] = round(float(node.layout.get("x", 0)) + offset[0])
            node.layout["y"] = round(float(node.layout.get("y", 0)) + offset[1])
            fresh.append(node)
        self.undo_stack.push(AddNodesCommand(self, fresh, f"{text} {len(fresh)} node(s)"))
        return [n.id for n in fresh]


__all__ = ["Document", "LinkRefused"]
