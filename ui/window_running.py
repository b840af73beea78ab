"""The main window's runs: every Run goes through the queue; progress, live previews, images, problems.

- Run (Ctrl+Enter) enqueues a snapshot of the workflow; during a run it lines up another one. Run N Times
  enqueues N, applying each seed's control after each (:mod:`ui.seed_controls`).
- The status bar shows one line: the run, what it does now, and a bar weighted by each node's work with an
  ETA (:class:`~nodegraph.progress.RunProgress`); after a failure or a stop the bar goes back to 0.
- A sampler's live preview appears inside the sampler node and in the image panel; the run's images go to
  the image panel and the gallery once each, with the workflow that made them.
- Problems found before a run and failures during one are listed in the problems panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QInputDialog

from nodegraph.errors import Problem, WorkflowError
from nodegraph.executor import default_targets
from nodegraph.modes import resolve_modes
from nodegraph.progress import format_eta
from nodegraph.workflow import parse_workflow
from ui import seed_controls
from ui.files import data_dir
from ui.gallery import Gallery
from ui.problems_panel import ProblemsPanel
from ui.queue_panel import QueuePanel
from ui.run_images import ImageEntry
from ui.run_queue import RunQueue

STATUS_CHARS = 140  # the status bar's line is cut here; the whole text is its tooltip
MAX_RUNS = 100

seed_controls.install()  # seed fields get the control menu before any node class is made


def one_line(text: str, limit: int = STATUS_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class WindowRunning:
    """Mixed into :class:`~ui.main_window.MainWindow`: runs, the queue, progress and results."""

    def _install_running(self) -> None:
        """Build the queue, problems and gallery panels and their actions (called once, after the menus)."""
        self.generation = 0  # bumped by New/Open: node states of runs of another document are not shown
        self.shown_run: int | None = None  # the queue entry whose node states the canvas shows
        self.queue = RunQueue(self.runner, self)
        self.queue_panel = QueuePanel(self.queue)
        self.problems_panel = ProblemsPanel()
        self.gallery = Gallery()
        self.queue_dock = self._dock("Queue", self.queue_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.gallery_dock = self._dock("Gallery", self.gallery, Qt.DockWidgetArea.RightDockWidgetArea)
        self.problems_dock = self._dock("Problems", self.problems_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self._docks_arranged = False
        self.image_panel.registry = self.registry
        self.progress.setFormat("%p%")
        self.state_label.setMaximumWidth(560)

        self.run_times_action = self._action("Run N &Times…", self.run_times_dialog, "Ctrl+Alt+Return",
                                             "Queue the workflow N times; each seed follows its control after each run")
        self.cancel_all_action = self._action("&Cancel All", self.cancel_all, None, "Stop the run and cancel every queued one")
        menus = {a.text(): a.menu() for a in self.menuBar().actions() if a.menu() is not None}
        run_menu, view_menu = menus.get("&Run"), menus.get("&View")
        if run_menu is not None:
            run_menu.insertAction(run_menu.actions()[1] if len(run_menu.actions()) > 1 else None, self.run_times_action)
            run_menu.addAction(self.cancel_all_action)
        if view_menu is not None:
            for dock in (self.queue_dock, self.gallery_dock, self.problems_dock):
                view_menu.addAction(dock.toggleViewAction())

        runner = self.runner
        runner.node_preview.connect(self._on_node_preview)
        runner.images_ready.connect(self._on_images_ready)
        runner.progress.connect(self._on_progress)
        runner.problems.connect(self._on_run_problems)
        self.queue.entry_started.connect(self._on_entry_started)
        self.queue.changed.connect(self._update_run_actions)
        self.queue_panel.reopen_requested.connect(lambda entry_id: self.reopen_run(entry_id))
        self.gallery.image_chosen.connect(self._show_gallery_image)
        self.gallery.reopen_requested.connect(self.reopen_image)
        self.problems_panel.node_chosen.connect(self.show_node)
        self.problems_panel.count_changed.connect(self._on_problem_count)
        for signal in (self.document.node_changed, self.document.node_added):
            signal.connect(lambda node_id: seed_controls.refresh(self.canvas, self.document, node_id))
        self.document.reset.connect(lambda: seed_controls.refresh(self.canvas, self.document))

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)  # type: ignore[misc]
        if not self._docks_arranged:
            self._docks_arranged = True
            # Tabbing docks before the window has its size leaves a stray copy of the tab bar behind (Qt 6.11)
            QTimer.singleShot(0, self._arrange_run_docks)

    def _arrange_run_docks(self) -> None:
        """Right: the image on top, the gallery and the queue tabbed below it; bottom: the log and the problems.
        A window that restored a saved arrangement keeps it."""
        if self.remember_layout and self.recent.store.value("window/state") is not None:
            return
        self.splitDockWidget(self.image_dock, self.gallery_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.gallery_dock, self.queue_dock)
        self.tabifyDockWidget(self.log_dock, self.problems_dock)
        self.gallery_dock.raise_()
        self.log_dock.raise_()
        self.resizeDocks([self.image_dock, self.gallery_dock], [self.height() // 2, self.height() // 3], Qt.Orientation.Vertical)

    # -- starting ----------------------------------------------------------------------------------

    def run(self) -> bool:
        return self._start(self._output_targets(), named=False)

    def _output_targets(self) -> list[str] | None:
        """The output nodes (None). With muted nodes in the workflow, the ones that would still run are named, so
        that nothing is run only to show an image in a node that does not run."""
        graph = self.document.graph
        if any(n.mode is not None for n in graph.nodes.values()):
            skipped = resolve_modes(graph, self.registry).skipped
            return [t for t in default_targets(graph, self.registry) if t not in skipped]
        return None

    def run_node(self, node_id: str) -> bool:
        """Run one node and what it needs (its result is what the run is for, even if it saves nothing)."""
        return self._start([node_id])

    def run_selected(self) -> bool:
        ids = self.canvas.selected_ids()
        if not ids:
            self.message("Select the nodes to run first")
            return False
        return self._start(ids)

    def run_times(self, count: int) -> bool:
        """Queue the workflow ``count`` times, applying the seed controls after each."""
        return self._start(self._output_targets(), count, named=False)

    def run_times_dialog(self) -> None:
        count, ok = QInputDialog.getInt(self, "Run N times", "Runs to queue (each seed follows its control after each):",
                                        4, 1, MAX_RUNS)
        self._after_dialog()
        if ok:
            self.run_times(count)

    def _start(self, targets: list[str] | None, times: int = 1, named: bool = True) -> bool:
        """Queue ``times`` snapshots of the workflow; seeds advance by their controls after each. ``named``:
        the targets were chosen by the user (the queue's title says which)."""
        busy = self.queue.busy
        title = self.document.path.name if self.document.path else "Untitled"
        if targets and named:
            title += " · " + ", ".join(targets[:3]) + ("…" if len(targets) > 3 else "")
        entries = []
        for _ in range(times):
            entries.append(self.queue.enqueue(self.document.graph, targets, self.output_dir(), title, self.generation,
                                              workflow_path=self.document.path))
            changes = seed_controls.advance_seeds(self.document)
            if changes:
                self.log("info", "seeds for the next run: " + ", ".join(f"{n}.{p} {new}" for (n, p), (_, new) in changes.items()))
        if busy or times > 1:
            numbers = ", ".join(f"#{e.id}" for e in entries)
            self.message(f"Queued run {numbers}" + (f" ({len(self.queue.pending())} waiting)" if self.queue.pending() else ""))
        return bool(entries)

    def output_dir(self) -> Path:
        """Where Save Image nodes write: beside the workflow file, or in the user's data folder."""
        if self.document.path is not None:
            return self.document.path.parent / "output"
        return data_dir() / "output"

    def stop(self) -> None:
        """Stop the running run (queued ones go on)."""
        if self.queue.current is not None or self.runner.running:
            self.runner.stop()
            self.set_status("Stopping…")

    def cancel_all(self) -> None:
        self.queue.cancel_all()
        self.set_status("Stopping; the queue is empty")

    def _update_run_actions(self) -> None:
        running = self.queue.busy
        self.stop_action.setEnabled(running)
        self.cancel_all_action.setEnabled(running or bool(self.queue.pending()))
        self.reload_plugins_action.setEnabled(not running)  # a run holds the node functions it started with
        pending = len(self.queue.pending())
        self.queue_dock.setWindowTitle(f"Queue ({pending} waiting)" if pending else "Queue")

    # -- status ------------------------------------------------------------------------------------

    def set_status(self, text: str) -> None:
        """One line in the status bar, however long the text (all of it in the tooltip)."""
        self.state_label.setText(one_line(text))
        self.state_label.setToolTip(text)

    def clear_run_status(self) -> None:
        """New or Open: the last run's status, bar and failures belong to the previous workflow."""
        self.generation += 1
        self.shown_run = None
        self.set_status("Ready")
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.statusBar().clearMessage()
        self.problems_panel.set_failures([])
        self.image_panel.clear()

    def _showing(self) -> bool:
        """Whether the running entry belongs to the document on screen (so its node states are shown)."""
        entry = self.queue.current
        return entry is not None and entry.generation == self.generation

    def _on_entry_started(self, entry_id: int) -> None:
        entry = self.queue.entry(entry_id)
        self.shown_run = entry_id if self._showing() else None
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.problems_panel.set_failures([])
        self.image_panel.live_workflow = entry.document() if entry is not None else None
        if self.shown_run is not None:
            self.canvas.clear_states()
        self.set_status(f"Running #{entry_id}…")

    def _on_progress(self, fraction: float, eta: Any, text: str) -> None:
        self.progress.setValue(round(fraction * 100))
        eta_text = format_eta(eta)
        self.progress.setFormat("%p%" + (f" · {eta_text}" if eta_text else ""))
        run = self.queue.current
        if run is not None:
            self.set_status(f"Running #{run.id}" + (f": {text}" if text else "…"))

    # -- node states -------------------------------------------------------------------------------

    def _on_run_started(self, order: list[str]) -> None:
        self.run_nodes = order
        self.finished_nodes = set()
        if self._showing():
            for node_id in order:
                self.canvas.set_state(node_id, "waiting")
        self.log("info", f"run #{self.runner.run_id}: {len(order)} node(s)")

    def _update_progress(self) -> None:
        """Kept for callers of the old node-count bar: the runner now sends the weighted fraction itself."""

    def _on_node_state(self, node_id: str, state: str, message: str) -> None:
        if state in ("done", "cached"):
            self.finished_nodes.add(node_id)
        if self._showing():
            self.canvas.set_state(node_id, state, None, message)

    def _on_node_progress(self, node_id: str, step: int, total: int, message: str = "") -> None:
        if self._showing():
            fraction = step / total if total else None
            self.canvas.set_state(node_id, "running", fraction, message or f"step {step} of {total}")

    def _on_node_preview(self, node_id: str, image: QImage) -> None:
        if self._showing():
            self.canvas.show_image(node_id, QPixmap.fromImage(image))
        self.image_panel.show_preview(node_id, image)

    def _on_node_images(self, node_id: str, images: list) -> None:
        if images and self._showing():
            self.canvas.show_image(node_id, QPixmap.fromImage(images[0]))

    def _on_images_ready(self, entries: list[ImageEntry]) -> None:
        self.image_panel.add_entries(entries)
        self.gallery.add(entries)

    def _on_run_problems(self, problems: list[Problem]) -> None:
        self.problems_panel.add_failures(problems)

    def _on_run_finished(self, outcome: str, summary: str) -> None:
        run_id = self.runner.run_id
        self._update_run_actions()
        self.image_panel.clear_live()
        if outcome == "done":
            self.progress.setValue(100)
            self.progress.setFormat("%p%")
            self.set_status(f"Run #{run_id} {summary}")
        else:
            self.progress.setValue(0)  # a failed or stopped run leaves no half-full bar behind
            self.progress.setFormat("%p%")
            self.set_status(f"Run #{run_id} {outcome}: {summary}")
            if outcome in ("failed", "invalid"):
                self.problems_dock.raise_()
        self.log("error" if outcome in ("failed", "invalid") else "info", f"run {outcome} (#{run_id}): {summary}")
        if outcome != "done" and self.shown_run == run_id:
            # nodes the run never reached lose their "waiting" mark; the failed node keeps its red one
            for node_id in self.run_nodes:
                view = self.canvas.view(node_id)
                if node_id not in self.finished_nodes and view is not None and view.view.run_state != "failed":
                    self.canvas.set_state(node_id, "")

    # -- problems, reopening -----------------------------------------------------------------------

    def _on_problem_count(self, count: int) -> None:
        self.problems_dock.setWindowTitle(f"Problems ({count})" if count else "Problems")

    def show_node(self, node_id: str) -> None:
        """Select a node and bring it into view (a click in the problems panel)."""
        view = self.canvas.view(node_id)
        if view is None:
            self.message(f"Node {node_id!r} is not in the open workflow")
            return
        self.canvas.select([node_id])
        self.canvas.viewer().centerOn(view.view)

    def reopen_run(self, entry_id: int) -> bool:
        entry = self.queue.entry(entry_id)
        return entry is not None and self.reopen_workflow(entry.document(), f"run #{entry_id}")

    def reopen_image(self, entry: ImageEntry | None) -> bool:
        return entry is not None and self.reopen_workflow(entry.workflow, f"the workflow of {entry.label} (run #{entry.run_id})")

    def reopen_workflow(self, doc: dict[str, Any], what: str) -> bool:
        """Open a workflow snapshot as a new, unsaved document (asks to save the open one first)."""
        if not self.maybe_save():
            return False
        try:
            graph = parse_workflow(doc, self.registry)
        except WorkflowError as exc:
            self.message(f"Cannot reopen {what}: " + "; ".join(str(p) for p in exc.problems), error=True)
            return False
        self.document.replace(graph, None, dirty=True)
        self.message(f"Reopened {what}")
        return True

    def _show_gallery_image(self, entry: ImageEntry) -> None:
        self.image_panel.select_entry(entry)
