"""NodeGraphQt node classes generated from the registry, the missing-type placeholder, reroutes and notes.

One class per :class:`~nodegraph.NodeDef` (type string = the engine's node id), so plugins appear like
built-ins. Ports carry their socket type's colour (:mod:`ui.socket_colors`). Ports are :class:`GuardedPort`:
every connection made through NodeGraphQt's API goes to the canvas, which asks the engine's rule first.
How a node is drawn is :mod:`ui.node_item`'s business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from NodeGraphQt import BaseNode
from NodeGraphQt.base.port import Port
from NodeGraphQt.constants import NodePropWidgetEnum
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainter, QPen

from nodegraph.graph import REROUTE
from nodegraph.node import NodeDef
from nodegraph.types import type_named
from ui.node_item import NodeView, paint_port
from ui.note_widget import NoteWidget
from ui.result_widgets import ImagePreviewWidget, TextResultWidget, wants_image_box, wants_text_box
from ui.socket_colors import socket_color
from ui.widgets import ParamWidget, ReadOnlyWidget, widget_for

if TYPE_CHECKING:
    from nodegraph.graph import GraphNode

MISSING_COLOR = (110, 40, 40)
NOTE_COLOR = (74, 70, 38)
NOTE_TYPE = "core.Note"


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


class ViewNode(BaseNode):
    """Common part of engine-backed and placeholder nodes."""

    __identifier__ = "nodegraph"
    NODE_NAME = "Node"
    ITEM_CLASS: type[NodeView] = NodeView
    definition: NodeDef | None = None

    def __init__(self) -> None:
        super().__init__(self.ITEM_CLASS)
        self.engine_id = ""
        self.base_color: tuple[int, ...] = (13, 18, 23)  # the colour a node has without a layout colour
        self.base_tooltip = ""
        self.problems: list[str] = []  # what validation found wrong with this node
        self.status = ""  # the last run state and its message
        self.preview: ImagePreviewWidget | None = None
        self.result_text: TextResultWidget | None = None
        self.type_names: dict[str, str] = {}  # port name -> socket type name (inputs and outputs)

    def _guard(self, port: Port) -> Port:
        port.__class__ = GuardedPort
        return port

    def add_typed_input(self, name: str, type_name: str, label: str = "", help_text: str = "") -> Port:
        socket = type_named(type_name)
        port = self.add_input(name, color=socket_color(socket.name), display_name=True, painter_func=paint_port)
        port.view.setToolTip(f"{label or name}: {socket.name}" + (f"\n{help_text}" if help_text else ""))
        self.view.set_port_label(port.view, label or name)
        self.type_names[name] = socket.name
        return self._guard(port)

    def add_typed_output(self, name: str, type_name: str, label: str = "", help_text: str = "") -> Port:
        socket = type_named(type_name)
        port = self.add_output(name, color=socket_color(socket.name), display_name=True, painter_func=paint_port)
        port.view.setToolTip(f"{label or name}: {socket.name}" + (f"\n{help_text}" if help_text else ""))
        self.view.set_port_label(port.view, label or name)
        self.type_names["out:" + name] = socket.name
        return self._guard(port)

    def update_tooltip(self) -> None:
        parts = [self.base_tooltip]
        if self.problems:
            parts.append("Problems:\n" + "\n".join(f"• {p}" for p in self.problems))
        if self.status:
            parts.append(self.status)
        self.view.setToolTip("\n\n".join(p for p in parts if p))

    def add_param_widget(self, widget: Any) -> None:
        """Like ``add_custom_widget`` minus its immediate redraw (the node is drawn once when placed) and
        minus the link to NodeGraphQt's property undo (edits go to the document instead)."""
        self.create_property(widget.get_name(), widget.get_value(), widget_type=NodePropWidgetEnum.HIDDEN.value)
        widget._node = self
        self.view.add_widget(widget)

    def make_widget(self, spec: dict[str, Any]) -> ParamWidget:
        return widget_for(spec, self.view)

    def param_widgets(self) -> dict[str, ParamWidget]:
        return {w.param_name: w for w in self.view.widgets.values() if isinstance(w, ParamWidget)}

    def show_param_inputs(self, names: list[str]) -> None:
        """Show these parameters as input sockets instead of fields (parameters turned into inputs, or driven
        by a link)."""
        definition = self.definition
        widgets = self.param_widgets()
        changed = False
        for name in names:
            param = definition.param(name) if definition is not None else None
            if param is None or name in self.inputs():
                continue
            self.add_typed_input(name, param.socket_type.name, param.label or name.replace("_", " "), param.help)
            if name in widgets:
                widgets[name].as_input = True  # the layout leaves it out; the socket stands for it
                widgets[name].setVisible(False)
            changed = True
        if changed:
            self.view.draw_node()

    def show_image(self, pixmap: Any) -> bool:
        """Show an image in the node's image box; False if the node has none (the image panel shows it)."""
        if self.preview is None:
            return False
        self.preview.set_pixmap(pixmap)
        return True

    def show_text(self, text: str) -> bool:
        if self.result_text is None:
            return False
        self.result_text.set_value(text)
        return True


