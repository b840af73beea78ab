"""Make workers: N in-process executors, or Ray actors spread over a cluster."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodegraph.registry import Registry


def make_local_workers(count: int, registry: Registry, staging: Path, models: list[Path], device: str | None,
                       precision: str) -> list[Any]:
    from nodegraph.executor import Executor
    from nodegraph.model_folders import ModelFolders
    from nodegraph.runtime import Runtime
    from nodegraph.workers.load_lock import serialize_loaders
    from nodegraph.workers.local import LocalWorker

    if count > 1:  # workers sharing this process must not build models at the same time
        registry = serialize_loaders(registry)

    def make_executor() -> Executor:
        return Executor(registry, runtime=Runtime(device, precision), folders=ModelFolders.from_environment(models))

    return [LocalWorker(f"local-{i + 1}", make_executor, staging) for i in range(count)]


def make_ray_workers(address: str, count: int | None, cpus: float, gpus: float, models: list[Path],
                     device: str | None, precision: str) -> tuple[list[Any], Callable[[Any], Any]]:
    """One actor per GPU when the cluster has GPUs, else one per ``cpus`` CPUs (or ``count`` if given).
    Returns the workers and the function that replaces a dead one."""
    from nodegraph.workers.ray_actors import ActorOptions, RayWorker, connect

    ray = connect(address)
    resources = ray.cluster_resources()
    cluster_gpus = int(resources.get("GPU", 0))
    if cluster_gpus:
        options = ActorOptions(num_cpus=1, num_gpus=gpus, models=[str(m) for m in models], device=device, precision=precision)
        default_count = max(1, int(cluster_gpus / max(gpus, 1e-9)))
    else:
        options = ActorOptions(num_cpus=cpus, num_gpus=0, models=[str(m) for m in models], device=device or "cpu",
                               precision=precision)
        default_count = max(1, int(resources.get("CPU", 1) / max(cpus, 1e-9)))
    workers = [RayWorker(f"ray-{i + 1}", options) for i in range(count or default_count)]
    generation = itertools.count(2)

    def replace(dead: Any) -> Any:
        base = dead.name.split("~")[0]
        return RayWorker(f"{base}~{next(generation)}", dead.options)

    return workers, replace
