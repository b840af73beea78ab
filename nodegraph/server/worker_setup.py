"""Make a server's (or a batch's) workers from its settings: N in-process executors, or Ray actors."""

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
    from nodegraph.workers.local import LocalWorker

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


def make_workers(settings: Any, registry: Registry) -> tuple[list[Any], Callable[[Any], Any] | None]:
    if settings.ray:
        return make_ray_workers(settings.ray, settings.workers, settings.ray_cpus, settings.ray_gpus, settings.models,
                                settings.device, settings.precision)
    return make_local_workers(settings.workers or 1, registry, settings.staging_dir, settings.models, settings.device,
                              settings.precision), None