def node_class(definition: NodeDef) -> type[ViewNode]:
    """A NodeGraphQt class for one engine node type (its type string is the engine id)."""
    if definition.id == REROUTE:
        base: type[ViewNode] = RerouteNode
    elif definition.id == NOTE_TYPE:
        base = NoteNode
    else:
        base = ViewNode
    schema = definition.schema()
    namespace, _, class_name = definition.id.rpartition(".")

    def __init__(self: ViewNode) -> None:
        base.__init__(self)
        for spec in schema["inputs"]:
            self.add_typed_input(spec["name"], spec["type"], spec["label"], spec["help"])
        for spec in schema["outputs"]:
            self.add_typed_output(spec["name"], spec["type"], spec["label"], spec["help"])
        for spec in schema["params"]:
            self.add_param_widget(self.make_widget(spec))
        if wants_image_box(definition):
            self.preview = ImagePreviewWidget(self.view)
            self.add_param_widget(self.preview)
        if wants_text_box(definition):
            self.result_text = TextResultWidget(self.view)
            self.add_param_widget(self.result_text)

    attrs = {
        "__identifier__": namespace,
        "NODE_NAME": definition.name,
        "definition": definition,
        "__init__": __init__,
        "__doc__": definition.description,
    }
    return type(class_name, (base,), attrs)


class NoteNode(ViewNode):
    """``core.Note``: a Markdown text on the canvas, no sockets."""

    def __init__(self) -> None:
        super().__init__()
        self.set_color(*NOTE_COLOR)

    def make_widget(self, spec: dict[str, Any]) -> ParamWidget:
        return NoteWidget({**spec, "label": ""}, self.view)


class RerouteView(NodeView):
    """A reroute: a small pill with one input and one output, in the colour of the type it carries."""

    WIDTH, HEIGHT = 44.0, 26.0
    stretch_widgets = False

    def _draw_node_horizontal(self) -> None:
        self.min_size = (self.WIDTH, self.HEIGHT)
        self.set_size(self.WIDTH, self.HEIGHT)
        self._text_item.setVisible(False)
        for items, left in ((self._input_items, True), (self._output_items, False)):
            for port, text in items.items():
                text.setVisible(False)
                rect = port.boundingRect()
                x = -rect.width() / 2 + 6 if left else self.WIDTH - rect.width() / 2 - 6
                port.setPos(x, (self.HEIGHT - rect.height()) / 2)
        self.update()

    def auto_switch_mode(self) -> None:
        pass  # nothing to hide

    def paint(self, painter: QPainter, option: Any, widget: Any) -> None:
        painter.save()
        rect = QRectF(0.5, 0.5, self.WIDTH - 1, self.HEIGHT - 1)
        painter.setBrush(QColor(60, 62, 68) if self.mode != "bypass" else QColor(110, 60, 150))
        pen = QPen(QColor(254, 207, 42) if self.selected else QColor(20, 20, 20), 1.5)
        painter.setPen(pen)
        painter.drawRoundedRect(rect, self.HEIGHT / 2, self.HEIGHT / 2)
        painter.restore()

    def _grip_rect(self) -> QRectF:
        return QRectF()  # a reroute is not resized


class RerouteNode(ViewNode):
    ITEM_CLASS = RerouteView

    def set_carried_type(self, type_name: str) -> None:
        """Colour both ports with the type the reroute carries (``*`` while nothing feeds it)."""
        color = socket_color(type_name)
        for port in (*self.inputs().values(), *self.outputs().values()):
            if tuple(port.view.color[:3]) != color:
                port.view.color = (*color, 255)
                port.view.update()
            port.view.setToolTip(f"carries {type_name}")
            for pipe in port.view.connected_pipes:  # links drawn before the type was known
                if tuple(pipe.color[:3]) != color:
                    pipe.color = (*color, 255)
                    pipe.reset()


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
            self.add_param_widget(widget)
        self.base_tooltip = (
            f"{node.id} · {node.type} v{node.version} (not installed)\n"
            "Its parameters and links are kept unchanged when you save."
        )
        self.update_tooltip()


__all__ = ["GuardedPort", "MissingNode", "NoteNode", "RerouteNode", "ViewNode", "node_class"]
