"""Workers as Ray actors: each actor keeps its own Executor, cache and loaded models, on any machine of
the cluster. Ray is imported only when a Ray worker is made (``pip install 'nodegraph[ray]'``).

An actor runs one job at a time; the server side (:class:`RayWorker`) polls it for the job's events
every 100 ms and gets the output files back as bytes, so the actor's machine needs the model files (the
same models roots) but not the server's disk. Input images travel with the job. When an actor dies (its
process was killed, its machine lost), the worker reports the attempt as ``lost`` and the pool puts a new
actor in its place.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodegraph.workers.local import MODELS_REMEMBERED, Done, Emit
from nodegraph.workers.spec import FAILED, LOST, SUCCESS, JobSpec, Outcome, StagedFile

POLL_SECONDS = 0.1


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RuntimeError("Ray is not installed: pip install 'nodegraph[ray]' (or pip install ray)") from None
    return ray


def connect(address: str, num_cpus: int | None = None) -> Any:
    """Join the cluster at ``address`` (``auto``: the one this machine belongs to; ``local``: start one
    here). A cluster this process already joined is reused."""
    ray = import_ray()
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="warning")
        else:
            ray.init(address=address, logging_level="warning")
    return ray


class NodegraphActor:
    """The body of a worker actor (wrapped by ``ray.remote`` when the first worker is made)."""

    def __init__(self, name: str, models: list[str], device: str | None, precision: str) -> None:
        from nodegraph.executor import Executor
        from nodegraph.installed import default_registry
        from nodegraph.model_folders import ModelFolders
        from nodegraph.runtime import Runtime

        self.name = name
        self.executor = Executor(default_registry(), runtime=Runtime(device, precision),
                                 folders=ModelFolders.from_environment([Path(m) for m in models]))
        root = Path(tempfile.gettempdir()) / "nodegraph-ray-staging"
        self.staging = root / f"{name}-{os.getpid()}"
        _remove_dead_stagings(root)
        self._events: list[tuple[dict[str, Any], Any]] = []
        self._lock = threading.Lock()
        self._token: Any = None

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        from nodegraph.context import CancelToken
        from nodegraph.workers.runner import run_spec

        self._token = CancelToken()
        outcome = run_spec(self.executor, JobSpec(**spec), self.staging, self._emit, self._token,
                           ship_bytes=True, worker=self.name)
        return dataclasses.asdict(outcome)

    def drain(self) -> list[tuple[dict[str, Any], Any]]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()

    def describe(self) -> dict[str, Any]:
        """Where the actor runs and what it holds: pid, host, resident memory."""
        import socket

        rss = 0
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        except OSError:
            pass
        return {"pid": os.getpid(), "host": socket.gethostname(), "rss_bytes": rss}

    def _emit(self, data: dict[str, Any], preview: Any) -> None:
        with self._lock:
            self._events.append((data, preview))


def _remove_dead_stagings(root: Path) -> None:
    """Staging folders of actors whose process is gone (killed mid-job): never committed, so never needed."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and Path("/proc/self").exists():
            shutil.rmtree(folder, ignore_errors=True)


_REMOTE_CLASS: Any = None


def _remote_class() -> Any:
    global _REMOTE_CLASS
    if _REMOTE_CLASS is None:
        ray = import_ray()
        # max_concurrency: run() occupies one thread; drain() and cancel() must get through meanwhile.
        _REMOTE_CLASS = ray.remote(max_concurrency=4, max_restarts=0)(NodegraphActor)
    return _REMOTE_CLASS


@dataclasses.dataclass
class ActorOptions:
    """What each actor asks of the cluster, and what it is told."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    models: list[str] = dataclasses.field(default_factory=list)
    device: str | None = None
    precision: str = "auto"


class RayWorker:
    """The server's handle on one actor: same interface as :class:`~nodegraph.workers.local.LocalWorker`."""

    kind = "ray"

    def __init__(self, name: str, options: ActorOptions) -> None:
        self.name = name
        self.options = options
        ray = import_ray()
        self._ray = ray
        self.actor = _remote_class().options(num_cpus=options.num_cpus, num_gpus=options.num_gpus, name=None).remote(
            name, list(options.models), options.device, options.precision)
        self.models: list[str] = []
        self.job: JobSpec | None = None
        self.jobs_done = 0
        self.alive = True
        self._inbox: queue.Queue[tuple[JobSpec, Emit, Done] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"nodegraph-ray-{name}", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        return self.alive and self.job is None

    def start(self, spec: JobSpec, emit: Emit, done: Done) -> None:
        if self.job is not None:
            raise RuntimeError(f"worker {self.name} is busy with job {self.job.job_id}")
        self.job = spec
        self._inbox.put((spec, emit, done))

    def cancel(self, job_id: str | None = None) -> None:
        if self.job is not None and (job_id is None or self.job.job_id == job_id) and self.alive:
            self.actor.cancel.remote()

    def describe(self, timeout: float = 30.0) -> dict[str, Any]:
        return self._ray.get(self.actor.describe.remote(), timeout=timeout)

    def info(self) -> dict[str, Any]:
        where: dict[str, Any] = {}
        if self.alive:
            try:
                where = self.describe(timeout=5)
            except Exception:  # busy past the timeout, or gone: report what is known
                where = {}
        return {"name": self.name, "kind": self.kind, "alive": self.alive, "busy": self.job is not None,
                "job": self.job.job_id if self.job else None, "models": list(self.models), "jobs_done": self.jobs_done,
                "host": where.get("host"), "pid": where.get("pid"), "memory_bytes": where.get("rss_bytes")}

    def close(self, timeout: float = 10.0) -> None:
        self.cancel()  # a running job stops at its next check and is reported as cancelled
        self._inbox.put(None)
        self._thread.join(timeout)
        if self.alive:
            self.alive = False
            try:
                self._ray.kill(self.actor)
            except Exception:  # already gone
                pass

    def _loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            spec, emit, done = item
            outcome = self._run(spec, lambda data, preview, _id=spec.job_id, _emit=emit: _emit(_id, data, preview))
            if outcome.status == SUCCESS:
                for model in sorted(spec.model_files()):
                    if model in self.models:
                        self.models.remove(model)
                    self.models.append(model)
                del self.models[:-MODELS_REMEMBERED]
            self.jobs_done += 1
            self.job = None
            done(self, spec, outcome)

    def _run(self, spec: JobSpec, emit: Callable[[dict[str, Any], Any], None]) -> Outcome:
        ray = self._ray
        try:
            ref = self.actor.run.remote(dataclasses.asdict(spec))
            while True:
                ready, _ = ray.wait([ref], timeout=POLL_SECONDS)
                for data, preview in ray.get(self.actor.drain.remote()):
                    emit(data, preview)
                if ready:
                    break
            raw = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            self.alive = False
            return Outcome(LOST, error={"message": f"worker {self.name} was lost: {type(exc).__name__}"}, worker=self.name)
        except ray.exceptions.RayError as exc:
            return Outcome(FAILED, error={"message": f"Ray: {type(exc).__name__}: {exc}"}, worker=self.name)
        raw["files"] = [StagedFile(**f) for f in raw["files"]]
        return Outcome(**raw)
