"""The run queue: snapshots of workflows waiting to run, running, and the history of those that ran.

Run (Ctrl+Enter) always enqueues a snapshot of the workflow as it is at that moment; the queue starts the next
pending entry whenever the runner is idle, so pressing Run during a run lines up another one. Pending entries
can be cancelled or moved; every entry keeps its workflow snapshot, so any run can be reopened later.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from nodegraph.graph import Graph
from nodegraph.workflow import to_document
from ui.runner import RunController

PENDING, RUNNING, DONE, FAILED, CANCELLED, INVALID = "pending", "running", "done", "failed", "cancelled", "invalid"
FINISHED = {DONE, FAILED, CANCELLED, INVALID}


@dataclass
class QueueEntry:
    id: int
    title: str
    graph: Graph
    targets: list[str] | None
    output_dir: Path | None
    generation: int = 0  # which opened document it came from (node states are shown only on that one)
    workflow_path: Path | None = None  # its file: relative input paths are looked up beside it
    status: str = PENDING
    summary: str = ""
    queued: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    images: int = 0

    @property
    def seconds(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def document(self) -> dict[str, Any]:
        return to_document(self.graph)


class RunQueue(QObject):
    """Feeds a :class:`RunController` one entry at a time, in queue order."""

    changed = Signal()  # entries added, moved, started, finished or removed
    entry_started = Signal(int)
    entry_finished = Signal(int, str, str)  # id, outcome, summary

    def __init__(self, runner: RunController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.entries: list[QueueEntry] = []
        self._ids = itertools.count(1)
        self.current: QueueEntry | None = None
        runner.run_finished.connect(self._on_finished)
        runner.images_ready.connect(self._on_images)

    # -- queries -----------------------------------------------------------------------------------

    def entry(self, entry_id: int) -> QueueEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def pending(self) -> list[QueueEntry]:
        return [e for e in self.entries if e.status == PENDING]

    @property
    def busy(self) -> bool:
        return self.current is not None or self.runner.running

    # -- changes -----------------------------------------------------------------------------------

    def enqueue(self, graph: Graph, targets: list[str] | None, output_dir: Path | None, title: str,
                generation: int = 0, workflow_path: Path | None = None) -> QueueEntry:
        """Add a snapshot of ``graph``; it starts at once if nothing runs."""
        entry = QueueEntry(next(self._ids), title, graph.copy(), list(targets) if targets else None, output_dir, generation,
                           workflow_path)
        self.entries.append(entry)
        self.changed.emit()
        self._pump()
        return entry

    def cancel(self, entry_id: int) -> bool:
        """Cancel a pending entry (it stays listed as cancelled) or stop the running one."""
        entry = self.entry(entry_id)
        if entry is None:
            return False
        if entry.status == PENDING:
            entry.status, entry.summary, entry.finished = CANCELLED, "cancelled before it ran", time.time()
            self.changed.emit()
            return True
        if entry.status == RUNNING:
            self.runner.stop()
            return True
        return False

    def move(self, entry_id: int, delta: int) -> bool:
        """Move a pending entry ``delta`` places among the pending ones (negative: sooner)."""
        pending = self.pending()
        entry = self.entry(entry_id)
        if entry is None or entry not in pending:
            return False
        position = pending.index(entry)
        target = max(0, min(len(pending) - 1, position + delta))
        if target == position:
            return False
        other = pending[target]
        i, j = self.entries.index(entry), self.entries.index(other)
        self.entries.pop(i)
        self.entries.insert(j, entry)
        self.changed.emit()
        return True

    def clear_finished(self) -> None:
        self.entries = [e for e in self.entries if e.status not in FINISHED]
        self.changed.emit()

    def cancel_all(self) -> None:
        for entry in self.pending():
            entry.status, entry.summary, entry.finished = CANCELLED, "cancelled before it ran", time.time()
        if self.current is not None:
            self.runner.stop()
        self.changed.emit()

    # -- running -----------------------------------------------------------------------------------

    def _pump(self) -> None:
        if self.current is not None:
            return
        if self.runner.running:  # the last run's thread is still ending (or someone else's run goes on)
            if self.pending():
                QTimer.singleShot(20, self._pump)
            return
        pending = self.pending()
        if not pending:
            return
        entry = pending[0]
        self.current = entry
        entry.status, entry.started = RUNNING, time.time()
        if not self.runner.start(entry.graph, entry.output_dir, entry.targets, entry.workflow_path, run_id=entry.id):
            entry.status, self.current = PENDING, None  # someone else's run: try again when it ends
            return
        self.entry_started.emit(entry.id)
        self.changed.emit()

    def _on_images(self, entries: list) -> None:
        if self.current is not None:
            self.current.images += len(entries)

    def _on_finished(self, outcome: str, summary: str) -> None:
        entry, self.current = self.current, None
        if entry is not None:
            entry.status = outcome if outcome in FINISHED else FAILED
            entry.summary, entry.finished = summary, time.time()
            self.entry_finished.emit(entry.id, outcome, summary)
            self.changed.emit()
        self._pump()  # the runner took the end of its run before this slot (its slot was connected first)
