"""The main window's file handling: new, open, save, recent files, drops, recovery after a crash, closing."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QMessageBox

from nodegraph.errors import WorkflowError
from nodegraph.registry import Registry
from nodegraph.workflow import parse_workflow

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
WORKFLOW_FILTER = "Workflows (*.json *.png *.webp);;All files (*)"


def image_loader_type(registry: Registry) -> tuple[str, str] | None:
    """The node type (and its parameter) that loads an image file: core.LoadImage if installed, else any
    type with an image_file parameter."""
    candidates = sorted(registry, key=lambda d: d.id != "core.LoadImage")
    for definition in candidates:
        for param in definition.params:
            if param.kind == "image_file":
                return definition.id, param.name
    return None


def png_has_workflow(path: Path) -> bool:
    from nodegraph.comfy.files import file_has_workflow  # nodegraph's own PNGs and ComfyUI's PNG/WebP

    return file_has_workflow(path)


def recovery_question(record: dict) -> str:
    """The recovery prompt: which workflow, and from when."""
    path = record.get("path")
    what = f"your unsaved changes to {Path(path).name} ({path})" if path else "an unsaved new workflow"
    saved = record.get("saved_at")
    when = ""
    if isinstance(saved, (int, float)):
        when = " from " + datetime.fromtimestamp(saved).strftime("%A %d %B %Y, %H:%M:%S")
    return f"The editor did not close normally last time. It kept {what}{when}.\n\nRestore them?"


class WindowFiles:
    """Mixed into :class:`~ui.main_window.MainWindow`: everything about the workflow's file."""

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
            if not self.interactive:
                print(f"nodegraph: {path} cannot be opened:\n{lines}", file=sys.stderr)
                return False
            QMessageBox.critical(self, "Cannot open workflow", f"{path} cannot be opened:\n{lines}")
            self.log("error", f"cannot open {path}: " + "; ".join(str(p) for p in exc.problems))
            return False
        self.recent.add(path)
        report = getattr(self.document, "import_report", None)
        for index, line in enumerate(report.lines() if report is not None else ()):
            attention = line.strip().startswith(("not mapped:", "warning:")) or (index == 0 and not report.ok)
            self.log("warning" if attention else "info", line.strip())
        self.message(f"Imported the ComfyUI workflow {path}" if report is not None else f"Opened {path}")
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
        answer = self.ask("Recover unsaved work", recovery_question(record), buttons.Yes | buttons.No, buttons.Yes)
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
            if suffix == ".json" or (suffix in (".png", ".webp") and png_has_workflow(path)):
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
        # a run is stopped only once the user has agreed to close (and to what happens to unsaved changes)
        if self.runner.running:
            buttons = QMessageBox.StandardButton
            answer = self.ask("A run is going", "A run is going. Stop it and close the editor?", buttons.Yes | buttons.Cancel, buttons.Cancel)
            if answer != buttons.Yes:
                event.ignore()
                return
        if self.maybe_save():
            if self.runner.running:
                self.runner.stop()
                self.runner.wait(5)
            self.autosave.discard()
            if self.remember_layout:
                self.recent.store.setValue("window/geometry", self.saveGeometry())
                self.recent.store.setValue("window/state", self.saveState())
            event.accept()
        else:
            event.ignore()

