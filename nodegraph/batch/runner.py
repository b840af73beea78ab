"""Run a sweep's combinations on warm workers and write the index (JSON lines: parameters -> output files).

Each combination is one job: the workflow with the combination's values set, exactly what ``nodegraph run
--set`` would run, so its images are the same. Jobs write into a hidden staging folder inside the output
folder and are committed when they succeed; the index gets one line per combination as it finishes
(appended, so the index of an earlier batch in the same folder is kept; ``batch`` tells batches apart).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodegraph.workers.outputs import commit_files
from nodegraph.workers.spec import LOST, SUCCESS, JobSpec, Outcome, model_files_of

STAGING = ".nodegraph-batch-staging"


@dataclass
class Item:
    index: int
    params: dict[str, Any]
    spec: JobSpec
    status: str = "pending"
    files: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    seconds: float = 0.0


def make_items(workflow: dict[str, Any], combos: list[dict[str, Any]], targets: list[str] | None,
               device: str | None, precision: str, workflow_dir: str | None = None) -> list[Item]:
    """One item per combination; ``workflow_dir`` (the workflow file's folder) is where relative input paths
    are looked up first, as ``nodegraph run`` does."""
    items = []
    batch = uuid.uuid4().hex[:8]
    for index, combo in enumerate(combos):
        doc = copy.deepcopy(workflow)
        for key, value in combo.items():
            node_id, _, name = key.rpartition(".")
            doc["nodes"][node_id].setdefault("params", {})[name] = value
        spec = JobSpec(f"{batch}-{index:05d}", doc, targets, 1, device, precision, workflow_dir=workflow_dir)
        items.append(Item(index, combo, spec))
    return items


class BatchRun:
    """The pool's job source for one batch; :meth:`wait` blocks until every item has ended."""

    def __init__(self, items: list[Item], output_dir: Path, index_path: Path,
                 on_item: Callable[[Item], None] = lambda item: None,
                 on_event: Callable[[Item, dict[str, Any]], None] = lambda item, event: None) -> None:
        self.items = {item.spec.job_id: item for item in items}
        self.order = [item.spec.job_id for item in items]
        self.output_dir = output_dir
        self.index_path = index_path
        self.batch = items[0].spec.job_id.split("-")[0] if items else ""
        self._on_item = on_item
        self._on_event = on_event
        self._models = {job_id: model_files_of(item.spec.workflow) for job_id, item in self.items.items()}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._left = len(items)
        self.stopping = False
        if not items:
            self._done.set()

    def pending(self) -> list[tuple[str, set[str]]]:
        if self.stopping:
            return []
        with self._lock:
            return [(j, self._models[j]) for j in self.order if self.items[j].status == "pending"]

    def claim(self, job_id: str, worker: Any) -> JobSpec | None:
        with self._lock:
            item = self.items[job_id]
            if item.status != "pending" or self.stopping:
                return None
            item.status = "running"
            return item.spec

    def emit(self, job_id: str, data: dict[str, Any], preview: Any) -> None:
        self._on_event(self.items[job_id], data)

    def finished(self, worker: Any, spec: JobSpec, outcome: Outcome) -> None:
        item = self.items[spec.job_id]
        if getattr(worker, "kind", "local") == "local":
            from nodegraph.workers.runner import staging_folder

            cleanup = staging_folder(Path(worker.staging_root), spec)
        else:
            cleanup = None
        try:
            if outcome.status == LOST and spec.attempt < 2 and not self.stopping:
                item.spec = JobSpec(**{**spec.__dict__, "attempt": spec.attempt + 1})
                with self._lock:
                    item.status = "pending"
                return
            item.seconds = outcome.seconds
            item.values = outcome.values
            if outcome.status == SUCCESS:
                try:
                    committed = commit_files([f for f in outcome.files if f.kind == "output"], {"output": self.output_dir})
                    item.files = [str(Path(c.path).relative_to(self.output_dir)) for c in committed]
                    item.status = "success"
                except (OSError, ValueError) as exc:
                    item.status, item.error = "failed", {"message": f"the outputs could not be saved: {exc}"}
            else:
                item.status = "cancelled" if outcome.status == "cancelled" else "failed"
                item.error = outcome.error
            self._write_index(item)
            self._on_item(item)
            with self._lock:
                self._left -= 1
                if self._left == 0:
                    self._done.set()
        finally:
            if cleanup is not None:
                shutil.rmtree(cleanup, ignore_errors=True)

    def stop(self) -> None:
        """No new items start; the pending ones are marked cancelled."""
        self.stopping = True
        with self._lock:
            pending = [i for i in self.items.values() if i.status == "pending"]
            for item in pending:
                item.status = "cancelled"
                self._left -= 1
            if self._left <= 0:
                self._done.set()
        for item in pending:
            self._write_index(item)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _write_index(self, item: Item) -> None:
        line = json.dumps({"batch": self.batch, "index": item.index, "params": item.params, "status": item.status,
                           "files": item.files, "values": item.values, "seconds": round(item.seconds, 3), "error": item.error},
                          ensure_ascii=False, default=str)
        with self._lock:
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.index_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def run_items(items: list[Item], workers: list[Any], output_dir: Path, index_path: Path,
              replace: Callable[[Any], Any] | None = None, on_item: Callable[[Item], None] = lambda item: None,
              on_event: Callable[[Item, dict[str, Any]], None] = lambda item, event: None) -> BatchRun:
    """Run every item and return the finished :class:`BatchRun`. Ctrl-C stops: running items are cancelled."""
    from nodegraph.workers.pool import WorkerPool

    run = BatchRun(items, output_dir, index_path, on_item, on_event)
    pool = WorkerPool(workers, run, replace).start()
    try:
        while not run.wait(0.2):
            pass
    except KeyboardInterrupt:
        run.stop()
        for worker in pool.workers:
            worker.cancel()
        deadline = time.monotonic() + 30
        while not run.wait(0.2) and time.monotonic() < deadline:
            pass
        raise
    finally:
        pool.close()
    return run


def staging_root(output_dir: Path) -> Path:
    return output_dir / STAGING
