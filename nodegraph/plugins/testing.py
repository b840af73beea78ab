"""A registry for plugin authors' tests: the built-ins plus the plugins asked for, failing loudly."""

from __future__ import annotations

import os
from collections.abc import Iterable

from nodegraph.plugins.loading import load_library, load_plugins
from nodegraph.plugins.records import LOADED, PluginInfo
from nodegraph.registry import Registry

# -- for plugin authors' tests ----------------------------------------------------------------------------


class PluginLoadError(RuntimeError):
    """Raised by :func:`plugin_registry` when a plugin it was asked to load did not load."""

    def __init__(self, failed: list[PluginInfo]) -> None:
        lines = "\n".join(f"  - {i.name} ({i.status}): {i.error.line() if i.error else ''}" for i in failed)
        super().__init__(f"{len(failed)} plugin(s) did not load:\n{lines}")
        self.failed = failed


def plugin_registry(
    folders: Iterable[str | os.PathLike[str]] = (), *, builtins: bool = True, entry_points: bool = False, strict: bool = True
) -> Registry:
    """A fresh registry with the built-in nodes and the plugins in ``folders``: the starting point of a test.

    With ``strict`` (the default) a plugin that fails or conflicts raises :class:`PluginLoadError`, so a broken
    plugin fails its tests loudly instead of being reported and skipped as it is in the application.
    """
    registry = Registry()
    if builtins:
        load_library(registry)
    infos = load_plugins(registry, entry_points=entry_points, folders=list(folders))
    failed = [i for i in infos if i.status != LOADED]
    if strict and failed:
        raise PluginLoadError(failed)
    return registry


