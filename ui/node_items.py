"""NodeGraphQt node classes generated from the registry, the missing-type placeholder, and run-state drawing.

One class per :class:`~nodegraph.NodeDef` (type string = the engine's node id), so plugins appear like
built-ins. Ports carry the socket type's colour. Ports are :class:`GuardedPort`: every connection made
through NodeGraphQt's API goes to the canvas, which asks the engine's rule first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from NodeGraphQt import BaseNode
from NodeGraphQt.base.port import Port
from NodeGraphQt.constants import NodePropWidgetEnum
from NodeGraphQt.qgraphics.node_base import NodeItem
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from nodegraph.node import NodeDef
from nodegraph.types import type_named
from ui.widgets import ImagePreviewWidget, ParamWidget, ReadOnlyWidget, TextResultWidget, widget_for

if TYPE_CHECKING:
    from nodegraph.graph import GraphNode

STATE_COLORS = {
    "waiting": QColor(120, 120, 120),
    "running": QColor(240, 180, 40),
    "cached": QColor(90, 140, 200),
    "done": QColor(80, 190, 100),
    "failed": QColor(225, 60, 60),
}
MISSING_COLOR = (110, 40, 40)


class GuardedPort(Port):
    """A port whose ``connect_to`` and ``disconnect_from`` go to the engine graph, whoever calls them."""

    def connect_to(self, port: Port | None = None, push_undo: bool = True, emit_signal: bool = True) -> None:
        graph = self.node().graph
        if port is None or getattr(graph, "syncing", True):
            super().connect_to(port, push_undo=False, emit_signal=emit_signal)
            return
        graph.request_connect(self, port)  # raises LinkRefused for a link the type rule refuses

    def disconnect_from(self, port: Port | None = None, push_undo: bool = True, emit_signal: bool = True) -> None:
        graph = self.node().graph
        if port is None or getattr(graph, "syncing", True):
            super().disconnect_from(port, push_undo=False, emit_signal=emit_signal)
            return
        graph.request_disconnect(self, port)


class StateNodeItem(NodeItem):
    """A node item that also draws its run state: a coloured border and a step progress bar."""

    @NodeItem.layout_direction.setter
    def layout_direction(self, value: int = 0) -> None:
        # NodeGraphQt redraws the node whenever this is assigned, even unchanged (4 redraws per new node)
        if value != self.layout_direction:
            NodeItem.layout_direction.fset(self, value)

    def __init__(self, name: str = "node", parent: Any = None) -> None:
        super().__init__(name, parent)
        self.run_state = ""
        self.progress: float | None = None

    def set_run_state(self, state: str, progress: float | None = None) -> None:
        self.run_state = state
        self.progress = progress
        self.update()

    def paint(self, painter: QPainter, option: Any, widget: Any) -> None:
        super().paint(painter, option, widget)
        color = STATE_COLORS.get(self.run_state)
        if color is None:
            return
        painter.save()
        rect = self.boundingRect().adjusted(1, 1, -1, -1)
        pen = QPen(color, 2.5 if self.run_state != "waiting" else 1.2)
        if self.run_state == "waiting":
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(rect, 4, 4)
        bar = QRectF(rect.left() + 6, rect.bottom() - 7, rect.width() - 12, 4)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 120))
        painter.drawRect(bar)
        if self.run_state == "running" and self.progress is not None:
            bar.setWidth(bar.width() * max(0.0, min(1.0, self.progress)))
        elif self.run_state == "waiting" or (self.run_state == "running" and self.progress is None):
            bar.setWidth(0)
        painter.setBrush(color)
        painter.drawRect(bar)
        painter.restore()


class ViewNode(BaseNode):
    """Common part of engine-backed and placeholder nodes."""

    __identifier__ = "nodegraph"
    NODE_NAME = "Node"

    def __init__(self) -> None:
        super().__init__(StateNodeItem)
        self.engine_id = ""
        self.base_color: tuple[int, ...] = (13, 18, 23)  # the colour a node has without a layout colour
        self.base_tooltip = ""
        self.preview: ImagePreviewWidget | None = None
        self.result_text: TextResultWidget | None = None

    def _guard(self, port: Port) -> Port:
        port.__class__ = GuardedPort
        return port

    def add_typed_input(self, name: str, type_name: str, label: str = "") -> Port:
        socket = type_named(type_name)
        port = self.add_input(name, color=socket.color, display_name=True)
        if label and label != name:
            port.view.setToolTip(f"{label} ({socket.name})")
        else:
            port.view.setToolTip(socket.name)
        return self._guard(port)

    def add_typed_output(self, name: str, type_name: str) -> Port:
        socket = type_named(type_name)
        port = self.add_output(name, color=socket.color, display_name=True)
        port.view.setToolTip(socket.name)
        return self._guard(port)

    def add_param_widget(self, widget: ParamWidget) -> None:
        """Like ``add_custom_widget`` minus its immediate redraw (the node is drawn once when placed) and
        minus the link to NodeGraphQt's property undo (edits go to the document instead)."""
        self.create_property(widget.get_name(), widget.get_value(), widget_type=NodePropWidgetEnum.HIDDEN.value)
        widget._node = self
        self.view.add_widget(widget)

    def param_widgets(self) -> dict[str, ParamWidget]:
        return {w.param_name: w for w in self.view.widgets.values() if isinstance(w, ParamWidget)}

    def show_image(self, pixmap: Any) -> None:
        if self.preview is None:
            self.preview = ImagePreviewWidget(self.view)
            self.add_custom_widget(self.preview)
        self.preview.set_pixmap(pixmap)
        self.view.draw_node()

    def show_text(self, text: str) -> None:
        if self.result_text is None:
            self.result_text = TextResultWidget(self.view)
            self.add_custom_widget(self.result_text)
        self.result_text.set_value(text)
        self.view.draw_node()


def node_class(definition: NodeDef) -> type[ViewNode]:
    """A NodeGraphQt class for one engine node type (its type string is the engine id)."""
    schema = definition.schema()
    namespace, _, class_name = definition.id.rpartition(".")

    def __init__(self: ViewNode) -> None:
        ViewNode.__init__(self)
        for spec in schema["inputs"]:
            self.add_typed_input(spec["name"], spec["type"], spec["label"])
        for spec in schema["outputs"]:
            self.add_typed_output(spec["name"], spec["type"])
        for spec in schema["params"]:
            self.add_param_widget(widget_for(spec, self.view))

    attrs = {
        "__identifier__": namespace,
        "NODE_NAME": definition.name,
        "definition": definition,
        "__init__": __init__,
        "__doc__": definition.description,
    }
    return type(class_name, (ViewNode,), attrs)


class MissingNode(ViewNode):
    """Placeholder for a node whose type is not installed. Shows what the file holds and changes nothing."""

    __identifier__ = "nodegraph.placeholder"
    NODE_NAME = "Missing node"

    def fill(self, node: GraphNode, output_names: list[str]) -> None:
        self.set_color(*MISSING_COLOR)
        for name in node.inputs:
            self.add_typed_input(name, "*")
        for name in output_names:
            self.add_typed_output(name, "*")
        for name, value in node.params.items():
            widget = ReadOnlyWidget({"name": name, "label": name, "default": value}, self.view)
            self.add_custom_widget(widget)
        self.view.setToolTip(
            f"Node type {node.type!r} is not installed (plugin {node.type.rpartition('.')[0]!r}).\n"
            "Its parameters and links are kept unchanged when you save."
        )
