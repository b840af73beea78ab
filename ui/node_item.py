"""How a node looks on the canvas: its layout, typography, level of detail, mode, run state and resize grip.

NodeGraphQt's own node layout puts the widgets between the input and output labels, which makes nodes wide
and their text small at the zoom that shows a workflow. Here a node is laid out as in ComfyUI: a title bar,
one row per port (inputs left, outputs right), then the fields at full width. A user-set size (the grip at
the bottom-right corner) gives stretchable fields (prompts, previews) the extra room. Zoomed out so far that
text would be unreadable, a node hides its fields and draws its title large instead of an empty box.
"""

from __future__ import annotations

from typing import Any

from NodeGraphQt.constants import ICON_NODE_BASE, LayoutDirectionEnum, NodeEnum, PortTypeEnum
from NodeGraphQt.qgraphics.node_base import NodeItem
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QPolygonF, QStaticText, QTextOption
from PySide6.QtWidgets import QApplication, QGraphicsItem, QGraphicsTextItem

from ui.theme import (
    BYPASS_COLOR,
    LOD_SCALE,
    LOD_TITLE_PX,
    MUTED_OPACITY,
    NODE_BODY,
    PROBLEM_COLOR,
    STATE_COLORS,
    TITLE_BAR,
    port_font,
    title_font,
)

PAD = 8.0  # inner margin of the node
ROW = 24.0  # height of a port row
GRIP = 12.0  # size of the resize grip
WIDGET_GAP = 2.0


_NODE_BODY_COLOR = QColor(*NODE_BODY)
_TITLE_PEN = QPen(QColor(235, 235, 235))
_OVERVIEW_FRAME = QPen(QColor(0, 0, 0, 160), 0)  # cosmetic: one pixel at any zoom
_OVERVIEW_SELECTED = QPen(QColor(*NodeEnum.SELECTED_BORDER_COLOR.value), 3)
_OVERVIEW_SELECTED.setCosmetic(True)
_BYPASS_BRUSH = QColor(*BYPASS_COLOR).darker(160)


def paint_port(painter: QPainter, rect: QRectF, info: dict[str, Any]) -> None:
    """A port keeps its socket type's colour when connected (NodeGraphQt paints connected ports one grey)."""
    painter.save()
    color = QColor(*info["color"][:3])
    if info["hovered"]:
        color = color.lighter(130)
    painter.setPen(QPen(QColor(20, 20, 20), 1.2))
    painter.setBrush(color)
    inner = rect.adjusted(2.5, 2.5, -2.5, -2.5)
    painter.drawEllipse(inner)
    if not info["connected"]:
        # an open socket: a dark centre, so linked and free ports read differently
        painter.setBrush(QColor(30, 30, 34))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(inner.adjusted(3, 3, -3, -3))
    painter.restore()


