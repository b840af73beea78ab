"""The node types installed in this process: the built-in library, then the plugins, in one registry.

Both arrive through the entry point group ``nodegraph.nodes`` (:mod:`nodegraph.plugins`): the library's entry
points are the ones nodegraph itself declares, loaded first; plugin folders come last.
"""

from __future__ import annotations

import json

from nodegraph.plugins import (
    ENTRY_POINT_GROUP,
    LOADED,
    library_infos,
    load_library,
    load_plugins,
    plugin_folders,
    plugin_infos,
)
from nodegraph.registry import Registry

_DEFAULT: Registry | None = None


def default_registry(*, plugins: bool = True) -> Registry:
    """The process-wide registry: the built-in library, then plugins. Built once, on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        registry = Registry()
        load_library(registry)
        if plugins:
            load_plugins(registry)
        _DEFAULT = registry
    return _DEFAULT


def print_plugins(as_json: bool = False) -> int:
    """``nodegraph plugins``: the built-in library, then every plugin with source, version, status, node types
    and errors."""
    registry = default_registry()
    library, infos = library_infos(registry), plugin_infos(registry)
    if as_json:
        print(json.dumps([i.to_json() for i in (*library, *infos)], indent=2))
        return 0
    for info in library:
        print(f"{info.name}  {info.version or '-'}  {info.status}  {info.source}: {len(info.node_types)} node types")
    if not infos:
        folders = ", ".join(str(p) for p in plugin_folders())
        print(f"no plugins found (entry point group {ENTRY_POINT_GROUP!r}; folders: {folders})")
        return 0
    for info in infos:
        print(f"{info.name}  {info.version or '-'}  {info.status}  {info.source}")
        if info.node_types:
            print("  nodes: " + ", ".join(info.node_types))
        if info.overrides and info.status == LOADED:
            print("  overrides: " + ", ".join(info.overrides))
        if info.error is not None:
            print(f"  error: {info.error.message}")
            if info.error.where:
                print(f"  at: {info.error.where}")
    return 0
