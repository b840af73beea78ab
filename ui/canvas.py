"""The canvas: a NodeGraphQt graph that shows the document's engine graph and sends the user's edits back
as document commands (never editing its own model as the truth).

NodeGraphQt's viewer signals (connections drawn or cut, nodes moved, titles edited, drops) are re-routed
from NodeGraphQt's own undo stack to :class:`~ui.document.Document`; the document's signals then update
the view. NodeGraphQt keeps a private, one-step undo stack that nothing reads.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator
from typing import Any

import shiboken6
from NodeGraphQt import NodeGraph
from NodeGraphQt.constants import Z_VAL_NODE, PortTypeEnum
from NodeGraphQt.qgraphics.node_base import NodeItem
from PySide6.QtCore import QMimeData, QPoint, QPointF, Signal
from PySide6.QtGui import QPixmap, QUndoStack

from nodegraph.graph import REROUTE, LinkRefused, check_link, reroute_type
from nodegraph.model_folders import ModelFolders
from nodegraph.params import ParamError
from nodegraph.registry import Registry
from nodegraph.types import all_types
from ui import socket_colors
from ui.document import Document
from ui.groups import GroupLayer
from ui.layout import layered_positions, needs_layout
from ui.link_drop import LinkDrops
from ui.node_items import MissingNode, RerouteNode, ViewNode, node_class
from ui.viewer import NODE_MIME, CanvasViewer
from ui.widgets import ModelFileWidget

PLACEHOLDER_TYPE = f"{MissingNode.__identifier__}.{MissingNode.__name__}"
__all__ = ["NODE_MIME", "PLACEHOLDER_TYPE", "Canvas", "CanvasViewer"]


class Canvas(LinkDrops, NodeGraph):
    """The node editor view over one :class:`Document`."""

    edit_refused = Signal(str)  # a link the type rule refuses, a value out of bounds
    files_dropped = Signal(list, tuple)  # local paths, scene position
    selection_changed = Signal()
    node_menu_requested = Signal(str, QPoint)  # engine id, global position (a right click on a node)
    # a link let go on empty canvas: (engine id, port name, True if it started at an output, scene position)
    link_search_requested = Signal(str, str, bool, QPointF)

    def __init__(self, document: Document, folders: ModelFolders | None = None) -> None:
        self.syncing = True
        private = QUndoStack()
        private.setUndoLimit(1)  # NodeGraphQt's own stack: nothing is undone through it
        super().__init__(undo_stack=private, viewer=CanvasViewer(self))
        self._private_stack = private
        self.document = document
        self.registry: Registry = document.registry
        self.views: dict[str, ViewNode] = {}
        self.set_acyclic(False)  # cycles are refused by the engine; NodeGraphQt's check has no visited set
        self.set_pipe_collision(False)
        self._folders = folders if folders is not None else ModelFolders.from_environment()
        self._model_lists: dict[tuple[str, tuple[str, ...], bool], list[str]] = {}
        ModelFileWidget.lister = self._list_models
        self.register_node(MissingNode)
        self.refresh_socket_colors()
        self.register_nodes([node_class(definition) for definition in self.registry])
        document.initial_params = self._initial_params
        document.node_added.connect(self._on_node_added)
        document.node_removed.connect(self._on_node_removed)
        document.inputs_changed.connect(self._sync_inputs)
        document.param_changed.connect(self._on_param_changed)
        document.layout_changed.connect(self._on_layout_changed)
        document.node_replaced.connect(self._on_node_replaced)
        document.node_changed.connect(self._on_node_changed)
        document.reset.connect(self.rebuild)
        self.node_selection_changed.connect(lambda *_: self.selection_changed.emit())
        self._scene = self.viewer().scene()
        self._scene.selectionChanged.connect(self._raise_selected)
        self._raised: list[Any] = []
        self.viewer().link_dropped.connect(self._on_link_dropped)
        self.groups = GroupLayer(self)
        self.syncing = False

    # -- helpers ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _sync(self) -> Iterator[None]:
        previous, self.syncing = self.syncing, True
        try:
            yield
        finally:
            self.syncing = previous

    def get_unique_name(self, name: str) -> str:
        # Titles need not be unique (engine ids are); NodeGraphQt's version is quadratic in the node count.
        return name

    def _list_models(self, folder: str, extensions: tuple[str, ...], directories: bool) -> list[str]:
        key = (folder, extensions, directories)
        if key not in self._model_lists:
            try:
                self._model_lists[key] = self._folders.list(folder, extensions, directories)
            except OSError:
                self._model_lists[key] = []
        return self._model_lists[key]

    def refresh_model_lists(self) -> None:
        self._model_lists.clear()

    def _initial_params(self, definition: Any) -> dict[str, Any]:
        """A new node's model parameter starts with the model when exactly one is installed."""
        found = {}
        for param in definition.params:
            if param.kind == "model_file" and not param.default:
                names = self._list_models(param.folder, tuple(param.extensions), param.allow_directories)
                if len(names) == 1:
                    found[param.name] = names[0]
        return found

    @staticmethod
    def refresh_socket_colors() -> None:
        socket_colors.refresh({t.name: t.color for t in all_types()})

    def engine_id(self, item_or_id: Any) -> str | None:
        view_id = item_or_id if isinstance(item_or_id, str) else item_or_id.id
        node = self.get_node_by_id(view_id)
        return node.engine_id if isinstance(node, ViewNode) else None

    def view(self, node_id: str) -> ViewNode | None:
        return self.views.get(node_id)

    def selected_ids(self) -> list[str]:
        return [n.engine_id for n in self.selected_nodes() if isinstance(n, ViewNode)]

    def select(self, node_ids: list[str]) -> None:
        self.clear_selection()
        for node_id in node_ids:
            if node_id in self.views:
                self.views[node_id].set_selected(True)

    def _ordered(self, a: Any, b: Any) -> tuple[Any, Any]:
        """(output port item, input port item) from a pair in any order."""
        return (a, b) if a.port_type == PortTypeEnum.OUT.value else (b, a)

    def refusal_reason(self, from_item: Any, to_item: Any) -> str | None:
        """Why the engine refuses a link between two port items (None: allowed or not a link at all)."""
        if from_item.port_type == to_item.port_type:
            return None
        out_item, in_item = self._ordered(from_item, to_item)
        source, target = self.engine_id(out_item.node), self.engine_id(in_item.node)
        if source is None or target is None:
            return None
        problem = check_link(self.document.graph, self.registry, source, out_item.name, target, in_item.name)
        if problem is None and source == target:
            return "a node cannot feed itself"
        return None if problem is None else str(problem)

    def _raise_selected(self) -> None:
        """Selected nodes are drawn above the others (NodeGraphQt puts them below)."""
        for item in self._raised:
            if shiboken6.isValid(item) and item.scene() is not None and not item.isSelected():
                item.setZValue(Z_VAL_NODE)
        scene = self._scene
        if not shiboken6.isValid(scene):  # the window is going away
            self._raised = []
            return
        self._raised = [i for i in scene.selectedItems() if isinstance(i, NodeItem)]
        for item in self._raised:
            item.setZValue(Z_VAL_NODE + 1)

    # -- node types ------------------------------------------------------------------------------

    def update_types(self, added: Iterable[str], changed: Iterable[str], removed: Iterable[str]) -> list[str]:
        """Follow a registry change (plugin reload): regenerate the NodeGraphQt classes of new and changed
        types, drop those of removed ones, and rebuild every node of those types. Returns the rebuilt ids.

        A node whose type appeared becomes a real node; one whose type disappeared becomes a placeholder that
        keeps its data (the engine graph is untouched either way)."""
        factory = self.node_factory
        touched = set(added) | set(changed) | set(removed)
        for node_type in touched:
            old = factory.nodes.pop(node_type, None)
            if old is not None:
                names = factory.names.get(old.NODE_NAME, [])
                if node_type in names:
                    names.remove(node_type)
                if not names:
                    factory.names.pop(old.NODE_NAME, None)
            # NodeGraphQt records a type's properties once, at its first instance; a changed type has others
            self.model.common_properties().pop(node_type, None)
        self.refresh_socket_colors()
        fresh = [self.registry.get(t) for t in sorted(set(added) | set(changed))]
        self.register_nodes([node_class(d) for d in fresh if d is not None])
        affected = [n.id for n in self.document.graph.nodes.values() if n.type in touched]
        self.refresh_nodes(affected)
        return affected

    def refresh_nodes(self, node_ids: list[str]) -> None:
        """Rebuild the views of these nodes from the document (links to and from them included)."""
        for node_id in node_ids:
            self._on_node_removed(node_id)
        for node_id in node_ids:
            self._on_node_added(node_id)

    # -- document -> view ------------------------------------------------------------------------

    def rebuild(self) -> None:
        viewer = self.viewer()
        scene = viewer.scene()
        # bulk insertion: no repaints and no BSP index upkeep until every node and link is in place
        viewer.setUpdatesEnabled(False)
        scene.setItemIndexMethod(scene.ItemIndexMethod.NoIndex)
        try:
            with self._sync():
                for view in list(self.views.values()):
                    self.remove_node(view, push_undo=False)
                self.views.clear()
                self._private_stack.clear()
                for node_id in self.document.graph.nodes:
                    self._create_view(node_id)
                for node_id in self.document.graph.nodes:
                    self._sync_inputs(node_id)
                if needs_layout(self.document.graph):
                    self.place_unplaced()
        finally:
            scene.setItemIndexMethod(scene.ItemIndexMethod.BspTreeIndex)
            viewer.setUpdatesEnabled(True)

    def node_sizes(self) -> dict[str, tuple[float, float]]:
        """The real size of every node item, as drawn now."""
        return {node_id: (view.view.width, view.view.height) for node_id, view in self.views.items()}

    def layout_positions(self) -> dict[str, tuple[float, float]]:
        """Where auto layout puts every node, by the real node sizes."""
        return layered_positions(self.document.graph, self.node_sizes())

    def place_unplaced(self) -> None:
        """A workflow written without positions (by hand, by another program): lay it out by real sizes.
        The positions go straight into the graph: they are what the file means, not an edit to undo."""
        positions = self.layout_positions()
        for node_id, (x, y) in positions.items():
            node = self.document.graph.nodes[node_id]
            if not ("x" in node.layout and "y" in node.layout):
                node.layout["x"], node.layout["y"] = x, y
                self._on_layout_changed(node_id)

    def _create_view(self, node_id: str) -> ViewNode:
        node = self.document.graph.nodes[node_id]
        definition = self.registry.get(node.type)
        pos = (float(node.layout.get("x", 0)), float(node.layout.get("y", 0)))
        with self._sync():
            view = None
            if definition is not None:
                try:
                    view = self.create_node(node.type, name=node.layout.get("title") or definition.name, selected=False, pos=pos, push_undo=False)
                except Exception as exc:  # a plugin's odd declaration must not lose the node from the view
                    self.edit_refused.emit(f"cannot show {node_id} ({node.type}) properly: {exc}")
                    definition = None
            if view is None:
                view = self.create_node(PLACEHOLDER_TYPE, name=node.layout.get("title") or f"⚠ {node.type}", selected=False, pos=pos, push_undo=False)
                readers = {out for n in self.document.graph.nodes.values() for s, out in n.inputs.values() if s == node_id}
                view.fill(node, sorted(readers))
        view.engine_id = node_id
        view.base_color = tuple(view.color())
        if definition is not None:  # a placeholder's explanation was written by fill()
            kind = f"{node.type} v{node.version}"
            view.base_tooltip = f"{node_id} · {kind}" + (f"\n{definition.description}" if definition.description else "")
            view.update_tooltip()
        self.views[node_id] = view
        if definition is not None:
            defaults = definition.default_params()
            for name, widget in view.param_widgets().items():
                widget.set_value(node.params.get(name, defaults.get(name)))
                widget.edited.connect(functools.partial(self._on_param_edited, node_id))
        color = node.layout.get("color")
        if isinstance(color, (list, tuple)) and len(color) >= 3:
            view.set_property("color", (*[int(c) for c in color[:3]], 255), push_undo=False)
        shown = [*node.param_inputs, *(n for n in node.inputs if n not in node.param_inputs)]
        view.show_param_inputs(shown)  # parameters turned into inputs, or driven by a link
        view.view.set_mode(node.mode)
        view.view.set_user_size(_user_size(node.layout))
        return view

    def _on_node_added(self, node_id: str) -> None:
        self._create_view(node_id)
        self._sync_inputs(node_id)
        for reader in [n.id for n in self.document.graph.nodes.values() if any(s == node_id for s, _ in n.inputs.values())]:
            self._sync_inputs(reader)

    def _on_node_removed(self, node_id: str) -> None:
        view = self.views.pop(node_id, None)
        if view is not None:
            with self._sync():
                self.remove_node(view, push_undo=False)

    def _sync_inputs(self, node_id: str) -> None:
        """Make the pipes into one node match the engine graph's links."""
        view = self.views.get(node_id)
        if view is None or node_id not in self.document.graph.nodes:
            return
        links = self.document.graph.nodes[node_id].inputs
        with self._sync():
            missing = [name for name in links if name not in view.inputs()]
            if missing:  # a parameter driven by a link (shown as its socket from now on), or a placeholder's input
                view.show_param_inputs(missing)
                for name in missing:
                    if name not in view.inputs():
                        view.add_typed_input(name, "*")
            for name, port in view.inputs().items():
                wanted = None
                link = links.get(name)
                if link is not None and link[0] in self.views:
                    source = self.views[link[0]]
                    if link[1] not in source.outputs():
                        source.add_typed_output(link[1], "*")
                    wanted = source.outputs()[link[1]]
                current = port.connected_ports()
                if current == ([wanted] if wanted else []) and len(port.view.connected_pipes) == len(current):
                    continue
                port.clear_connections(push_undo=False, emit_signal=False)
                for pipe in list(port.view.connected_pipes):
                    pipe.delete()
                if wanted is not None:
                    wanted.connect_to(port, push_undo=False, emit_signal=False)
                    for pipe in port.view.connected_pipes:  # a link takes the colour of its socket type
                        pipe.color = tuple(wanted.view.color)
                        pipe.reset()
            for name, widget in view.param_widgets().items():
                link = links.get(name)
                widget.set_driven(f"{link[0]}.{link[1]}" if link is not None else None)
        node = self.document.graph.nodes[node_id]
        definition = view.definition
        if definition is not None and any(
            definition.param(n) is not None and n not in node.param_inputs and n not in links for n in view.inputs()
        ):
            # a parameter that was a socket only because a link drove it (older files): its link went, so its
            # field comes back
            self.refresh_nodes([node_id])
            return
        if isinstance(view, RerouteNode):
            self._update_reroutes(node_id)

    def _update_reroutes(self, node_id: str) -> None:
        """A reroute takes the colour of what it carries, and so does every reroute downstream of it."""
        graph = self.document.graph
        todo, seen = [node_id], set()
        while todo:
            current = todo.pop()
            if current in seen or current not in graph.nodes:
                continue
            seen.add(current)
            view = self.views.get(current)
            if isinstance(view, RerouteNode):
                view.set_carried_type(reroute_type(graph, self.registry, current).name)
                todo.extend(n.id for n in graph.nodes.values() if n.type == REROUTE and n.inputs.get("value", ("",))[0] == current)

    def _on_param_changed(self, node_id: str, name: str) -> None:
        view = self.views.get(node_id)
        widget = view.param_widgets().get(name) if view else None
        if widget is not None:
            node = self.document.graph.nodes[node_id]
            definition = self.registry.get(node.type)
            default = definition.default_params().get(name) if definition else None
            widget.set_value(node.params.get(name, default))

    def _on_node_replaced(self, node_id: str) -> None:
        view = self.views.get(node_id)
        for name in view.param_widgets() if view else ():
            self._on_param_changed(node_id, name)

    def _on_layout_changed(self, node_id: str) -> None:
        view = self.views.get(node_id)
        if view is None:
            return
        node = self.document.graph.nodes[node_id]
        definition = self.registry.get(node.type)
        with self._sync():
            x, y = float(node.layout.get("x", 0)), float(node.layout.get("y", 0))
            if list(view.pos()) != [x, y]:
                view.set_property("pos", [x, y], push_undo=False)
            title = node.layout.get("title") or (definition.name if definition else f"⚠ {node.type}")
            if view.name() != title:
                view.set_property("name", title, push_undo=False)
                view.view.draw_node()
            color = node.layout.get("color")
            rgb = tuple(int(c) for c in color[:3]) if isinstance(color, (list, tuple)) and len(color) >= 3 else view.base_color
            if tuple(view.color()) != rgb:
                view.set_property("color", (*rgb, 255), push_undo=False)
            view.view.set_user_size(_user_size(node.layout))

    def _on_node_changed(self, node_id: str) -> None:
        """A node's mode or parameter inputs changed."""
        view = self.views.get(node_id)
        if view is None:
            return
        node = self.document.graph.nodes[node_id]
        shown = {n for n in view.inputs() if view.definition is not None and view.definition.param(n) is not None}
        if shown - set(node.param_inputs) - set(node.inputs):
            self.refresh_nodes([node_id])  # a socket went back to a field: rebuild the node
            return
        view.show_param_inputs(node.param_inputs)
        view.view.set_mode(node.mode)
        self._sync_inputs(node_id)

    # -- view -> document ------------------------------------------------------------------------

    def _on_param_edited(self, node_id: str, name: str, value: Any) -> None:
        try:
            self.document.set_param(node_id, name, value)
        except (ParamError, KeyError) as exc:
            self.edit_refused.emit(f"{node_id}.{name}: {exc}")
            self._on_param_changed(node_id, name)

    def _apply_link_changes(self, changes: dict[tuple[str, str], tuple[str, str] | None], text: str) -> None:
        try:
            self.document.set_links(changes, text)
        except LinkRefused as exc:
            self.edit_refused.emit(str(exc))
        finally:
            for target in {t for t, _ in changes}:
                self._sync_inputs(target)

    def _pair_change(self, a: Any, b: Any, connect: bool, changes: dict[tuple[str, str], Any]) -> None:
        out_item, in_item = self._ordered(a, b)
        source, target = self.engine_id(out_item.node), self.engine_id(in_item.node)
        if source is None or target is None:
            return
        if connect:
            changes[(target, in_item.name)] = (source, out_item.name)
        elif self.document.graph.nodes[target].inputs.get(in_item.name) == (source, out_item.name):
            changes.setdefault((target, in_item.name), None)

    def _on_connection_changed(self, disconnected: list, connected: list) -> None:
        changes: dict[tuple[str, str], Any] = {}
        for a, b in disconnected:
            self._pair_change(a, b, False, changes)
        for a, b in connected:
            self._pair_change(a, b, True, changes)
        if changes:
            self._apply_link_changes(changes, "connect" if connected else "disconnect")

    def _on_connection_sliced(self, ports: list) -> None:
        changes: dict[tuple[str, str], Any] = {}
        for a, b in ports:
            self._pair_change(a, b, False, changes)
        if changes:
            self._apply_link_changes(changes, "cut links")

    def request_connect(self, a: Any, b: Any) -> None:
        """A connection asked for through NodeGraphQt's Port API: the engine decides (LinkRefused if not)."""
        out_port, in_port = (a, b) if a.type_() == PortTypeEnum.OUT.value else (b, a)
        source, target = out_port.node().engine_id, in_port.node().engine_id
        try:
            self.document.connect(source, out_port.name(), target, in_port.name())
        finally:
            self._sync_inputs(target)

    def request_disconnect(self, a: Any, b: Any) -> None:
        out_port, in_port = (a, b) if a.type_() == PortTypeEnum.OUT.value else (b, a)
        target = in_port.node().engine_id
        if self.document.graph.nodes[target].inputs.get(in_port.name()) == (out_port.node().engine_id, out_port.name()):
            self.document.disconnect(target, in_port.name())
        self._sync_inputs(target)

    def _on_nodes_moved(self, node_data: dict) -> None:
        positions = {}
        for item in node_data:
            node_id = self.engine_id(item)
            if node_id is not None:
                positions[node_id] = tuple(item.xy_pos)
        self.document.move_nodes(positions)

    def _on_node_name_changed(self, view_id: str, name: str) -> None:
        node_id = self.engine_id(view_id)
        if node_id is not None:
            self.document.set_title(node_id, name)
            self._on_layout_changed(node_id)

    def node_resized(self, view_id: str, size: tuple[float, float] | None) -> None:
        """The resize grip let go (or double-clicked: ``None``, back to the natural size)."""
        node_id = self.engine_id(view_id)
        if node_id is not None:
            self.document.set_size(node_id, size)
            self._on_layout_changed(node_id)

    def _on_search_triggered(self, node_type: str, pos: tuple) -> None:
        self.document.add_node(node_type, pos)

    def _on_insert_node(self, pipe: Any, node_id: str, prev_node_pos: dict) -> None:
        pass  # dropping a node on a pipe is switched off (pipe collision)

    def _on_node_data_dropped(self, mimedata: QMimeData, pos: QPoint) -> None:
        if mimedata.hasFormat(NODE_MIME):
            node_type = bytes(mimedata.data(NODE_MIME).data()).decode()
            new_id = self.document.add_node(node_type, (pos.x(), pos.y()))
            self.select([new_id])
        elif mimedata.hasUrls():
            paths = [u.toLocalFile() for u in mimedata.urls() if u.isLocalFile()]
            if paths:
                self.files_dropped.emit(paths, (pos.x(), pos.y()))

    # -- run state -------------------------------------------------------------------------------

    def set_state(self, node_id: str, state: str, progress: float | None = None, message: str = "") -> None:
        view = self.views.get(node_id)
        if view is None:
            return
        view.view.set_run_state(state, progress)
        label = {"failed": "failed", "done": "done", "cached": "cached", "running": "running", "waiting": "waiting"}.get(state)
        status = f"{label}: {message}" if label and message else (label or "")
        if status != view.status:
            view.status = status
            view.update_tooltip()

    def clear_states(self) -> None:
        for view in self.views.values():
            view.view.set_run_state("")
            if view.status:
                view.status = ""
                view.update_tooltip()

    def set_problems(self, problems: dict[str, list[str]]) -> None:
        """Mark the nodes validation found problems with (a dotted red frame; the texts in the tooltip)."""
        for node_id, view in self.views.items():
            texts = problems.get(node_id, [])
            if texts != view.problems:
                view.problems = texts
                view.view.set_problem(bool(texts))
                view.update_tooltip()

    def show_text(self, node_id: str, text: str) -> bool:
        view = self.views.get(node_id)
        return view is not None and view.show_text(text)

    def show_image(self, node_id: str, pixmap: QPixmap) -> bool:
        """Show an image in the node's own image box; False if it has none (the image panel shows it)."""
        view = self.views.get(node_id)
        return view is not None and view.show_image(pixmap)


def _user_size(layout: dict[str, Any]) -> tuple[float, float] | None:
    width, height = layout.get("width"), layout.get("height")
    if isinstance(width, (int, float)) and isinstance(height, (int, float)):
        return float(width), float(height)
    return None
