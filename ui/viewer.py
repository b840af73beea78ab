"""The canvas's view: NodeGraphQt's viewer taught the engine's link rule, trustworthy modifier keys, link
drops, the Tab search key and a fit that keeps text legible."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from NodeGraphQt.qgraphics.node_base import NodeItem
from NodeGraphQt.qgraphics.port import PortItem
from NodeGraphQt.widgets.viewer import NodeViewer
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QContextMenuEvent, QFocusEvent, QKeyEvent
from PySide6.QtWidgets import QGraphicsProxyWidget, QGraphicsView

if TYPE_CHECKING:
    from ui.canvas import Canvas

NODE_MIME = "application/x-nodegraph-node-type"
FIT_MARGIN = 40.0  # scene units around the nodes when fitting (ports stick out of the node items)


class CanvasViewer(NodeViewer):
    """The NodeGraphQt viewer, taught the engine's link rule, our drops and the Tab search key."""

    tab_pressed = Signal()
    link_dropped = Signal(object, QPointF)  # the port item the drag started from, the scene position
    context_menu_on_canvas = Signal(QPoint, QPointF)  # global position, scene position (empty canvas)

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(undo_stack=None)
        self.canvas = canvas
        self.refusal: str | None = None
        self.space_held = False

    # -- modifier keys ----------------------------------------------------------------------------
    # NodeGraphQt tracks Ctrl/Shift/Alt from key events only. A dialog opened by a shortcut (Ctrl+N, Ctrl+O)
    # takes the key release, so the viewer kept believing Ctrl was held: clicks only deselected, nodes did not
    # drag. Every mouse event carries the real modifier state: take it from there, and forget it on focus-in.

    def sync_modifiers(self, modifiers: Qt.KeyboardModifier) -> None:
        mods = Qt.KeyboardModifier
        wanted = modifiers & (mods.AltModifier | mods.ControlModifier | mods.ShiftModifier)
        # Space held pans with the left button, as in ComfyUI (NodeGraphQt pans with Alt)
        self.ALT_state = (bool(wanted & mods.AltModifier) and not (wanted & mods.ControlModifier)) or self.space_held
        self.CTRL_state = wanted == mods.ControlModifier
        self.SHIFT_state = bool(wanted & mods.ShiftModifier) and not (wanted & mods.ControlModifier)
        if not self.SHIFT_state and not self.CTRL_state:
            self._cursor_text.setVisible(False)

    def mousePressEvent(self, event: Any) -> None:
        self.sync_modifiers(event.modifiers())
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: Any) -> None:
        self.sync_modifiers(event.modifiers())
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        self.sync_modifiers(event.modifiers())
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat() and self.scene().focusItem() is None:
            self.space_held = True
            self.ALT_state = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat() and self.space_held:
            self.space_held = False
            self.sync_modifiers(event.modifiers())
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: Any) -> None:
        # double click on empty canvas: the node search, as in ComfyUI
        if event.button() == Qt.MouseButton.LeftButton and self.itemAt(event.pos()) is None:
            self.tab_pressed.emit()
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def clear_key_state(self) -> None:
        super().clear_key_state()
        self.space_held = False

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.clear_key_state()
        self._cursor_text.setVisible(False)
        super().focusInEvent(event)

    # -- links ------------------------------------------------------------------------------------

    def _validate_accept_connection(self, from_port: Any, to_port: Any) -> bool:
        if not super()._validate_accept_connection(from_port, to_port):
            return False
        reason = self.canvas.refusal_reason(from_port, to_port)
        if reason is not None:
            self.refusal = reason
            return False
        return True

    def apply_live_connection(self, event: Any) -> None:
        if not self._LIVE_PIPE.isVisible():
            return
        start, detached = self._start_port, self._detached_port
        on_port = any(isinstance(item, PortItem) for item in self.scene().items(event.scenePos()))
        if start is not None and detached is None and not on_port:
            # a new link let go on a field, a node or empty canvas: the canvas decides what it means
            start.hovered = False
            self.end_live_connection()
            self.link_dropped.emit(start, event.scenePos())
            return
        self.refusal = None
        super().apply_live_connection(event)
        if self.refusal:
            self.canvas.edit_refused.emit(self.refusal)
            self.refusal = None

    # -- keys -------------------------------------------------------------------------------------

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

    # -- geometry ---------------------------------------------------------------------------------

    def _combined_rect(self, nodes: list) -> QRectF:
        # NodeGraphQt groups and ungroups every item to measure them: seconds for a few hundred nodes
        rect = QRectF()
        for item in nodes:
            rect = rect.united(item.sceneBoundingRect())
        return rect.adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)

    def scale_factor(self) -> float:
        return self.transform().m11()

    def show_rect(self, rect: QRectF, min_scale: float, max_scale: float = 1.0) -> float:
        """Show ``rect`` as large as fits, but never smaller than ``min_scale`` (then the view shows the
        rectangle's top-left part, where a workflow starts, and the rest is a pan away). Returns the zoom."""
        view = self.viewport().rect().adjusted(2, 2, -2, -2)  # QGraphicsView.fitInView keeps a 2 px margin
        if rect.isEmpty() or view.width() <= 0 or view.height() <= 0:
            return self.scale_factor()
        scale = min(view.width() / rect.width(), view.height() / rect.height())
        scale = max(min_scale, min(max_scale, scale))
        width, height = view.width() / scale, view.height() / scale
        left = rect.center().x() - width / 2 if rect.width() <= width else rect.left()
        top = rect.center().y() - height / 2 if rect.height() <= height else rect.top()
        self._scene_range = QRectF(left, top, width, height)
        self._update_scene()
        return self.scale_factor()

    def node_at(self, viewport_pos: QPoint) -> str | None:
        """The engine id of the node under a viewport position (its widgets and ports count as the node)."""
        item = self.itemAt(viewport_pos)
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        return self.canvas.engine_id(item.id) if item is not None else None

    # -- menus and drops --------------------------------------------------------------------------

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        # One menu for every node type (NodeGraphQt's node menus are registered per type string).
        self.RMB_state = False
        if isinstance(self.itemAt(event.pos()), QGraphicsProxyWidget):
            QGraphicsView.contextMenuEvent(self, event)  # a field inside a node keeps its own menu (cut, paste)
            return
        node_id = self.node_at(event.pos())
        group = self.canvas.groups.group_at(self.mapToScene(event.pos()))
        if node_id is not None:
            self.canvas.node_menu_requested.emit(node_id, event.globalPos())
        elif group is not None:
            menu = self.canvas.groups.menu(group.index, self)
            menu.exec(event.globalPos())
            menu.deleteLater()
            self.clear_key_state()
        else:
            self.context_menu_on_canvas.emit(event.globalPos(), self.mapToScene(event.pos()))
        event.accept()

    def _accepts(self, mime: QMimeData) -> bool:
        return mime.hasFormat(NODE_MIME) or mime.hasUrls()

    def dragEnterEvent(self, event: Any) -> None:
        event.accept() if self._accepts(event.mimeData()) else event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        event.accept() if self._accepts(event.mimeData()) else event.ignore()
