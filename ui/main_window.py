"""The editor's main window: the canvas, palette, image and log panels, the status bar, validation, plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QPlainTextEdit, QProgressBar

from nodegraph import plugins
from nodegraph.errors import Problem
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.preflight import preflight
from nodegraph.registry import Registry
from nodegraph.validation import validate
from ui.canvas import Canvas
from ui.document import Document
from ui.files import Autosave, RecentFiles
from ui.image_panel import ImagePanel
from ui.mask_editor import attach_to_image_panel
from ui.palette import Palette, TabSearch
from ui.plugins_dialog import PluginsDialog
from ui.runner import RunController
from ui.widgets import ModelFileWidget
from ui.window_actions import WindowActions
from ui.window_editing import CLIPBOARD_MIME, WindowEditing
from ui.window_files import IMAGE_SUFFIXES, WORKFLOW_FILTER, WindowFiles, image_loader_type, png_has_workflow
from ui.window_running import WindowRunning

MAX_LOGGED_PROBLEMS = 50
__all__ = ["CLIPBOARD_MIME", "IMAGE_SUFFIXES", "WORKFLOW_FILTER", "MainWindow", "image_loader_type", "png_has_workflow"]


def problem_text(problem: Problem) -> str:
    """A problem as shown on its own node: without the node's id, which the node already shows."""
    detail = f" (expected {problem.expected}, found {problem.found})" if problem.expected or problem.found else ""
    return (f"{problem.field}: " if problem.field else "") + problem.message + detail


class MainWindow(WindowActions, WindowFiles, WindowEditing, WindowRunning, QMainWindow):
    """The editor's window. Its parts live beside it: actions and menus (:mod:`ui.window_actions`), the
    workflow's file (:mod:`ui.window_files`), editing commands (:mod:`ui.window_editing`) and runs
    (:mod:`ui.window_running`); this module builds the window, wires the parts and checks the workflow."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        recent: RecentFiles | None = None,
        autosave_dir: Path | None = None,
        remember_layout: bool = True,
        interactive: bool = True,
    ) -> None:
        super().__init__()
        self.remember_layout = remember_layout  # off for screenshots: they must not depend on the last session
        self.interactive = interactive  # off for screenshots: problems are printed, no dialog waits for a person
        self.registry = registry if registry is not None else default_registry()
        self.document = Document(self.registry, self)
        self.folders = ModelFolders.from_environment(lenient=True)
        self.folders.confined = False  # in the editor the person at the screen chose every path
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
        attach_to_image_panel(self)  # right click: Inpaint This Image… (and the nodes' Edit Mask…)
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
        self._install_running()  # the queue, problems and gallery panels (ui.window_running)
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

    def _wire(self) -> None:
        self.document.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.document.path_changed.connect(self._update_title)
        self.document.reset.connect(self._on_reset)
        self.canvas.edit_refused.connect(lambda text: self.message(f"Refused: {text}", error=True))
        self.canvas.files_dropped.connect(self.open_dropped)
        self.canvas.node_menu_requested.connect(self._show_node_menu)
        for signal in (self.document.node_added, self.document.node_removed, self.document.inputs_changed,
                       self.document.param_changed, self.document.node_replaced, self.document.node_changed):
            signal.connect(lambda *_: self._validation.start())  # every edit of the graph, undo and redo included
        self.canvas.viewer().tab_pressed.connect(self.show_tab_search)
        self.canvas.viewer().context_menu_on_canvas.connect(self._show_canvas_menu)
        self.canvas.link_search_requested.connect(self.show_link_search)
        self.tab_search.chosen.connect(self._add_from_search)
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
        answer = QMessageBox.question(self, title, text, buttons, default)
        self._after_dialog()
        return answer

    def changeEvent(self, event: QEvent) -> None:
        # back from any modal dialog (or another window): modifier keys released meanwhile never reached the
        # canvas, so forget them (the canvas also re-reads them from every mouse event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self._after_dialog()
        super().changeEvent(event)

    def _on_clean_changed(self, _clean: bool) -> None:
        self._update_title()

    def _update_title(self) -> None:
        name = self.document.path.name if self.document.path else "Untitled"
        self.setWindowTitle(f"{name}[*] — nodegraph")
        self.setWindowModified(self.document.dirty)

    # -- files -----------------------------------------------------------------------------------

    def _on_reset(self) -> None:
        self.clear_run_status()  # queued runs go on; their node states belong to the previous graph
        self.validate_now(log=True)
        QTimer.singleShot(0, self.fit_all)

    # -- validation ------------------------------------------------------------------------------

    def validate_now(self, log: bool = False) -> list[Problem]:
        """Check the whole workflow (linear in its size) and mark the nodes with problems; with ``log`` also
        list the problems in the log panel (after opening a file or reloading plugins, not after each edit)."""
        self._validation.stop()
        self.problems = validate(self.document.graph, self.registry)
        # what a run would refuse before loading any model: missing model files, declared checks, seed controls
        self.problems += preflight(self.document.graph, self.registry, self.folders, lister=ModelFileWidget.lister)
        self.problems_panel.set_checks(self.problems)
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
