"""A worker in this process: one Executor, fed by its own thread, kept between jobs.

Its output cache and the models it loaded (their cache entries and residency) stay from one job to the
next, so a second job on the same checkpoint goes straight to sampling.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodegraph.context import CancelToken
from nodegraph.workers.runner import run_spec
from nodegraph.workers.spec import FAILED, SUCCESS, JobSpec, Outcome

Emit = Callable[[str, dict[str, Any], Any], None]
Done = Callable[[Any, JobSpec, Outcome], None]
MODELS_REMEMBERED = 8  # the model files a worker reports as warm (most recent last)


class LocalWorker:
    kind = "local"

    def __init__(self, name: str, make_executor: Callable[[], Any], staging_root: Path) -> None:
        self.name = name
        self.staging_root = staging_root
        self._make_executor = make_executor
        self._executor: Any = None
        self.models: list[str] = []
        self.job: JobSpec | None = None
        self.jobs_done = 0
        self.alive = True
        self._token = CancelToken()
        self._inbox: queue.Queue[tuple[JobSpec, Emit, Done] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"nodegraph-worker-{name}", daemon=True)
        self._thread.start()

    @property
    def executor(self) -> Any:
        if self._executor is None:
            self._executor = self._make_executor()
        return self._executor

    @property
    def idle(self) -> bool:
        return self.alive and self.job is None

    def start(self, spec: JobSpec, emit: Emit, done: Done) -> None:
        """Begin ``spec`` on the worker's thread; ``done(worker, spec, outcome)`` is called when it ends."""
        if self.job is not None:
            raise RuntimeError(f"worker {self.name} is busy with job {self.job.job_id}")
        self.job = spec
        self._token = CancelToken()
        self._inbox.put((spec, emit, done))

    def cancel(self, job_id: str | None = None) -> None:
        if self.job is not None and (job_id is None or self.job.job_id == job_id):
            self._token.cancel()

    def remember(self, models: set[str]) -> None:
        for model in sorted(models):
            if model in self.models:
                self.models.remove(model)
            self.models.append(model)
        del self.models[:-MODELS_REMEMBERED]

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "alive": self.alive, "busy": self.job is not None,
                "job": self.job.job_id if self.job else None, "models": list(self.models), "jobs_done": self.jobs_done}

    def close(self, timeout: float = 10.0) -> None:
        self.cancel()
        self._inbox.put(None)
        self._thread.join(timeout)
        self.alive = False

    def _loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            spec, emit, done = item
            try:
                outcome = run_spec(self.executor, spec, self.staging_root,
                                   lambda data, preview, _id=spec.job_id, _emit=emit: _emit(_id, data, preview),
                                   self._token, worker=self.name)
            except BaseException as exc:  # the runner reports workflow failures itself; this is a bug
                outcome = Outcome(FAILED, error={"message": f"{type(exc).__name__}: {exc}"}, worker=self.name)
            if outcome.status == SUCCESS:
                self.remember(spec.model_files())
            self.jobs_done += 1
            self.job = None
            done(self, spec, outcome)
