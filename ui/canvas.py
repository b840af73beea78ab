"""The canvas: a NodeGraphQt graph that shows the document's engine graph and sends the user's edits back
as document commands (never editing its own model as the truth).

NodeGraphQt's viewer signals (connections drawn or cut, nodes moved, titles edited, drops) are re-routed
from NodeGraphQt's own undo stack to :class:`~ui.document.Document`; the document's signals then update
the view. NodeGraphQt keeps a private, one-step undo stack that nothing reads.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from NodeGraphQt import NodeGraph
from NodeGraphQt.constants import PortTypeEnum
from NodeGraphQt.widgets.viewer import NodeViewer
from PySide6.QtCore import QEvent, QMimeData, QPoint, QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPixmap, QUndoStack

from nodegraph.graph import LinkRefused, check_link, input_socket
from nodegraph.model_folders import ModelFolders
from nodegraph.params import ParamError
from nodegraph.registry import Registry
from ui.document import Document
from ui.node_items import MissingNode, ViewNode, node_class
from ui.widgets import ModelFileWidget

NODE_MIME = "application/x-nodegraph-node-type"
PLACEHOLDER_TYPE = f"{MissingNode.__identifier__}.{MissingNode.__name__}"


class CanvasViewer(NodeViewer):
    """The NodeGraphQt viewer, taught the engine's link rule, our drops and the Tab search key."""

    tab_pressed = Signal()

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(undo_stack=None)
        self.canvas = canvas
        self.refusal: str | None = None

    def _validate_accept_connection(self, from_port: Any, to_port: Any) -> bool:
        if not super()._validate_accept_connection(from_port, to_port):
            return False
        reason = self.canvas.refusal_reason(from_port, to_port)
        if reason is not None:
            self.refusal = reason
            return False
        return True

    def apply_live_connection(self, event: Any) -> None:
        self.refusal = None
        super().apply_live_connection(event)
        if self.refusal:
            self.canvas.edit_refused.emit(self.refusal)
            self.refusal = None

    def event(self, event: QEvent) -> bool:
        # Tab normally moves keyboard focus; on the canvas it opens the node search
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Tab
            and self.scene().focusItem() is None  # a field inside a node keeps its Tab
        ):
            self.tab_pressed.emit()
            return True
        return super().event(event)

    def _combined_rect(self, nodes: list) -> QRectF:
        # NodeGraphQt groups and ungroups every item to measure them: seconds for a few hundred nodes
        rect = QRectF()
        for item in nodes:
            rect = rect.united(item.sceneBoundingRect())
        return rect.adjusted(-40, -40, 40, 40)  # ports stick out of the node items

    def _accepts(self, mime: QMimeData) -> bool:
        return mime.hasFormat(NODE_MIME) or mime.hasUrls()

    def dragEnterEvent(self, event: Any) -> None:
        event.accept() if self._accepts(event.mimeData()) else event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        event.accept() if self._accepts(event.mimeData()) else event.ignore()


class Canvas(NodeGraph):
    """The node editor view over one :class:`Document`."""

    edit_refused = Signal(str)  # a link the type rule refuses, a value out of bounds
    files_dropped = Signal(list, tuple)  # local paths, scene position
    selection_changed = Signal()

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
        for definition in self.registry:
            self.register_node(node_class(definition))
        document.node_added.connect(self._on_node_added)
        document.node_removed.connect(self._on_node_removed)
        document.inputs_changed.connect(self._sync_inputs)
        document.param_changed.connect(self._on_param_changed)
        document.layout_changed.connect(self._on_layout_changed)
        document.reset.connect(self.rebuild)
        self.node_selection_changed.connect(lambda *_: self.selection_changed.emit())
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
        finally:
            scene.setItemIndexMethod(scene.ItemIndexMethod.BspTreeIndex)
            viewer.setUpdatesEnabled(True)

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
        kind = f"{node.type} v{node.version}"
        view.base_tooltip = f"{node_id} · {kind}" + (f"\n{definition.description}" if definition and definition.description else "")
        if definition is not None:
            view.view.setToolTip(view.base_tooltip)
        self.views[node_id] = view
        if definition is not None:
            defaults = definition.default_params()
            for name, widget in view.param_widgets().items():
                widget.set_value(node.params.get(name, defaults.get(name)))
                widget.edited.connect(functools.partial(self._on_param_edited, node_id))
        color = node.layout.get("color")
        if isinstance(color, (list, tuple)) and len(color) >= 3:
            view.set_property("color", (*[int(c) for c in color[:3]], 255), push_undo=False)
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
            definition = self.registry.get(self.document.graph.nodes[node_id].type)
            for name in links:
                if name not in view.inputs():  # a parameter driven by a link, or a placeholder's input
                    socket = input_socket(definition, name) if definition is not None else None
                    view.add_typed_input(name, socket.name if socket is not None else "*")
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

    def _on_param_changed(self, node_id: str, name: str) -> None:
        view = self.views.get(node_id)
        widget = view.param_widgets().get(name) if view else None
        if widget is not None:
            node = self.document.graph.nodes[node_id]
            definition = self.registry.get(node.type)
            default = definition.default_params().get(name) if definition else None
            widget.set_value(node.params.get(name, default))

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
        if isinstance(view, MissingNode) and state != "failed":
            return  # keep the placeholder's explanation
        label = {"failed": "failed", "done": "done", "cached": "cached", "running": "running", "waiting": "waiting"}.get(state)
        status = f"{label}: {message}" if label and message else (label or "")
        view.view.setToolTip(f"{view.base_tooltip}\n\n{status}" if status else view.base_tooltip)

    def clear_states(self) -> None:
        for view in self.views.values():
            view.view.set_run_state("")

    def show_text(self, node_id: str, text: str) -> None:
        view = self.views.get(node_id)
        if view is not None:
            view.show_text(text)

    def show_image(self, node_id: str, pixmap: QPixmap) -> None:
        view = self.views.get(node_id)
        if view is not None:
            view.show_image(pixmap)
