"""The main window's run controls: start and stop runs, and show their progress on the nodes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QPixmap

from nodegraph.executor import default_targets
from nodegraph.modes import resolve_modes
from ui.files import data_dir


class WindowRunning:
    """Mixed into :class:`~ui.main_window.MainWindow`: runs, progress and results."""

    def run(self) -> bool:
        """Run the output nodes. With muted nodes in the workflow, the ones that would still run are named, so
        that nothing is run only to show an image in a node that does not run."""
        graph = self.document.graph
        if any(n.mode is not None for n in graph.nodes.values()):
            skipped = resolve_modes(graph, self.registry).skipped
            return self._start([t for t in default_targets(graph, self.registry) if t not in skipped])
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
        started = self.runner.start(self.document.graph, self.output_dir(), targets, workflow_path=self.document.path)
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
