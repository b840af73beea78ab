"""The server without HTTP: the persistent queue, the workers, and the events they report.

:class:`Service` is the :class:`~nodegraph.workers.pool.JobSource` of its worker pool. The HTTP routes call
its methods; the websocket routes subscribe to its :class:`~nodegraph.server.hub.Hub`. Every message it
publishes is a native event (``{"event": ..., "job": ..., "seq": ...}``); job events are also kept in the
store, so a client that connects late can read what it missed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from nodegraph.installed import default_registry
from nodegraph.registry import Registry
from nodegraph.server.hub import DROPPABLE, Hub, Message
from nodegraph.server.settings import ServerSettings
from nodegraph.server.store import (
    CANCELLED,
    FAILED,
    MAX_ATTEMPTS,
    PENDING,
    RUNNING,
    SUCCESS,
    Job,
    JobStore,
)
from nodegraph.server.submit import Submission, prepare
from nodegraph.workers.outputs import commit_files
from nodegraph.workers.pool import WorkerPool
from nodegraph.workers.runner import staging_folder
from nodegraph.workers.spec import CANCELLED as OUT_CANCELLED
from nodegraph.workers.spec import LOST, JobSpec, Outcome, model_files_of
from nodegraph.workers.spec import SUCCESS as OUT_SUCCESS

PRUNE_EVERY = 50  # finished jobs between two retention passes
log = logging.getLogger("nodegraph.server")


class QueueFull(Exception):
    pass


class StateInUse(RuntimeError):
    """Another server holds the state folder: two servers on one queue would run its jobs twice."""


class Service:
    def __init__(self, settings: ServerSettings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or default_registry()
        for folder in (settings.state_dir, settings.output_dir, settings.input_dir, settings.temp_dir):
            Path(folder).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        self._lockfile = _lock_state(Path(settings.state_dir))
        # What a crashed run left in staging was never committed: it must not surface later.
        shutil.rmtree(settings.staging_dir, ignore_errors=True)
        self.store = JobStore(settings.database)
        self.recovered, self.failed_on_recovery = self.store.recover()
        self.hub = Hub()
        self.pool: WorkerPool | None = None
        self._lock = threading.RLock()
        self._models: dict[str, set[str]] = {}
        self._seq: dict[str, int] = {}
        self._previews: dict[str, tuple[str, bytes]] = {}
        self._clients: dict[str, str | None] = {}
        # Paths inside a worker's staging folder mean nothing to a client (and name the server's disk).
        self._staging_prefixes = (str(settings.staging_dir) + os.sep, str(Path(tempfile.gettempdir()) / "nodegraph-ray-staging") + os.sep)
        self._finished_since_prune = 0
        self._closing = False
        self._cancelled_by_user: set[str] = set()
        self.started_at = time.time()
        for job_id in self.recovered:
            self._publish_id(job_id, {"event": "job_retried", "reason": "the server stopped while this job was running"}, None)
        self.store.prune(settings.retention_days, settings.retention_jobs)

    # -- life cycle ---------------------------------------------------------------------------------

    def start(self, workers: list[Any] | None = None) -> Service:
        made, replace = (workers, None) if workers is not None else self._make_workers()
        self.pool = WorkerPool(made, self, replace).start()
        return self

    def _make_workers(self) -> tuple[list[Any], Any]:
        from nodegraph.workers.make import make_local_workers, make_ray_workers

        s = self.settings
        if s.ray:
            return make_ray_workers(s.ray, s.workers, s.ray_cpus, s.ray_gpus, s.models, s.device, s.precision)
        return make_local_workers(s.workers or 1, self.registry, s.staging_dir, s.models, s.device, s.precision), None

    def close(self) -> None:
        """Stop: jobs still running are stopped at their next check and go back to the front of the queue
        (the next start runs them; a stop is not a failure, so it does not use up their retry)."""
        self._closing = True
        if self.pool is not None:
            self.pool.close()
        self.store.close()
        self._lockfile.close()  # releases the lock

    # -- submitting and controlling jobs ------------------------------------------------------------

    def prepare(self, doc: Any, *, comfy: bool = False, targets: Any = None, overrides: Any = None) -> Submission:
        return prepare(doc, self.registry, self.settings.input_dir, targets=targets, overrides=overrides,  # type: ignore[arg-type]
                       allowed=set(self.settings.allow_nodes), comfy=comfy)

    def submit(self, submission: Submission, *, client_id: str | None = None, front: bool = False,
               extra: dict[str, Any] | None = None, job_id: str | None = None) -> Job:
        if self.store.count(PENDING) >= self.settings.limits.pending_jobs:
            raise QueueFull(f"the queue already holds {self.settings.limits.pending_jobs} pending jobs; try again later")
        request: dict[str, Any] = {"targets": submission.targets, "client_id": client_id, "notes": submission.notes}
        request.update(extra or {})
        job = Job(id=job_id or str(uuid.uuid4()), number=0, status=PENDING, source=submission.source,
                  workflow=submission.workflow, request=request, priority=-1 if front else 0)
        with self._lock:
            self.store.add(job)
            self._models[job.id] = model_files_of(job.workflow)
        self._publish(job, {"event": "job_queued", "number": job.number})
        self._publish_status()
        if self.pool is not None:
            self.pool.poke()
        return job

    def cancel(self, job_id: str) -> bool:
        """Cancel a pending job at once, a running one at its next check. False if it is not active."""
        job = self.store.get(job_id)
        if job is None:
            return False
        if job.status == PENDING:
            with self._lock:
                self.store.update(job_id, status=CANCELLED, finished=time.time())
                self._models.pop(job_id, None)
            self._publish(job, {"event": "job_finished", "status": CANCELLED, "outputs": [], "error": None})
            self._publish_status()
            return True
        if job.status == RUNNING and self.pool is not None:
            self._cancelled_by_user.add(job_id)
            return self.pool.cancel(job_id)
        return False

    def interrupt(self, job_id: str | None = None) -> list[str]:
        """Cancel the running job(s) (ComfyUI's /interrupt); returns their ids."""
        running = list(self.pool.running()) if self.pool else []
        chosen = [j for j in running if job_id is None or j == job_id]
        for job in chosen:
            self._cancelled_by_user.add(job)
            self.pool.cancel(job)  # type: ignore[union-attr]
        return chosen

    def clear_pending(self) -> list[str]:
        ids = [j.id for j in self.store.list((PENDING,))]
        for job_id in ids:
            self.cancel(job_id)
        return ids

    def delete(self, job_ids: list[str]) -> int:
        """Forget jobs: pending ones are cancelled first; running ones are left alone (interrupt them)."""
        for job_id in job_ids:
            job = self.store.get(job_id)
            if job is not None and job.status == PENDING:
                self.cancel(job_id)
        return self.store.delete(job_ids)

    def queue_remaining(self) -> int:
        return self.store.count(PENDING) + self.store.count(RUNNING)

    def preview(self, job_id: str) -> tuple[str, bytes] | None:
        return self._previews.get(job_id)

    # -- the pool's side (JobSource) ----------------------------------------------------------------

    def pending(self) -> list[tuple[str, set[str]]]:
        with self._lock:
            return [(j.id, self._models.setdefault(j.id, model_files_of(j.workflow)))
                    for j in self.store.queue() if j.status == PENDING]

    def claim(self, job_id: str, worker: Any) -> JobSpec | None:
        job = self.store.claim(job_id, worker.name)
        if job is None:
            return None
        spec = JobSpec(job.id, job.workflow, job.request.get("targets"), job.attempts,
                       self.settings.device, self.settings.precision, read_dirs=[str(self.settings.input_dir)])
        if getattr(worker, "kind", "local") != "local":
            _ship_inputs(spec, self.registry)
        self._publish(job, {"event": "job_started", "worker": worker.name, "attempt": job.attempts,
                            "retried": job.retried})
        self._publish_status()
        return spec

    def emit(self, job_id: str, data: dict[str, Any], preview: Any) -> None:
        data = _scrub(data, self._staging_prefixes)
        if preview is not None:
            self._previews[job_id] = preview
            data = {**data, "preview": f"/v1/jobs/{job_id}/preview?seq={self._seq.get(job_id, 0) + 1}"}
        self._publish_id(job_id, data, preview)

    def finished(self, worker: Any, spec: JobSpec, outcome: Outcome) -> None:
        try:
            self._finish(worker, spec, outcome)
        finally:
            if getattr(worker, "kind", "local") == "local":  # whatever was not committed goes
                shutil.rmtree(staging_folder(Path(worker.staging_root), spec), ignore_errors=True)

    def _finish(self, worker: Any, spec: JobSpec, outcome: Outcome) -> None:
        job = self.store.get(spec.job_id)
        self._previews.pop(spec.job_id, None)
        by_user = spec.job_id in self._cancelled_by_user
        self._cancelled_by_user.discard(spec.job_id)
        if job is None:  # deleted while running
            return
        if self._closing and outcome.status == OUT_CANCELLED and not by_user:
            log.warning("job %s (%s) stopped with the server; it runs again at the next start", job.number, job.id)
            self.store.update(job.id, status=PENDING, attempts=max(job.attempts - 1, 0), worker=None,
                              priority=-job.number - 1_000_000_000)
            return
        if outcome.status == LOST and job.attempts < MAX_ATTEMPTS:
            log.warning("job %s (%s): %s; queued again", job.number, job.id, (outcome.error or {}).get("message", "worker lost"))
            self.store.update(job.id, status=PENDING, retried=True, priority=-job.number - 1_000_000_000, worker=None)
            self._publish(job, {"event": "job_retried", "reason": (outcome.error or {}).get("message", "worker lost")})
            self._publish_status()
            return
        outputs: list[dict[str, Any]] = []
        status, error = FAILED, outcome.error
        if outcome.status == OUT_SUCCESS:
            try:
                committed = commit_files(outcome.files, {"output": self.settings.output_dir, "temp": self.settings.temp_dir})  # type: ignore[dict-item]
                outputs = [{**c.to_json(), "url": "/view?" + urlencode({"filename": c.filename, "subfolder": c.subfolder, "type": c.kind})}
                           for c in committed]
                status = SUCCESS
            except (OSError, ValueError) as exc:
                error = {"message": f"the outputs could not be saved: {exc}"}
        elif outcome.status == OUT_CANCELLED:
            status, error = CANCELLED, None
        elif outcome.status == LOST:
            error = {**(outcome.error or {}), "message": (outcome.error or {}).get("message", "worker lost") + "; already retried once"}
        with self._lock:
            self.store.update(job.id, status=status, finished=time.time(), outputs=outputs, values=outcome.values,
                              error=error, worker=outcome.worker or worker.name)
            self._models.pop(job.id, None)
        log.info("job %s (%s) %s in %.2f s on %s%s", job.number, job.id, status, outcome.seconds, outcome.worker or worker.name,
                 f": {error.get('message', '')}" if error else "")
        self._publish(job, {"event": "job_finished", "status": status, "outputs": outputs, "values": outcome.values,
                            "error": error, "executed": outcome.executed, "cached": outcome.cached,
                            "seconds": round(outcome.seconds, 4)})
        self._publish_status()
        self._finished_since_prune += 1
        if self._finished_since_prune >= PRUNE_EVERY:
            self._finished_since_prune = 0
            self.store.prune(self.settings.retention_days, self.settings.retention_jobs)

    # -- publishing ---------------------------------------------------------------------------------

    def _publish(self, job: Job, data: dict[str, Any]) -> None:
        self._publish_id(job.id, data, None, job.request.get("client_id"))

    def _publish_id(self, job_id: str, data: dict[str, Any], preview: Any, client_id: Any = ...) -> None:
        with self._lock:
            seq = self._seq.get(job_id)
            if seq is None:
                seq = self.store.last_seq(job_id)
            seq += 1
            self._seq[job_id] = seq
        data = {**data, "job": job_id, "seq": seq, "time": round(time.time(), 3)}
        if seq < self.settings.limits.events_per_job or data.get("event") not in DROPPABLE:
            self.store.add_event(job_id, seq, data)
        if client_id is ...:
            client_id = self._client_of(job_id)
        if data.get("event") == "job_finished":
            self._seq.pop(job_id, None)
            self._clients.pop(job_id, None)
        self.hub.publish(Message(data, job_id, client_id, preview))

    def _client_of(self, job_id: str) -> str | None:
        if job_id not in self._clients:
            job = self.store.get(job_id)
            self._clients[job_id] = job.request.get("client_id") if job else None
        return self._clients[job_id]

    def _publish_status(self) -> None:
        self.hub.publish(Message({"event": "queue", "queue_remaining": self.queue_remaining(),
                                  "pending": self.store.count(PENDING), "running": self.store.count(RUNNING)}))


def _ship_inputs(spec: JobSpec, registry: Registry) -> None:
    """Attach the bytes of the input images the workflow reads, for a worker on another machine."""
    from nodegraph.params import ImageFile

    for node_id, entry in spec.workflow.get("nodes", {}).items():
        definition = registry.get(entry.get("type", ""))
        for param in definition.params if definition else ():
            value = entry.get("params", {}).get(param.name)
            if isinstance(param, ImageFile) and isinstance(value, str) and value:
                name = f"{node_id}-{param.name}-{Path(value).name}"
                try:
                    spec.inputs[name] = Path(value).read_bytes()
                except OSError:
                    continue  # the node reports the missing file itself
                spec.input_params.append((node_id, param.name, name))


def _scrub(value: Any, prefixes: tuple[str, ...]) -> Any:
    """``value`` with every path under a staging folder cut down to its file name."""
    if isinstance(value, str):
        for prefix in prefixes:
            if prefix in value:
                return "\n".join(Path(line).name if line.startswith(prefix) else line for line in value.split("\n"))
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, prefixes) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, prefixes) for v in value]
    return value


def _lock_state(state_dir: Path) -> Any:
    """Hold an exclusive lock on the state folder for as long as the service lives (released on exit,
    even a crash, by the operating system)."""
    import fcntl

    handle = open(state_dir / "server.lock", "a+")  # held open: the lock lasts as long as the file
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StateInUse(f"another nodegraph server is using the state folder {state_dir}; stop it, or give this one "
                         "its own folder with --state") from None
    return handle
