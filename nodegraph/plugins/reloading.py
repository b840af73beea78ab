"""Reading what was loaded, explaining a missing node type, and unloading or reloading plugins."""

from __future__ import annotations

import importlib
import json

from nodegraph.node import NodeDef
from nodegraph.plugins.discovery import purge_modules
from nodegraph.plugins.loading import LIBRARY_STATES, LOAD_STATES, LoadState, load_plugins
from nodegraph.plugins.records import CONFLICT, FAILED, FOLDER, LOADED, SOURCE_PREFIX, PluginChanges, PluginInfo
from nodegraph.registry import Registry

# -- reading the record ---------------------------------------------------------------------------------


def plugin_infos(registry: Registry) -> list[PluginInfo]:
    """The third-party plugins loaded into ``registry`` (the process-wide one: ``nodegraph.installed``)."""
    state = LOAD_STATES.get(registry)
    return list(state.plugins) if state is not None else []


def library_infos(registry: Registry) -> list[PluginInfo]:
    """The built-in library's entry points loaded into ``registry`` (listed before the plugins)."""
    return list(LIBRARY_STATES.get(registry, ()))


def explain_missing(node_type: str, registry: Registry | None = None) -> str | None:
    """Why a node type is missing, if a known plugin explains it (failed, conflicting, or lacking that node)."""
    namespace = node_type.split(".", 1)[0]
    states = [LOAD_STATES[registry]] if registry is not None and registry in LOAD_STATES else list(LOAD_STATES.values())
    for state in reversed(states):
        for info in state.plugins:
            if info.namespace != namespace and info.name != namespace:
                continue
            if info.status == FAILED and info.error is not None:
                return f"plugin {info.name!r} failed to load: {info.error.line()}"
            if info.status == CONFLICT and info.error is not None:
                return f"plugin {info.name!r} was not loaded because of a conflict: {info.error.line()}"
            if info.status == LOADED:
                version = f" (version {info.version})" if info.version else ""
                return f"plugin {info.name!r}{version} is loaded but has no node type {node_type!r}; it may need a newer version"
    return None


# -- unload and reload ----------------------------------------------------------------------------------


def unload_plugins(registry: Registry) -> list[str]:
    """Remove every plugin node from ``registry`` and put back what their OVERRIDES replaced.

    Returns the removed ids. Folder plugins' modules are dropped from ``sys.modules``.
    """
    state = LOAD_STATES.pop(registry, None)
    if state is None:
        return []
    removed: list[str] = []
    for info in reversed(state.plugins):  # reverse: a later plugin may have overridden an earlier one's node
        if info.status != LOADED:
            continue
        removed.extend(registry.unregister_source(info.registry_source))
        for previous in info.replaced.values():
            registry.register(previous, source=previous.source, override=True)
    for info in state.plugins:
        if info.kind == FOLDER:
            purge_modules(info.module)
    return removed


def reload_plugins(registry: Registry) -> PluginChanges:
    """Re-import plugin folders and re-register every plugin; report which node ids were added, removed, changed.

    Installed (entry point) plugins are re-registered from their already imported modules; only folder
    plugins are re-imported from disk. After a reload with ``changed`` or ``removed`` ids, cached results may
    come from old code: clear the executor's cache (``executor.cache.clear()``) and re-validate open workflows.
    """
    state = LOAD_STATES.get(registry)
    before = {d.id: _identity(d, state) for d in registry}
    unload_plugins(registry)
    importlib.invalidate_caches()  # new files in plugin folders must be seen by the import system
    infos = load_plugins(
        registry,
        entry_points=state.entry_points if state else True,
        folders=state.folders if state else None,
    )
    after = {d.id: _identity(d, LOAD_STATES.get(registry)) for d in registry}
    return PluginChanges(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        changed=sorted(k for k in set(before) & set(after) if before[k] != after[k]),
        plugins=infos,
    )


def _identity(d: NodeDef, state: LoadState | None) -> tuple[str, str, str]:
    fingerprint = ""
    if state is not None and d.source.startswith(SOURCE_PREFIX):
        name = d.source[len(SOURCE_PREFIX) :]
        fingerprint = next((p.fingerprint for p in state.plugins if p.name == name and p.status == LOADED), "")
    return json.dumps(d.schema(), sort_keys=True, default=str), d.source, fingerprint


