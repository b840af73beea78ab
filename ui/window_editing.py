"""The main window's editing commands: add, copy, paste, delete, colour, layout, the node menu."""

from __future__ import annotations

import json

from PySide6.QtCore import QMimeData, QPoint
from PySide6.QtWidgets import QApplication, QColorDialog, QMenu

from nodegraph.errors import WorkflowError
from ui.theme import min_fit_scale

CLIPBOARD_MIME = "application/x-nodegraph-workflow"


class WindowEditing:
    """Mixed into :class:`~ui.main_window.MainWindow`: edits of the workflow started from menus and keys."""

    def _scene_center(self) -> tuple[float, float]:
        viewer = self.canvas.viewer()
        center = viewer.mapToScene(viewer.viewport().rect().center())
        return center.x(), center.y()

    def _add_at_center(self, node_type: str) -> None:
        node_id = self.document.add_node(node_type, self._scene_center())
        self.canvas.select([node_id])

    def _add_at_cursor(self, node_type: str) -> None:
        viewer = self.canvas.viewer()
        pos = viewer.mapToScene(self.tab_search.pos())
        node_id = self.document.add_node(node_type, (pos.x(), pos.y()))
        self.canvas.select([node_id])

    def show_tab_search(self) -> None:
        viewer = self.canvas.viewer()
        cursor = viewer.mapFromGlobal(self.cursor().pos())
        if not viewer.rect().contains(cursor):
            cursor = viewer.rect().center()
        self.tab_search.popup(QPoint(cursor.x(), cursor.y()))

    def delete_selected(self) -> None:
        self.document.remove_nodes(self.canvas.selected_ids())

    def copy(self) -> bool:
        ids = self.canvas.selected_ids()
        if not ids:
            return False
        text = json.dumps(self.document.fragment(ids), ensure_ascii=False)
        mime = QMimeData()
        mime.setData(CLIPBOARD_MIME, text.encode("utf-8"))
        mime.setText(text)
        QApplication.clipboard().setMimeData(mime)
        return True

    @staticmethod
    def release_clipboard() -> None:
        """Drop nodes we put on the clipboard before the application ends: Qt deletes the clipboard's data
        in its C exit handlers, after Python has finalised, which crashes (segfault) on exit."""
        clipboard = QApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and mime.hasFormat(CLIPBOARD_MIME):
            clipboard.clear()

    def cut(self) -> None:
        if self.copy():
            self.delete_selected()

    def paste(self) -> list[str]:
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return []
        raw = bytes(mime.data(CLIPBOARD_MIME).data()).decode("utf-8") if mime.hasFormat(CLIPBOARD_MIME) else mime.text()
        try:
            fragment = json.loads(raw)
            ids = self.document.paste(fragment)
        except (json.JSONDecodeError, WorkflowError):
            self.message("The clipboard holds no nodes", error=True)
            return []
        self.canvas.select(ids)
        return ids

    def choose_color(self) -> None:
        ids = self.canvas.selected_ids()
        if not ids:
            return
        color = QColorDialog.getColor(parent=self, title="Node colour")
        if color.isValid():
            self.document.undo_stack.beginMacro("colour nodes")
            for node_id in ids:
                self.document.set_color(node_id, (color.red(), color.green(), color.blue()))
            self.document.undo_stack.endMacro()

    def auto_layout(self) -> None:
        """Edit > Auto Layout: layered, left to right, by the nodes' real sizes (one undo step)."""
        self.document.move_nodes(self.canvas.layout_positions())
        self.fit_all()

    def fit_all(self) -> None:
        """Show the whole workflow, but never so small that node text drops below 9 px on screen."""
        items = [view.view for view in self.canvas.views.values()]
        if items:
            viewer = self.canvas.viewer()
            viewer.show_rect(viewer._combined_rect(items), min_fit_scale())

    def node_menu(self, node_id: str) -> QMenu:
        """The context menu of one node (right click)."""
        menu = QMenu(self)
        run = menu.addAction("Run This Node", lambda: self.run_node(node_id))
        run.setStatusTip("Run this node and the nodes it needs; nothing downstream")
        run.setEnabled(not self.runner.running)
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.document.remove_nodes([node_id]))
        return menu

    def _show_node_menu(self, node_id: str, pos: QPoint) -> None:
        menu = self.node_menu(node_id)
        menu.exec(pos)
        menu.deleteLater()
