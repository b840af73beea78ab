"""One model load at a time per process, for in-process workers that share it.

Building models is not thread-safe: accelerate's empty-weights context (used by diffusers and transformers
loaders) patches ``torch.nn.Module`` methods for the whole process while a model is built, so two workers
loading at once in one process get each other's half-built weights ("some text encoder weights were not in
the file"). Sampling, decoding and everything else still run in parallel; only nodes that read model files
(those with a model-file parameter) take the lock.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from typing import Any

from nodegraph.node import NodeDef
from nodegraph.params import ModelFile
from nodegraph.registry import Registry

LOAD_LOCK = threading.RLock()


def _locked(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with LOAD_LOCK:
            return fn(*args, **kwargs)

    run.__nodegraph_load_lock__ = True  # type: ignore[attr-defined]
    return run


def loads_models(definition: NodeDef) -> bool:
    return any(isinstance(p, ModelFile) for p in definition.params)


def serialize_loaders(registry: Registry) -> Registry:
    """A copy of ``registry`` whose model-loading node types run under :data:`LOAD_LOCK` (same ids and
    versions, so cache keys do not change)."""
    result = registry.copy()
    for definition in registry:
        if loads_models(definition) and not getattr(definition.fn, "__nodegraph_load_lock__", False):
            result.register(dataclasses.replace(definition, fn=_locked(definition.fn)), source=definition.source, override=True)
    return result
