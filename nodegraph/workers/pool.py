"""Hand queued jobs to idle workers, preferring a worker that already holds a job's models.

The pool does not own the queue: a :class:`JobSource` (the server's persistent queue, or a batch sweep)
lists what is pending, claims the job chosen for a worker, and hears how it ended. The pool replaces a
worker that died (a Ray actor that was killed); whether the job is retried is the source's call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from nodegraph.workers.spec import JobSpec, Outcome


class JobSource(Protocol):
    def pending(self) -> list[tuple[str, set[str]]]:
        """Pending job ids in queue order, each with the model files it names."""

    def claim(self, job_id: str, worker: Any) -> JobSpec | None:
        """Mark the job as running on ``worker``; None if it is no longer pending (cancelled meanwhile)."""

    def emit(self, job_id: str, data: dict[str, Any], preview: Any) -> None:
        """An engine event of a running job."""

    def finished(self, worker: Any, spec: JobSpec, outcome: Outcome) -> None:
        """The attempt ended (``outcome.status`` says how)."""


def pick(pending: Sequence[tuple[str, set[str]]], idle: Sequence[Any]) -> list[tuple[str, Any]]:
    """Pair pending jobs, in queue order, with idle workers.

    Each job, oldest first, gets the idle worker sharing the most model files with it; among equals, the
    worker holding fewest other models (so warm workers stay free for the jobs that need them), then the
    first listed. Jobs are never held back for a busy warm worker: an idle worker loads the models itself.
    """
    free = list(idle)
    chosen = []
    for job_id, models in pending:
        if not free:
            break
        best = max(free, key=lambda w: (len(models & set(w.models)), -len(set(w.models) - models), -free.index(w)))
        free.remove(best)
        chosen.append((job_id, best))
    return chosen


class WorkerPool:
    """Workers plus a dispatcher thread that feeds them from a :class:`JobSource`."""

    def __init__(self, workers: list[Any], source: JobSource, replace: Callable[[Any], Any] | None = None) -> None:
        self.workers = list(workers)
        self.source = source
        self._replace = replace
        self._wake = threading.Condition()
        self._stopping = False
        self._dispatcher = threading.Thread(target=self._dispatch, name="nodegraph-dispatcher", daemon=True)

    def start(self) -> WorkerPool:
        self._dispatcher.start()
        return self

    def poke(self) -> None:
        """Something changed (a job was queued, a worker freed): look again."""
        with self._wake:
            self._wake.notify_all()

    def running(self) -> dict[str, Any]:
        """job id -> the worker running it."""
        return {w.job.job_id: w for w in self.workers if w.job is not None}

    def cancel(self, job_id: str) -> bool:
        worker = self.running().get(job_id)
        if worker is None:
            return False
        worker.cancel(job_id)
        return True

    def info(self) -> list[dict[str, Any]]:
        return [w.info() for w in self.workers]

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        for worker in self.workers:
            worker.close()
        if self._dispatcher.is_alive():
            self._dispatcher.join(5)

    def _dispatch(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                idle = [w for w in self.workers if w.idle]
                pairs = pick(self.source.pending(), idle) if idle else []
                if not pairs:
                    self._wake.wait(1.0)
                    continue
            for job_id, worker in pairs:
                spec = self.source.claim(job_id, worker)
                if spec is not None:
                    worker.start(spec, self.source.emit, self._done)

    def _done(self, worker: Any, spec: JobSpec, outcome: Outcome) -> None:
        if not worker.alive and self._replace is not None:
            fresh = self._replace(worker)
            with self._wake:
                self.workers[self.workers.index(worker)] = fresh
        try:
            self.source.finished(worker, spec, outcome)
        finally:
            self.poke()
