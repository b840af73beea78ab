"""The editor's main window: menus, canvas, palette, image and log panels, run controls, files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QColorDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
)

from nodegraph import plugins
from nodegraph.errors import Problem, WorkflowError
from nodegraph.executor import Executor
from nodegraph.graph import validate
from nodegraph.model_folders import ModelFolders
from nodegraph.png_meta import WORKFLOW_KEY, png_text_chunks
from nodegraph.registry import Registry, default_registry
from nodegraph.workflow import parse_workflow
from ui.canvas import Canvas
from ui.document import Document
from ui.files import Autosave, RecentFiles, data_dir
from ui.image_panel import ImagePanel
from ui.layout import auto_layout
from ui.mask_editor import attach_to_image_panel
from ui.palette import Palette, TabSearch
from ui.plugins_dialog import PluginsDialog
from ui.runner import RunController

CLIPBOARD_MIME = "application/x-nodegraph-workflow"
MAX_LOGGED_PROBLEMS = 50
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
WORKFLOW_FILTER = "Workflows (*.json *.png);;All files (*)"


def image_loader_type(registry: Registry) -> tuple[str, str] | None:
    """The node type (and its parameter) that loads an image file: core.LoadImage if installed, else any
    type with an image_file parameter."""
    candidates = sorted(registry, key=lambda d: d.id != "core.LoadImage")
    for definition in candidates:
        for param in definition.params:
            if param.kind == "image_file":
                return definition.id, param.name
    return None


def problem_text(problem: Problem) -> str:
    """A problem as shown on its own node: without the node's id, which the node already shows."""
    detail = f" (expected {problem.expected}, found {problem.found})" if problem.expected or problem.found else ""
    return (f"{problem.field}: " if problem.field else "") + problem.message + detail


def png_has_workflow(path: Path) -> bool:
    try:
        return WORKFLOW_KEY in png_text_chunks(path.read_bytes())
    except OSError:
        return False


