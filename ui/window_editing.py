"""The main window's editing commands: add, search, copy, paste, duplicate, delete, modes, colour, rename,
parameters as inputs, groups, layout, and the node context menu."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QApplication, QColorDialog, QInputDialog, QLineEdit, QMenu

from nodegraph.errors import WorkflowError
from nodegraph.graph import LinkRefused
from ui.node_help import NodeHelpDialog
from ui.node_menu import build_node_menu
from ui.search import fitting_port
from ui.theme import min_fit_scale

CLIPBOARD_MIME = "application/x-nodegraph-workflow"
DUPLICATE_OFFSET = (30.0, 30.0)


class WindowEditing:
    """Mixed into :class:`~ui.main_window.MainWindow`: edits of the workflow started from menus and keys."""

    # -- where things go ----------------------------------------------------------------------------

    def _scene_center(self) -> tuple[float, float]:
        viewer = self.canvas.viewer()
        center = viewer.mapToScene(viewer.viewport().rect().center())
        return center.x(), center.y()

    def mouse_scene_pos(self) -> tuple[float, float] | None:
        """The mouse's position on the canvas, or None if the mouse is elsewhere."""
        viewer = self.canvas.viewer()
        local = viewer.viewport().mapFromGlobal(QCursor.pos())
        if not viewer.viewport().rect().contains(local):
            return None
        point = viewer.mapToScene(local)
        return point.x(), point.y()

    def _focus_canvas(self) -> None:
        self.canvas.viewer().setFocus()

    # -- adding ---------------------------------------------------------------------------------------

    def _add_at_center(self, node_type: str) -> None:
        node_id = self.document.add_node(node_type, self._scene_center())
        self.canvas.select([node_id])
        self._focus_canvas()

    def show_tab_search(self) -> None:
        """Tab: search node types; Enter adds the best match where the mouse was."""
        viewer = self.canvas.viewer()
        at = self.mouse_scene_pos() or self._scene_center()
        self._search_request = (QPointF(*at), None)
        local = viewer.mapFromScene(QPointF(*at))
        self.tab_search.popup(QPoint(local.x(), local.y()))

    def show_link_search(self, node_id: str, port: str, from_output: bool, scene_pos: QPointF) -> None:
        """A link let go on empty canvas: search the node types that can take it (or feed it)."""
        view = self.canvas.views.get(node_id)
        if view is None:
            return
        type_name = view.type_names.get(("out:" if from_output else "") + port, "*")
        allowed = {d.id for d in self.registry if fitting_port(d, type_name, from_output) is not None}
        self._search_request = (scene_pos, (node_id, port, from_output, type_name))
        local = self.canvas.viewer().mapFromScene(scene_pos)
        self.tab_search.popup(QPoint(local.x(), local.y()), allowed, f"{'to' if from_output else 'from'} {type_name}")

    def _add_from_search(self, node_type: str) -> None:
        scene_pos, link = getattr(self, "_search_request", (QPointF(*self._scene_center()), None))
        pos = (scene_pos.x(), scene_pos.y())
        try:
            if link is None:
                node_id = self.document.add_node(node_type, pos)
            else:
                source, port, from_output, type_name = link
                definition = self.registry.get(node_type)
                name = fitting_port(definition, type_name, from_output) if definition is not None else None
                if name is None:
                    self.message(f"{node_type} has no {'input' if from_output else 'output'} for {type_name}", error=True)
                    return
                if from_output:
                    node_id = self.document.add_linked_node(node_type, pos, (source, port, "", name))
                else:
                    width = self.canvas.views[source].view.width if source in self.canvas.views else 0
                    node_id = self.document.add_linked_node(node_type, (pos[0] - width, pos[1]), ("", name, source, port))
        except (KeyError, LinkRefused) as exc:
            self.message(f"Cannot add {node_type}: {exc}", error=True)
            return
        self.canvas.select([node_id])
        self._focus_canvas()

    # -- clipboard ------------------------------------------------------------------------------------

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

    def paste(self, keep_outside_links: bool = False) -> list[str]:
        """Paste at the mouse (or the middle of the view), keeping the links among the pasted nodes; with
        ``keep_outside_links`` (Ctrl+Shift+V) also the links from nodes that were not copied."""
        mime = QApplication.clipboard().mimeData()
        if mime is None:
            return []
        raw = bytes(mime.data(CLIPBOARD_MIME).data()).decode("utf-8") if mime.hasFormat(CLIPBOARD_MIME) else mime.text()
        try:
            fragment = json.loads(raw)
            ids = self.document.paste(fragment, at=self.mouse_scene_pos() or self._scene_center(), keep_outside_links=keep_outside_links)
        except (json.JSONDecodeError, WorkflowError, AttributeError, TypeError):
            self.message("The clipboard holds no nodes", error=True)
            return []
        self.canvas.select(ids)
        return ids

    def paste_with_links(self) -> list[str]:
        return self.paste(keep_outside_links=True)

    def duplicate(self, node_ids: list[str] | None = None) -> list[str]:
        """Ctrl+D: copies of the nodes beside them, with their links (inputs from other nodes included)."""
        ids = node_ids if node_ids is not None else self.canvas.selected_ids()
        if not ids:
            return []
        new = self.document.paste(self.document.fragment(ids), DUPLICATE_OFFSET, keep_outside_links=True, text="duplicate")
        self.canvas.select(new)
        return new

    # -- node properties ------------------------------------------------------------------------------

    def toggle_mode(self, mode: str) -> None:
        """Ctrl+B (bypass) and Ctrl+M (mute) on the selected nodes."""
        ids = self.canvas.selected_ids()
        if not ids:
            self.message("Select the nodes to " + mode + " first")
            return
        self.document.toggle_mode(ids, mode)

    def rename_node(self, node_id: str | None = None) -> None:
        if node_id is None:
            ids = self.canvas.selected_ids()
            if len(ids) != 1:
                self.message("Select one node to rename")
                return
            node_id = ids[0]
        view = self.canvas.views[node_id]
        title, ok = QInputDialog.getText(self, "Rename node", "Title (empty: the type's name):", QLineEdit.EchoMode.Normal, view.name())
        self._after_dialog()
        if ok:
            self.document.set_title(node_id, title)

    def color_nodes(self, node_ids: list[str], rgb: tuple[int, int, int] | None) -> None:
        self.document.undo_stack.beginMacro("colour nodes")
        for node_id in node_ids:
            self.document.set_color(node_id, rgb)
        self.document.undo_stack.endMacro()

    def choose_color(self, node_ids: list[str] | None = None) -> None:
        ids = node_ids if node_ids is not None else self.canvas.selected_ids()
        if not ids:
            return
        color = QColorDialog.getColor(parent=self, title="Node colour")
        self._after_dialog()
        if color.isValid():
            self.color_nodes(ids, (color.red(), color.green(), color.blue()))

    def set_param_input(self, node_id: str, name: str, as_input: bool) -> None:
        self.document.set_param_input(node_id, name, as_input)

    def show_node_help(self, node_id: str | None = None) -> None:
        ids = [node_id] if node_id else self.canvas.selected_ids()
        if not ids:
            self.message("Select a node to see its help")
            return
        definition = self.registry.get(self.document.graph.nodes[ids[0]].type)
        if definition is None:
            self.message(f"{ids[0]}: its node type is not installed", error=True)
            return
        dialog = NodeHelpDialog(definition, self)
        dialog.show()

    # -- groups ---------------------------------------------------------------------------------------

    def group_selected(self) -> int | None:
        """Ctrl+G: a group around the selected nodes (or an empty one at the mouse)."""
        items = [self.canvas.views[i].view for i in self.canvas.selected_ids() if i in self.canvas.views]
        if items:
            rect = QRectF()
            for item in items:
                rect = rect.united(item.sceneBoundingRect())
            rect = rect.adjusted(-30, -50, 30, 30)
        else:
            x, y = self.mouse_scene_pos() or self._scene_center()
            rect = QRectF(x, y, 400, 300)
        return self.document.add_group((rect.x(), rect.y(), rect.width(), rect.height()))

    # -- layout and view ------------------------------------------------------------------------------

    def auto_layout(self) -> None:
        """Edit > Auto Layout: layered, left to right, by the nodes' real sizes (one undo step)."""
        self.document.move_nodes(self.canvas.layout_positions())
        self.fit_all()

    def fit_all(self) -> None:
        """Show the whole workflow, but never so small that node text drops below 9 px on screen."""
        items = [view.view for view in self.canvas.views.values()] + list(self.canvas.groups.items)
        if items:
            viewer = self.canvas.viewer()
            viewer.show_rect(viewer._combined_rect(items), min_fit_scale())

    # -- menus ----------------------------------------------------------------------------------------

    def node_menu(self, node_id: str) -> QMenu:
        """The context menu of one node (right click); other parts add to it through ui.node_menu."""
        return build_node_menu(self, node_id)

    def _show_node_menu(self, node_id: str, pos: QPoint) -> None:
        menu = self.node_menu(node_id)
        menu.exec(pos)
        menu.deleteLater()
        self._after_dialog()

    def _show_canvas_menu(self, global_pos: QPoint, scene_pos: QPointF) -> None:
        menu = QMenu(self)
        for action in self.canvas_menu_actions:
            menu.addAction(action) if action is not None else menu.addSeparator()
        self._context_scene_pos = scene_pos
        menu.exec(global_pos)
        menu.deleteLater()
        self._after_dialog()

    def _after_dialog(self, *_: Any) -> None:
        """A menu or dialog took the keyboard: forget modifier keys it swallowed, give the canvas the focus."""
        self.canvas.viewer().clear_key_state()