class NodeView(NodeItem):
    """A NodeGraphQt node item with our layout, run state, mode, problem mark, level of detail and resize grip."""

    stretch_widgets = True  # fields that can use extra height get it (see ParamWidget.stretch)

    def __init__(self, name: str = "node", parent: Any = None) -> None:
        super().__init__(name, parent)
        self.run_state = ""
        self.progress: float | None = None
        self.has_problem = False
        self.mode: str | None = None
        self.user_size: tuple[float, float] | None = None  # set with the grip (scene units), kept in the layout
        self.min_size = (NodeEnum.WIDTH.value, NodeEnum.HEIGHT.value)
        self.set_size(float(NodeEnum.WIDTH.value), float(NodeEnum.HEIGHT.value))
        self._resizing: tuple[QPointF, tuple[float, float]] | None = None
        self._title_cache: tuple[Any, Any] | None = None
        self._text_item.setFont(title_font())
        self._icon_item.setVisible(False)
        self.setAcceptHoverEvents(True)

    def boundingRect(self) -> QRectF:
        # kept, not rebuilt: Qt asks for it several times per item and frame (hundreds of nodes when zoomed out)
        return self._rect

    def set_size(self, width: float, height: float) -> None:
        if (width, height) != (self._width, self._height) or not hasattr(self, "_rect"):
            self.prepareGeometryChange()  # Qt's index must hear of the new size before it happens
            self._width, self._height = width, height
            self._rect = QRectF(0.0, 0.0, width, height)

    @NodeItem.width.setter
    def width(self, width: float = 0.0) -> None:
        self.set_size(max(width, self.min_size[0]), self._height)

    @NodeItem.height.setter
    def height(self, height: float = 0.0) -> None:
        self.set_size(self._width, max(height, self.min_size[1]))

    # -- NodeGraphQt hooks that redraw needlessly --------------------------------------------

    @NodeItem.layout_direction.setter
    def layout_direction(self, value: int = 0) -> None:
        # NodeGraphQt redraws the node whenever this is assigned, even unchanged (4 redraws per new node)
        if value != self.layout_direction:
            NodeItem.layout_direction.fset(self, value)

    @NodeItem.icon.setter
    def icon(self, path: str | None = None) -> None:
        # NodeGraphQt reloads the icon file and redraws the node each time its properties are copied to the
        # view (twice per new node); our nodes show no icon
        self._properties["icon"] = path or ICON_NODE_BASE

    @NodeItem.name.setter
    def name(self, name: str = "") -> None:
        # as NodeGraphQt's, minus its tooltip ("node: <name>"), which would replace the canvas's
        self._properties["name"] = name
        if name != self._text_item.toPlainText():
            self._text_item.setPlainText(name)
            if self.scene():
                self.draw_node()
            self.update()

    def _tooltip_disable(self, state: bool) -> None:
        """NodeGraphQt writes its own tooltip on every redraw; the canvas's tooltip (id, type, problems, run
        state) must survive redraws such as an image preview arriving."""

    def _add_port(self, port: Any) -> Any:
        text = QGraphicsTextItem(port.name, self)
        text.setFont(port_font())
        text.setVisible(port.display_name)
        text.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        (self._input_items if port.port_type == PortTypeEnum.IN.value else self._output_items)[port] = text
        if self.scene():
            self.draw_node()
        return port

    def set_port_label(self, port: Any, label: str) -> None:
        items = self._input_items if port in self._input_items else self._output_items
        if port in items and items[port].toPlainText() != label:
            items[port].setPlainText(label)

    # -- layout ---------------------------------------------------------------------------------

    def _visible_widgets(self) -> list[Any]:
        """The fields the layout makes room for: all but parameters shown as input sockets (whatever the level
        of detail hides for the moment)."""
        return [w for w in self._widgets.values() if not getattr(w, "as_input", False)]

    def _natural_size(self) -> tuple[float, float, float]:
        """(width, height, height of title + port rows) before any user size."""
        title = QFontMetricsF(self._text_item.font()).horizontalAdvance(self._text_item.toPlainText()) + 2 * PAD + 12
        inputs = list(self._input_items.values())
        outputs = list(self._output_items.values())
        label_in = max((t.boundingRect().width() for t in inputs), default=0.0)
        label_out = max((t.boundingRect().width() for t in outputs), default=0.0)
        ports_width = label_in + label_out + 2 * PAD + (24 if inputs and outputs else 8)
        widgets = self._visible_widgets()
        widget_width = max((w.widget().minimumSizeHint().width() for w in widgets), default=0) + 2 * PAD
        header = self._title_height() + ROW * max(len(inputs), len(outputs)) + (4 if inputs or outputs else 0)
        body = sum(w.widget().sizeHint().height() + WIDGET_GAP for w in widgets)
        width = max(title, ports_width, widget_width, NodeEnum.WIDTH.value)
        height = max(header + body + PAD, self._title_height() + 24)
        return width, height, header

    def _title_height(self) -> float:
        return QFontMetricsF(self._text_item.font()).height() + 10

    def _draw_node_horizontal(self) -> None:
        width, height, header = self._natural_size()
        self.min_size = (width, height)
        extra = 0.0
        if self.user_size is not None:
            width = max(width, self.user_size[0])
            extra = max(0.0, self.user_size[1] - height)
            height += extra
        self.set_size(width, height)
        self._set_text_color(self.text_color)
        self._text_item.setPos(PAD, (self._title_height() - self._text_item.boundingRect().height()) / 2)
        # ports: one row each, inputs on the left edge, outputs on the right
        top = self._title_height() + 2
        for items, left in ((self._input_items, True), (self._output_items, False)):
            row = 0
            for port, text in items.items():
                text.setVisible(port.display_name and not self._proxy_mode)
                rect = port.boundingRect()
                y = top + row * ROW + (ROW - rect.height()) / 2
                port.setPos(-rect.width() / 2 if left else width - rect.width() / 2, y)
                label = text.boundingRect()
                tx = PAD + 2 if left else width - PAD - 2 - label.width()
                text.setPos(tx, top + row * ROW + (ROW - label.height()) / 2)
                row += 1
        # fields: full width, stacked; stretchable ones share the extra height
        widgets = self._visible_widgets()
        stretchy = [w for w in widgets if getattr(w, "stretch", False)] if self.stretch_widgets else []
        y = header
        for widget in widgets:
            natural = widget.widget().sizeHint().height()
            if widget in stretchy:
                natural += extra / len(stretchy)
            widget.resize(width - 2 * PAD, natural)
            widget.setPos(PAD, y)
            widget.widget().setTitleAlign("left") if hasattr(widget.widget(), "setTitleAlign") else None
            y += natural + WIDGET_GAP
        self.update()

    def draw_node(self) -> None:
        if self.layout_direction is LayoutDirectionEnum.HORIZONTAL.value:
            self._draw_node_horizontal()
        else:
            super().draw_node()

    def set_user_size(self, size: tuple[float, float] | None) -> None:
        if size != self.user_size:
            self.prepareGeometryChange()
            self.user_size = size
            self.draw_node()

    # -- level of detail ----------------------------------------------------------------------

    def auto_switch_mode(self) -> None:
        viewer = self.viewer()
        if viewer is not None:
            self.set_proxy_mode(viewer.transform().m11() < LOD_SCALE)  # paint() decides from its own transform

    def set_proxy_mode(self, mode: bool) -> None:
        """Zoomed out below LOD_SCALE: fields, port labels and ports are not drawn (ports go transparent
        rather than invisible, so links stay attached and the layout is unchanged); the title is drawn large."""
        if mode is self._proxy_mode:
            return
        self._proxy_mode = mode
        visible = not mode
        for widget in self._widgets.values():
            widget.setVisible(visible and not getattr(widget, "as_input", False))
        for items in (self._input_items, self._output_items):
            for port, text in items.items():
                port.setOpacity(0.0 if mode else 1.0)
                text.setVisible(visible and port.display_name)
        self._text_item.setVisible(visible)
        self._x_item.proxy_mode = mode

    # -- painting -------------------------------------------------------------------------------

    def _body_color(self) -> QColor:
        rgb = tuple(self.color[:3])
        if rgb == (13, 18, 23):  # NodeGraphQt's default: our theme's body instead
            return _NODE_BODY_COLOR
        return QColor(*rgb)

    def paint(self, painter: QPainter, option: Any, widget: Any) -> None:
        scale = painter.worldTransform().m11()
        self.set_proxy_mode(scale < LOD_SCALE)
        if self._proxy_mode:
            self._paint_overview(painter, scale)
            return
        painter.save()
        rect = self.boundingRect().adjusted(0.5, 0.5, -0.5, -0.5)
        body = self._body_color()
        painter.setPen(Qt.PenStyle.NoPen)
        radius = 6.0
        painter.setBrush(body)
        painter.drawRoundedRect(rect, radius, radius)
        title = QRectF(rect.left(), rect.top(), rect.width(), self._title_height())
        painter.setBrush(body.darker(150) if body != QColor(*NODE_BODY) else QColor(*TITLE_BAR))
        painter.drawRoundedRect(title, radius, radius)
        painter.drawRect(title.adjusted(0, radius, 0, 0))  # square lower corners
        if self.mode == "bypass":
            painter.setBrush(QColor(*BYPASS_COLOR, 90))
            painter.drawRoundedRect(rect, radius, radius)
        if self.selected:
            painter.setBrush(QColor(255, 255, 255, 18))
            painter.drawRoundedRect(rect, radius, radius)
        # the frame: selection, run state, problems
        pen = QPen(QColor(*NodeEnum.SELECTED_BORDER_COLOR.value), 2.0) if self.selected else QPen(QColor(0, 0, 0, 160), 1.0)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(pen)
        painter.drawRoundedRect(rect, radius, radius)
        self._paint_state(painter, rect)
        if self.user_size is not None or self.isSelected():
            self._paint_grip(painter, rect)
        painter.restore()

    def _paint_overview(self, painter: QPainter, scale: float) -> None:
        """Zoomed out: a plain box with the title large, drawn fast (hundreds of nodes repaint at once)."""
        rect = self._rect
        painter.setPen(_OVERVIEW_SELECTED if self.selected else _OVERVIEW_FRAME)
        painter.setBrush(_BYPASS_BRUSH if self.mode == "bypass" else self._body_color())
        painter.drawRect(rect)
        text, font, origin = self._overview_title(painter, scale)
        painter.setFont(font)
        painter.setPen(_TITLE_PEN)
        painter.drawStaticText(origin, text)
        if self.run_state or self.has_problem:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            self._paint_state(painter, rect.adjusted(0.5, 0.5, -0.5, -0.5))

    def _overview_title(self, painter: QPainter, scale: float) -> tuple[QStaticText, QFont, QPointF]:
        """The title at about LOD_TITLE_PX on screen, wrapped, shrunk to fit the node; its layout is kept per
        zoom step, so a repaint only draws it."""
        key = (self.name, round(scale, 3), self._width, self._height)
        cached = self._title_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        inner = self._rect.adjusted(PAD, PAD, -PAD, -PAD)
        font = QFont(title_font())
        size = max(1, round(LOD_TITLE_PX / max(scale, 1e-3)))
        longest = max(self.name.split(), key=len, default="")
        while True:
            font.setPixelSize(size)
            text = QStaticText(self.name)
            text.setTextWidth(inner.width())
            text.setTextOption(QTextOption(Qt.AlignmentFlag.AlignCenter))
            text.prepare(painter.worldTransform(), font)
            fits = text.size().height() <= inner.height() and QFontMetricsF(font).horizontalAdvance(longest) <= inner.width()
            if fits or size <= 4:
                break
            size = int(size * 0.85)
        origin = QPointF(inner.left(), inner.top() + max(0.0, (inner.height() - text.size().height()) / 2))
        self._title_cache = (key, (text, font, origin))
        return self._title_cache[1]

    def _paint_state(self, painter: QPainter, rect: QRectF) -> None:
        color = STATE_COLORS.get(self.run_state)
        if color is None:
            if self.has_problem:  # found by validation before any run: a dotted red frame (a failure is solid)
                pen = QPen(PROBLEM_COLOR, 2.0)
                pen.setStyle(Qt.PenStyle.DotLine)
                painter.setPen(pen)
                painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 5, 5)
            return
        pen = QPen(color, 2.5 if self.run_state != "waiting" else 1.2)
        if self.run_state == "waiting":
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRoundedRect(rect.adjusted(1, 1, -1, -1), 5, 5)
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

    def _grip_rect(self) -> QRectF:
        rect = self.boundingRect()
        return QRectF(rect.right() - GRIP - 1, rect.bottom() - GRIP - 1, GRIP, GRIP)

    def _paint_grip(self, painter: QPainter, rect: QRectF) -> None:
        grip = self._grip_rect()
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255, 70))
        painter.drawPolygon(QPolygonF([grip.topRight(), grip.bottomRight(), grip.bottomLeft()]))

    # -- state ----------------------------------------------------------------------------------

    def set_run_state(self, state: str, progress: float | None = None) -> None:
        self.run_state = state
        self.progress = progress
        self.update()

    def set_problem(self, flag: bool) -> None:
        if flag != self.has_problem:
            self.has_problem = flag
            self.update()

    def set_mode(self, mode: str | None) -> None:
        if mode != self.mode:
            self.mode = mode
            self.setOpacity(MUTED_OPACITY if mode == "mute" else 1.0)
            self.update()

    # -- resizing -------------------------------------------------------------------------------

    def hoverMoveEvent(self, event: Any) -> None:
        inside = self._grip_rect().adjusted(-3, -3, 3, 3).contains(event.pos())
        self.setCursor(Qt.CursorShape.SizeFDiagCursor if inside else Qt.CursorShape.ArrowCursor)
        super().hoverMoveEvent(event)

    def mousePressEvent(self, event: Any) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._grip_rect().adjusted(-3, -3, 3, 3).contains(event.pos()):
            self._resizing = (event.scenePos(), (self._width, self._height))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: Any) -> None:
        if self._resizing is not None:
            start, (width, height) = self._resizing
            delta = event.scenePos() - start
            self.set_user_size((max(self.min_size[0], width + delta.x()), max(self.min_size[1], height + delta.y())))
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        if self._resizing is not None:
            self._resizing = None
            viewer = self.viewer()
            canvas = getattr(viewer, "canvas", None)
            if canvas is not None:
                canvas.node_resized(self.id, (round(self._width), round(self._height)))
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: Any) -> None:
        if self._grip_rect().adjusted(-3, -3, 3, 3).contains(event.pos()):
            viewer = self.viewer()
            canvas = getattr(viewer, "canvas", None)
            if canvas is not None:
                canvas.node_resized(self.id, None)  # double click on the grip: back to the natural size
            event.accept()
            return
        super().mouseDoubleClickEvent(event)


def application_font_px() -> float:
    """The pixel height of the application's font (for legibility checks)."""
    return QFontMetricsF(QApplication.font()).height()