class MainWindow(QMainWindow):
    def __init__(
        self,
        registry: Registry | None = None,
        *,
        recent: RecentFiles | None = None,
        autosave_dir: Path | None = None,
        remember_layout: bool = True,
    ) -> None:
        super().__init__()
        self.remember_layout = remember_layout  # off for screenshots: they must not depend on the last session
        self.registry = registry if registry is not None else default_registry()
        self.document = Document(self.registry, self)
        self.folders = ModelFolders.from_environment()
        self.canvas = Canvas(self.document, self.folders)
        self.runner = RunController(self.registry, Executor(self.registry, folders=self.folders), self)
        self.recent = recent or RecentFiles()
        self.autosave = Autosave(self.document, autosave_dir)
        self.run_nodes: list[str] = []
        self.finished_nodes: set[str] = set()
        self.node_fraction: dict[str, float] = {}
        self.problems: list[Problem] = []
        # validation runs once per burst of edits (a paste is one undo step but many signals), after the view
        self._validation = QTimer(self)
        self._validation.setSingleShot(True)
        self._validation.setInterval(0)
        self._validation.timeout.connect(lambda: self.validate_now())

        viewer = self.canvas.viewer()
        self.setCentralWidget(viewer)
        self.tab_search = TabSearch(self.registry, viewer)
        self.palette = Palette(self.registry)
        self.image_panel = ImagePanel()
        attach_to_image_panel(self)  # right click: Inpaint This Image…
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.palette_dock = self._dock("Nodes", self.palette, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.image_dock = self._dock("Images", self.image_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.log_dock = self._dock("Log", self.log_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.palette_dock, self.image_dock], [230, 330], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [120], Qt.Orientation.Vertical)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setFormat("%p%")
        self.progress.setValue(0)
        self.state_label = QLabel("Ready")
        self.problems_label = QLabel()  # how many problems validation found (details in its tooltip)
        self.problems_label.setStyleSheet("color: #eb5a46;")
        self.problems_label.hide()
        self.statusBar().addPermanentWidget(self.problems_label)
        self.statusBar().addPermanentWidget(self.state_label)
        self.statusBar().addPermanentWidget(self.progress)

        self._build_actions()
        self._wire()
        self.setAcceptDrops(True)
        self.resize(1500, 900)
        if remember_layout:
            self._restore_layout()
        self._update_title()

    # -- construction ----------------------------------------------------------------------------

    def _dock(self, title: str, widget: Any, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda *_: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        stack = self.document.undo_stack
        self.new_action = self._action("&New", self.new, QKeySequence.StandardKey.New)
        self.open_action = self._action("&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.save_action = self._action("&Save", self.save, QKeySequence.StandardKey.Save)
        self.save_as_action = self._action("Save &As…", self.save_as, QKeySequence.StandardKey.SaveAs)
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Y")])
        self.copy_action = self._action("&Copy", self.copy, QKeySequence.StandardKey.Copy)
        self.cut_action = self._action("Cu&t", self.cut, QKeySequence.StandardKey.Cut)
        self.paste_action = self._action("&Paste", self.paste, QKeySequence.StandardKey.Paste)
        self.delete_action = self._action("&Delete", self.delete_selected, [QKeySequence(QKeySequence.StandardKey.Delete), QKeySequence("Backspace")])
        self.select_all_action = self._action("Select &All", self.canvas.select_all, QKeySequence.StandardKey.SelectAll)
        self.layout_action = self._action("Auto &Layout", self.auto_layout, "Ctrl+L", "Arrange the nodes in columns by depth")
        self.color_action = self._action("Node &Colour…", self.choose_color, None, "Colour the selected nodes")
        self.add_node_action = self._action("Add &Node…", self.show_tab_search, None, "Search node types (Tab on the canvas)")
        self.run_action = self._action("&Run", self.run, [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")], "Run the workflow")
        self.run_selected_action = self._action(
            "Run &Selected Nodes", self.run_selected, [QKeySequence("Ctrl+Shift+Return"), QKeySequence("Ctrl+Shift+Enter")],
            "Run the selected nodes and what they need (also: right click on a node)",
        )
        self.stop_action = self._action("&Stop", self.stop, "Ctrl+.", "Stop the run")
        self.stop_action.setEnabled(False)
        self.fit_action = self._action("&Fit All", self.fit_all, "F", "Show every node")
        self.reload_plugins_action = self._action(
            "&Reload Plugin Folders", self.reload_plugins, None, "Re-import the plugin folders: new and changed node types appear"
        )
        self.show_plugins_action = self._action("Show &Plugins…", self.show_plugins, None, "Every plugin, its node types and errors")
        # shortcuts of canvas actions must not steal keys from text fields inside nodes
        for action in (self.copy_action, self.cut_action, self.paste_action, self.delete_action, self.select_all_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.removeAction(action)  # only while the canvas has focus (the log and palette keep their keys)
            self.canvas.viewer().addAction(action)

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for action in (self.new_action, self.open_action):
            file_menu.addAction(action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        for action in (self.save_action, self.save_as_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit_menu = bar.addMenu("&Edit")
        for action in (self.undo_action, self.redo_action, None, self.cut_action, self.copy_action, self.paste_action,
                       self.delete_action, self.select_all_action, None, self.add_node_action, self.color_action,
                       self.layout_action):
            edit_menu.addSeparator() if action is None else edit_menu.addAction(action)
        run_menu = bar.addMenu("&Run")
        run_menu.addAction(self.run_action)
        run_menu.addAction(self.run_selected_action)
        run_menu.addAction(self.stop_action)
        plugins_menu = bar.addMenu("&Plugins")
        plugins_menu.addAction(self.reload_plugins_action)
        plugins_menu.addAction(self.show_plugins_action)
        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.fit_action)
        for dock in (self.palette_dock, self.image_dock, self.log_dock):
            view_menu.addAction(dock.toggleViewAction())

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main toolbar")
        for action in (self.new_action, self.open_action, self.save_action, None, self.undo_action, self.redo_action,
                       None, self.run_action, self.stop_action):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)

        menu = self.canvas.get_context_menu("graph").qmenu
        for action in (self.add_node_action, self.paste_action, self.layout_action, self.fit_action):
            menu.addAction(action)
        node_menu = self.canvas.get_context_menu("nodes").qmenu
        node_menu.setEnabled(False)

    def _wire(self) -> None:
        self.document.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.document.path_changed.connect(self._update_title)
        self.document.reset.connect(self._on_reset)
        self.canvas.edit_refused.connect(lambda text: self.message(f"Refused: {text}", error=True))
        self.canvas.files_dropped.connect(self.open_dropped)
        self.canvas.node_menu_requested.connect(self._show_node_menu)
        for signal in (self.document.node_added, self.document.node_removed, self.document.inputs_changed,
                       self.document.param_changed, self.document.node_replaced):
            signal.connect(lambda *_: self._validation.start())  # every edit of the graph, undo and redo included
        self.canvas.viewer().tab_pressed.connect(self.show_tab_search)
        self.tab_search.chosen.connect(self._add_at_cursor)
        self.palette.add_requested.connect(self._add_at_center)
        self.runner.run_started.connect(self._on_run_started)
        self.runner.node_state.connect(self._on_node_state)
        self.runner.node_progress.connect(self._on_node_progress)
        self.runner.node_images.connect(self._on_node_images)
        self.runner.node_text.connect(self.canvas.show_text)
        self.runner.log.connect(self.log)
        self.runner.run_finished.connect(self._on_run_finished)

    def _restore_layout(self) -> None:
        """Window size and panel arrangement from the last session."""
        geometry = self.recent.store.value("window/geometry")
        state = self.recent.store.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    # -- messages --------------------------------------------------------------------------------

    def message(self, text: str, error: bool = False) -> None:
        self.statusBar().showMessage(text, 8000)
        if error:
            self.log("warning", text)

    def log(self, level: str, text: str) -> None:
        prefix = {"error": "✖ ", "warning": "⚠ "}.get(level, "")
        self.log_view.appendPlainText(prefix + text)

    def ask(self, title: str, text: str, buttons: Any, default: Any) -> Any:
        """A modal question (tests replace this to answer without a person)."""
        return QMessageBox.question(self, title, text, buttons, default)

    def _on_clean_changed(self, _clean: bool) -> None:
        self._update_title()

    def _update_title(self) -> None:
        name = self.document.path.name if self.document.path else "Untitled"
        self.setWindowTitle(f"{name}[*] — nodegraph")
        self.setWindowModified(self.document.dirty)

    # -- files -----------------------------------------------------------------------------------

    def maybe_save(self) -> bool:
        """True if it is fine to drop the current document (saved, discarded, or nothing to lose)."""
        if not self.document.dirty:
            return True
        buttons = QMessageBox.StandardButton
        answer = self.ask(
            "Unsaved changes",
            "The workflow has unsaved changes. Save them first?",
            buttons.Save | buttons.Discard | buttons.Cancel,
            buttons.Save,
        )
        if answer == buttons.Save:
            return self.save()
        return answer == buttons.Discard

    def new(self) -> None:
        if self.maybe_save():
            from nodegraph.graph import Graph

            self.document.replace(Graph(), None)

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open workflow", str(self.document.path or ""), WORKFLOW_FILTER)
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str | Path, ask: bool = True) -> bool:
        if ask and not self.maybe_save():
            return False
        try:
            self.document.open(path)
        except WorkflowError as exc:
            lines = "\n".join(f"• {p}" for p in exc.problems[:20])
            QMessageBox.critical(self, "Cannot open workflow", f"{path} cannot be opened:\n{lines}")
            self.log("error", f"cannot open {path}: " + "; ".join(str(p) for p in exc.problems))
            return False
        self.recent.add(path)
        self.message(f"Opened {path}")
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self, path: str | Path | None = None) -> bool:
        if path is None:
            suggestion = str(self.document.path or "workflow.json")
            path, _ = QFileDialog.getSaveFileName(self, "Save workflow", suggestion, "Workflows (*.json)")
            if not path:
                return False
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_suffix(".json")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        try:
            self.document.save(path)
        except OSError as exc:
            QMessageBox.critical(self, "Cannot save", f"Could not write {path}: {exc.strerror or exc}")
            return False
        self.recent.add(path)
        self.message(f"Saved {path}")
        return True

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for path in paths:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))

    def offer_recovery(self) -> bool:
        """After a crash: offer the autosaved workflow. Returns True if it was restored."""
        record = self.autosave.pending()
        if record is None:
            return False
        buttons = QMessageBox.StandardButton
        answer = self.ask(
            "Recover unsaved work",
            "The editor did not close normally last time. Restore the unsaved workflow?",
            buttons.Yes | buttons.No,
            buttons.Yes,
        )
        if answer != buttons.Yes:
            self.autosave.discard()
            return False
        try:
            graph = parse_workflow(record["workflow"], self.registry)
        except WorkflowError as exc:
            self.log("error", f"the recovery file is damaged: {exc}")
            self.autosave.discard()
            return False
        path = Path(record["path"]) if record.get("path") else None
        self.document.replace(graph, path, dirty=True)
        self.autosave.save_now()  # replace() cleared the stack; keep the recovery file until a save
        self.message("Restored the unsaved workflow")
        return True

    def open_dropped(self, paths: list[str], scene_pos: tuple[float, float] | None = None) -> None:
        """Workflow files and PNGs that carry a workflow are opened; other images get a Load Image node."""
        x, y = scene_pos if scene_pos is not None else self._scene_center()
        for text in paths:
            path = Path(text)
            suffix = path.suffix.lower()
            if suffix == ".json" or (suffix == ".png" and png_has_workflow(path)):
                self.open_path(path)
                return
            if suffix in IMAGE_SUFFIXES:
                loader = image_loader_type(self.registry)
                if loader is None:
                    self.message("No installed node type loads image files", error=True)
                    continue
                node_type, param = loader
                node_id = self.document.add_node(node_type, (x, y), {param: str(path)})
                self.canvas.select([node_id])
                x, y = x + 40, y + 40
            else:
                self.message(f"Cannot open {path.name}: not a workflow or an image", error=True)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_dropped(paths)
            event.acceptProposedAction()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.runner.running:
            self.runner.stop()
            self.runner.wait(5)
        if self.maybe_save():
            self.autosave.discard()
            if self.remember_layout:
                self.recent.store.setValue("window/geometry", self.saveGeometry())
                self.recent.store.setValue("window/state", self.saveState())
            event.accept()
        else:
            event.ignore()

    # -- editing ---------------------------------------------------------------------------------

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
        from nodegraph.graph import Graph

        scratch = Graph(self.document.graph.copy().nodes.values())
        auto_layout(scratch, self.registry, only_missing=False)
        positions = {n.id: (n.layout["x"], n.layout["y"]) for n in scratch.nodes.values()}
        self.document.move_nodes(positions)
        self.fit_all()

    def fit_all(self) -> None:
        nodes = self.canvas.all_nodes()
        if nodes:
            self.canvas.viewer().zoom_to_nodes([n.view for n in nodes])

    def _on_reset(self) -> None:
        if self.runner.running:
            self.runner.stop()  # its node ids belong to the graph that was just replaced
        self.image_panel.clear()
        self.validate_now(log=True)
        QTimer.singleShot(0, self.fit_all)

    def node_menu(self, node_id: str) -> QMenu:
        """The context menu of one node (right click)."""
        menu = QMenu(self)
        run = menu.addAction("Run This Node", lambda: self.run_node(node_id))
        run.setStatusTip("Run this node and the nodes it needs; nothing downstream")
        run.setEnabled(not self.runner.running)
        from ui.mask_editor import add_mask_action

        add_mask_action(self, menu, node_id)  # Load Image: Edit Mask…
        menu.addSeparator()
        menu.addAction("Delete", lambda: self.document.remove_nodes([node_id]))
        return menu

    def _show_node_menu(self, node_id: str, pos: QPoint) -> None:
        menu = self.node_menu(node_id)
        menu.exec(pos)
        menu.deleteLater()

    # -- validation ------------------------------------------------------------------------------

    def validate_now(self, log: bool = False) -> list[Problem]:
        """Check the whole workflow (linear in its size) and mark the nodes with problems; with ``log`` also
        list the problems in the log panel (after opening a file or reloading plugins, not after each edit)."""
        self._validation.stop()
        self.problems = validate(self.document.graph, self.registry)
        by_node: dict[str, list[str]] = {}
        for problem in self.problems:
            if problem.node:
                by_node.setdefault(problem.node, []).append(problem_text(problem))
        self.canvas.set_problems(by_node)
        self.problems_label.setVisible(bool(self.problems))
        self.problems_label.setText(f"⚠ {len(self.problems)} problem(s)")
        self.problems_label.setToolTip("\n".join(str(p) for p in self.problems[:MAX_LOGGED_PROBLEMS]))
        if log and self.problems:
            self.log("warning", f"the workflow has {len(self.problems)} problem(s); the marked nodes cannot run yet:")
            for problem in self.problems[:MAX_LOGGED_PROBLEMS]:
                self.log("warning", str(problem))
            if len(self.problems) > MAX_LOGGED_PROBLEMS:
                self.log("warning", f"... and {len(self.problems) - MAX_LOGGED_PROBLEMS} more")
        return self.problems

    # -- plugins ---------------------------------------------------------------------------------

    def reload_plugins(self) -> plugins.PluginChanges | None:
        """Re-import the plugin folders into the editor's registry; the palette, the node classes and the
        open workflow follow (placeholders whose type now exists become real nodes, and back)."""
        if self.runner.running:
            self.message("Plugins cannot be reloaded during a run", error=True)
            return None
        changes = plugins.reload_plugins(self.registry)
        if changes.changed or changes.removed:
            # Cache keys cover a node's type, version and parameters but not its code, and downstream keys only
            # cover upstream keys: stale values may sit behind any node of a changed type. Start afresh.
            self.runner.executor.cache.clear()
        rebuilt = self.canvas.update_types(changes.added, changes.changed, changes.removed)
        upgraded, failures = self.document.upgrade_nodes()
        if upgraded:
            self.log("info", f"upgraded to the reloaded node versions: {', '.join(upgraded)}")
        for line in failures:
            self.log("error", line)
        self.palette.populate()
        self.palette.filter(self.palette.search.text())
        summary = ", ".join(
            f"{len(ids)} {what} ({', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
            for what, ids in (("added", changes.added), ("changed", changes.changed), ("removed", changes.removed))
            if ids
        )
        self.log("info", f"plugins reloaded: {summary or 'no node type changed'}; {len(rebuilt)} node(s) of the workflow rebuilt")
        for info in changes.plugins:
            if info.status != plugins.LOADED and info.error is not None:
                self.log("error", f"plugin {info.name} ({info.status}): {info.error.line()}")
        self.message("Plugins reloaded" + (f": {summary}" if summary else ""))
        self.validate_now(log=True)
        return changes

    def show_plugins(self) -> PluginsDialog:
        dialog = PluginsDialog(self.registry, self.reload_plugins, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.reload_button.setEnabled(not self.runner.running)
        dialog.show()
        return dialog

    # -- running ---------------------------------------------------------------------------------

    def run(self) -> bool:
        return self._start(None)

    def run_node(self, node_id: str) -> bool:
        """Run one node and what it needs (its result is what the run is for, even if it saves nothing)."""
        return self._start([node_id])

    def run_selected(self) -> bool:
        ids = self.canvas.selected_ids()
        if not ids:
            self.message("Select the nodes to run first")
            return False
        return self._start(ids)

    def _start(self, targets: list[str] | None) -> bool:
        if self.runner.running:
            self.message("A run is already going")
            return False
        self.canvas.clear_states()
        self.progress.setValue(0)
        self.state_label.setText("Running…")
        started = self.runner.start(self.document.graph, self.output_dir(), targets)
        self.run_action.setEnabled(not started)
        self.run_selected_action.setEnabled(not started)
        self.stop_action.setEnabled(started)
        self.reload_plugins_action.setEnabled(not started)  # a run holds the node functions it started with
        return started

    def output_dir(self) -> Path:
        """Where Save Image nodes write: beside the workflow file, or in the user's data folder."""
        if self.document.path is not None:
            return self.document.path.parent / "output"
        return data_dir() / "output"

    def stop(self) -> None:
        self.runner.stop()
        self.state_label.setText("Stopping…")

    def _on_run_started(self, order: list[str]) -> None:
        self.run_nodes = order
        self.finished_nodes = set()
        self.node_fraction = {}
        for node_id in order:
            self.canvas.set_state(node_id, "waiting")
        self.log("info", f"run: {len(order)} node(s)")

    def _update_progress(self) -> None:
        if not self.run_nodes:
            return
        done = len(self.finished_nodes) + sum(f for n, f in self.node_fraction.items() if n not in self.finished_nodes)
        self.progress.setValue(round(100 * done / len(self.run_nodes)))

    def _on_node_state(self, node_id: str, state: str, message: str) -> None:
        self.canvas.set_state(node_id, state, None, message)
        if state in ("done", "cached"):
            self.finished_nodes.add(node_id)
        self._update_progress()

    def _on_node_progress(self, node_id: str, step: int, total: int) -> None:
        fraction = step / total if total else None
        self.canvas.set_state(node_id, "running", fraction, f"step {step} of {total}")
        self.node_fraction[node_id] = fraction or 0.0
        self._update_progress()

    def _on_node_images(self, node_id: str, images: list) -> None:
        if images:
            self.canvas.show_image(node_id, QPixmap.fromImage(images[0]))
            self.image_panel.set_images(node_id, images)

    def _on_run_finished(self, outcome: str, summary: str) -> None:
        self.run_action.setEnabled(True)
        self.run_selected_action.setEnabled(True)
        self.reload_plugins_action.setEnabled(True)
        self.stop_action.setEnabled(False)
        if outcome == "done":
            self.progress.setValue(100)
        self.state_label.setText(f"{outcome.capitalize()}: {summary}" if outcome != "done" else summary.capitalize())
        self.log("error" if outcome in ("failed", "invalid") else "info", f"run {outcome}: {summary}")
        if outcome != "done":
            # nodes the run never reached lose their "waiting" mark; the failed node keeps its red one
            for node_id in self.run_nodes:
                view = self.canvas.view(node_id)
                if node_id not in self.finished_nodes and view is not None and view.view.run_state != "failed":
                    self.canvas.set_state(node_id, "")
