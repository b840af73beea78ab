"""Groups: titled, coloured frames behind nodes. Dragging a group's title bar moves it with the nodes inside
it (a node is inside when its centre is); the grip at the bottom-right corner resizes it; double-clicking
the title renames it; right-clicking the title offers colours and removal.

The document holds the groups (``graph.groups``, saved in the workflow file); :class:`GroupLayer` keeps one
:class:`GroupItem` per group and sends every change back to the document as one undo step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QInputDialog, QLineEdit, QMenu

from ui.theme import title_font

if TYPE_CHECKING:
    from ui.canvas import Canvas

TITLE_HEIGHT = 34.0
GRIP = 16.0
Z_GROUP = -3  # behind links (-1) and nodes (1)
GROUP_COLORS: dict[str, str] = {
    "Blue": "#3f6f9f", "Green": "#4a7f4a", "Red": "#9f4a4a", "Purple": "#7a4f9f",
    "Yellow": "#9f8f3f", "Cyan": "#3f8f8f", "Grey": "#5f6368",
}


class GroupItem(QGraphicsItem):
    """One group on the canvas. Only the title bar and the resize grip take the mouse: clicks in the body
    reach the canvas (rubber-band selection) and the nodes."""

    def __init__(self, layer: GroupLayer, index: int, group: dict[str, Any]) -> None:
        super().__init__()
        self.layer = layer
        self.index = index
        x, y, w, h = (float(v) for v in group["rect"])
        self.setPos(x, y)
        self.size = (w, h)
        self.title = str(group.get("title", ""))
        self.color = QColor(group.get("color") or "#3f6f9f")
        self.setZValue(Z_GROUP)
        self.setAcceptHoverEvents(True)
        self._drag: tuple[str, QPointF, Any] | None = None

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self.size)

    def title_rect(self) -> QRectF:
        return QRectF(0, 0, self.size[0], TITLE_HEIGHT)

    def grip_rect(self) -> QRectF:
        return QRectF(self.size[0] - GRIP, self.size[1] - GRIP, GRIP, GRIP)

    def shape(self) -> Any:
        from PySide6.QtGui import QPainterPath

        path = QPainterPath()
        path.addRect(self.title_rect())
        path.addRect(self.grip_rect())
        return path

    def scene_rect(self) -> QRectF:
        return QRectF(self.pos(), QPointF(self.pos().x() + self.size[0], self.pos().y() + self.size[1]))

    def paint(self, painter: QPainter, option: Any, widget: Any) -> None:
        rect = self.boundingRect()
        fill = QColor(self.color)
        fill.setAlpha(45)
        painter.setPen(QPen(self.color.lighter(120), 1.5))
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 6, 6)
        bar = QColor(self.color)
        bar.setAlpha(170)
        painter.setBrush(bar)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(self.title_rect(), 6, 6)
        scale = max(painter.worldTransform().m11(), 1e-3)
        font = QFont(title_font())
        font.setPixelSize(max(1, round(max(17.0, 15.0 / scale))))  # stays readable when zoomed out
        painter.setFont(font)
        painter.setPen(QColor(245, 245, 245))
        text_rect = QRectF(10, 0, rect.width() - 20, max(TITLE_HEIGHT, font.pixelSize() * 1.4))
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.title or "Group")
        grip = self.grip_rect().adjusted(3, 3, -3, -3)
        painter.setBrush(QColor(255, 255, 255, 90))
        painter.drawPolygon(QPolygonF([grip.topRight(), grip.bottomRight(), grip.bottomLeft()]))

    def hoverMoveEvent(self, event: Any) -> None:
        if self.grip_rect().contains(event.pos()):
            self.setCursor(Qt.CursorShape.SizeFDiagCursor)
        else:
            self.setCursor(Qt.CursorShape.SizeAllCursor)

    def mousePressEvent(self, event: Any) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        viewer = self.layer.canvas.viewer()
        viewer._node_positions = {}  # the group moves its nodes itself, as one undo step
        if self.grip_rect().contains(event.pos()):
            self._drag = ("resize", event.scenePos(), self.size)
        else:
            self.layer.canvas.clear_selection()
            members = self.layer.members(self)
            starts = {node_id: QPointF(self.layer.canvas.views[node_id].view.pos()) for node_id in members}
            self._drag = ("move", event.scenePos(), (QPointF(self.pos()), starts))
        event.accept()

    def mouseMoveEvent(self, event: Any) -> None:
        if self._drag is None:
            return
        kind, start, origin = self._drag
        delta = event.scenePos() - start
        self.prepareGeometryChange()
        if kind == "resize":
            self.size = (max(120.0, origin[0] + delta.x()), max(TITLE_HEIGHT + 40, origin[1] + delta.y()))
        else:
            own, starts = origin
            self.setPos(own + delta)
            for node_id, pos in starts.items():
                view = self.layer.canvas.views.get(node_id)
                if view is not None:
                    view.view.setPos(pos + delta)
        self.update()

    def mouseReleaseEvent(self, event: Any) -> None:
        if self._drag is None:
            return
        kind, _, origin = self._drag
        self._drag = None
        rect = [round(self.pos().x()), round(self.pos().y()), round(self.size[0]), round(self.size[1])]
        if kind == "resize":
            self.layer.document.update_group(self.index, "resize group", rect=rect)
        else:
            _, starts = origin
            positions = {n: (self.layer.canvas.views[n].view.pos().x(), self.layer.canvas.views[n].view.pos().y())
                         for n in starts if n in self.layer.canvas.views}
            self.layer.document.move_group(self.index, rect, positions)
        event.accept()

    def mouseDoubleClickEvent(self, event: Any) -> None:
        if self.title_rect().contains(event.pos()):
            self.layer.rename(self.index)
            event.accept()


class GroupLayer(QObject):
    """Keeps the canvas's group items in step with the document's groups."""

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.document = canvas.document
        self.items: list[GroupItem] = []
        self.ask_text: Callable[[str, str, str], tuple[str, bool]] = self._ask_text
        self.document.groups_changed.connect(self.rebuild)
        self.document.reset.connect(self.rebuild)

    def rebuild(self) -> None:
        scene = self.canvas.viewer().scene()
        for item in self.items:
            scene.removeItem(item)
        self.items = [GroupItem(self, i, g) for i, g in enumerate(self.document.graph.groups)]
        for item in self.items:
            scene.addItem(item)

    def members(self, item: GroupItem) -> list[str]:
        """The nodes inside a group: those whose centre lies in its frame."""
        frame = item.scene_rect()
        return [node_id for node_id, view in self.canvas.views.items() if frame.contains(view.view.sceneBoundingRect().center())]

    def group_at(self, scene_pos: QPointF) -> GroupItem | None:
        for item in reversed(self.items):
            if item.shape().contains(item.mapFromScene(scene_pos)):
                return item
        return None

    @staticmethod
    def _ask_text(title: str, label: str, text: str) -> tuple[str, bool]:
        return QInputDialog.getText(None, title, label, QLineEdit.EchoMode.Normal, text)

    def rename(self, index: int) -> None:
        title, ok = self.ask_text("Rename group", "Title:", self.document.graph.groups[index].get("title", ""))
        self.canvas.viewer().clear_key_state()
        if ok:
            self.document.update_group(index, "rename group", title=title.strip() or "Group")

    def menu(self, index: int, parent: Any = None) -> QMenu:
        menu = QMenu(parent)
        menu.addAction("Rename…", lambda: self.rename(index))
        colours = menu.addMenu("Colour")
        for name, value in GROUP_COLORS.items():
            colours.addAction(name, lambda _=False, v=value: self.document.update_group(index, "colour group", color=v))
        menu.addAction("Select Its Nodes", lambda: self.canvas.select(self.members(self.items[index])))
        menu.addSeparator()
        menu.addAction("Remove Group (keep its nodes)", lambda: self.document.remove_group(index))
        return menu
