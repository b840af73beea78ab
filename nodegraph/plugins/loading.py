"""Importing plugins and registering their nodes: each plugin isolated (what it raises becomes its record's
error, with the file and line), its nodes registered all or nothing, inside its namespace."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nodegraph.node import NodeDef
from nodegraph.plugins.discovery import (
    entry_point_candidates,
    folder_candidates,
    library_entry_points,
    plugin_folders,
    static_namespace,
)
from nodegraph.plugins.records import (
    CONFLICT,
    ENGINE_DIR,
    ENTRY_POINT,
    ENTRY_POINT_GROUP,
    FOLDER,
    LIBRARY,
    LIBRARY_SOURCE,
    LOADED,
    NAMESPACE_PATTERN,
    Candidate,
    PluginError,
    PluginFailure,
    PluginInfo,
)
from nodegraph.registry import Registry, RegistryConflict
from nodegraph.version import __version__


@dataclass
class LoadState:
    entry_points: bool
    folders: list[Path] | None
    plugins: list[PluginInfo]


LOAD_STATES: weakref.WeakKeyDictionary[Registry, LoadState] = weakref.WeakKeyDictionary()
LIBRARY_STATES: weakref.WeakKeyDictionary[Registry, list[PluginInfo]] = weakref.WeakKeyDictionary()


class LibraryError(RuntimeError):
    """The built-in node library did not load: a broken installation, not a plugin to skip."""


# -- loading --------------------------------------------------------------------------------------------


def load_library(registry: Registry) -> list[PluginInfo]:
    """Register the built-in node library: the entry points nodegraph itself declares in the group, through
    the same plugin protocol (a module with ``NODES`` and ``NAMESPACE``) as third-party plugins, before them.

    Unlike a plugin, a library that fails raises :class:`LibraryError`: without it nothing works. Its node
    types keep the source ``"builtin"`` and may use any namespace (third-party plugins may then use none of
    them)."""
    infos: list[PluginInfo] = []
    entry_points = library_entry_points()
    if not entry_points:
        raise LibraryError(f"nodegraph declares no entry point in the group {ENTRY_POINT_GROUP!r}: reinstall it")
    for ep in entry_points:
        info = PluginInfo(ep.name, LIBRARY, f"entry point {ep.name} = {ep.value} (built in)", ep.value,
                          __version__, namespace=ep.name, module=ep.module)
        candidate = Candidate(info, ep.load)
        try:
            obj = _run_plugin_code("import", candidate, candidate.load)
            _read_metadata(info, obj if isinstance(obj, ModuleType) else None)
            definitions = _run_plugin_code("register", candidate, lambda obj=obj, info=info: _collect(obj, registry, info))
        except PluginFailure as failure:
            raise LibraryError(f"the built-in node library {ep.value!r} did not load: {failure.error.line()}") from failure
        for d in definitions:
            registry.register(d, source=LIBRARY_SOURCE)
        info.status, info.node_types = LOADED, [d.id for d in definitions]
        infos.append(info)
    LIBRARY_STATES[registry] = infos
    return infos


def load_plugins(
    registry: Registry, *, entry_points: bool = True, folders: Iterable[str | os.PathLike[str]] | None = None
) -> list[PluginInfo]:
    """Discover plugins and register their nodes into ``registry``; returns one :class:`PluginInfo` each.

    ``folders`` replaces the plugin folders from the environment (tests pass their own); ``entry_points=False``
    skips installed distributions. Never raises because of a plugin: failures are in the returned records.
    """
    folder_list = None if folders is None else [Path(f) for f in folders]
    candidates = (entry_point_candidates() if entry_points else []) + folder_candidates(
        plugin_folders() if folder_list is None else folder_list
    )
    infos: list[PluginInfo] = []
    for candidate in candidates:
        infos.append(_load_one(registry, candidate, infos))
    LOAD_STATES[registry] = LoadState(entry_points, folder_list, infos)
    return infos


def _load_one(registry: Registry, candidate: Candidate, earlier: list[PluginInfo]) -> PluginInfo:
    info = candidate.info
    try:
        # The name identifies the plugin's nodes in the registry (source "plugin:<name>") and, for folder
        # plugins, the module it is imported as: it must be unique.
        clash = next((p for p in earlier if p.name == info.name or (p.module == info.module and p.kind == info.kind == FOLDER)), None)
        if clash is not None:
            raise PluginFailure(
                PluginError("conflict", f"a plugin named {clash.name!r} was already found: {clash.source}", info.location),
                CONFLICT,
            )
        obj = _run_plugin_code("import", candidate, candidate.load)
        meta = obj if isinstance(obj, ModuleType) else sys.modules.get(getattr(obj, "__module__", ""), None)
        _read_metadata(info, meta)
        definitions = _run_plugin_code("register", candidate, lambda: _collect(obj, registry, info))
        _register_all(registry, info, definitions, earlier)
    except PluginFailure as failure:
        info.status = failure.status
        info.error = failure.error
        info.node_types = []
        return info
    info.status = LOADED
    return info


def _run_plugin_code(phase: str, candidate: Candidate, call: Callable[[], Any]) -> Any:
    """Run foreign code; turn whatever it raises into a one-line error and the place it came from."""
    from nodegraph.node import NodeDefinitionError

    try:
        return call()
    except PluginFailure:
        raise
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the editor
        kind = "definition" if isinstance(exc, NodeDefinitionError) else phase
        what = {"import": "failed to import", "register": "failed while registering", "definition": "declares an invalid node"}[kind]
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"{what}: {type(exc).__name__}: {first}" if first else f"{what}: {type(exc).__name__}"
        where = _where(exc, candidate)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise PluginFailure(PluginError(kind, message, where, details)) from exc


def _where(exc: BaseException, candidate: Candidate) -> str:
    """The file and line in the plugin's own code where ``exc`` arose (not inside nodegraph or importlib)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    root = candidate.files
    if root is None and candidate.info.kind in (ENTRY_POINT, LIBRARY):
        root = _module_root(candidate.info.module)
    inside = [f for f in frames if root is not None and _is_within(f.filename, root)]
    foreign = [f for f in frames if not f.filename.startswith("<") and not _is_within(f.filename, ENGINE_DIR)]
    chosen = (inside or foreign or frames or [None])[-1]
    return f"{chosen.filename}:{chosen.lineno}" if chosen is not None else ""


def _module_root(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    return origin.parent if spec.submodule_search_locations else origin


def _is_within(filename: str, root: Path) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(root.resolve())
    except (OSError, ValueError):
        return False


def _read_metadata(info: PluginInfo, meta: ModuleType | None) -> None:
    namespace = getattr(meta, "NAMESPACE", None)
    if namespace is not None:
        if not isinstance(namespace, str) or not NAMESPACE_PATTERN.match(namespace):
            raise PluginFailure(
                PluginError("namespace", f"NAMESPACE must be one identifier such as 'acme', found {namespace!r}", _file_of(meta))
            )
        info.namespace = namespace
    if not NAMESPACE_PATTERN.match(info.namespace):
        raise PluginFailure(
            PluginError("namespace", f"the plugin name {info.name!r} is not a valid namespace; declare NAMESPACE = 'yourname'", _file_of(meta))
        )
    overrides = getattr(meta, "OVERRIDES", ())
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise PluginFailure(PluginError("namespace", f"OVERRIDES must be a set of node ids, found {overrides!r}", _file_of(meta)))
    info.overrides = sorted(overrides)
    version = getattr(meta, "__version__", None)
    if info.version is None and version is not None:
        info.version = str(version)


def _file_of(module: ModuleType | None) -> str:
    return str(getattr(module, "__file__", "") or "")


def _collect(obj: Any, registry: Registry, info: PluginInfo) -> list[NodeDef]:
    """The node definitions a plugin object provides, in declaration order."""
    if isinstance(obj, ModuleType):
        declared = getattr(obj, "NODES", None)
        items = _module_defs(obj) if declared is None else (declared() if callable(declared) else declared)
    elif isinstance(obj, NodeDef):
        items = [obj]
    elif callable(obj):
        items = obj()
    else:
        raise TypeError(f"the entry point must name a module or a callable, found {type(obj).__name__}")
    if isinstance(items, (NodeDef, ModuleType)):
        items = [items]
    definitions: list[NodeDef] = []
    for item in items:
        if isinstance(item, ModuleType):
            definitions.extend(_module_defs(item))
        elif isinstance(item, NodeDef):
            definitions.append(item)
        else:
            raise TypeError(f"expected node definitions or modules, found {type(item).__name__} {item!r:.60}")
    own = info.registry_source
    unique: list[NodeDef] = []
    for d in definitions:
        if any(d is u for u in unique):
            continue  # the same object reached twice (an alias, or a module listed and also imported)
        if registry.get(d.id) is d and d.source != own:
            continue  # a built-in or another plugin's node imported by this module: not declared here
        unique.append(d)
    return unique


def _module_defs(module: ModuleType) -> list[NodeDef]:
    return [v for v in vars(module).values() if isinstance(v, NodeDef)]


def _register_all(registry: Registry, info: PluginInfo, definitions: list[NodeDef], earlier: list[PluginInfo]) -> None:

    namespace = info.namespace
    by_id: dict[str, NodeDef] = {}
    for d in definitions:
        if d.id in by_id:
            raise PluginFailure(
                PluginError("definition", f"declares node type {d.id!r} twice (also at {_def_where(by_id[d.id])})", _def_where(d))
            )
        by_id[d.id] = d
    overrides = set(info.overrides)
    for d in definitions:
        if d.id.split(".", 1)[0] != namespace and d.id not in overrides:
            raise PluginFailure(
                PluginError(
                    "namespace",
                    f"node type {d.id!r} is outside the plugin's namespace {namespace!r}: its id must start with "
                    f"'{namespace}.' (or list it in OVERRIDES to replace an existing node on purpose)",
                    _def_where(d),
                )
            )
        if d.id in overrides and d.id.split(".", 1)[0] != namespace and d.id not in registry:
            raise PluginFailure(
                PluginError("namespace", f"OVERRIDES lists {d.id!r}, but no installed node type has that id", _def_where(d))
            )
    owner = next((p for p in earlier if p.status == LOADED and p.namespace == namespace), None)
    if owner is None:
        owner_source = next((d.source for d in registry if d.id.split(".", 1)[0] == namespace and d.source != info.registry_source), None)
    else:
        owner_source = owner.registry_source
    if owner_source is not None:
        raise PluginFailure(
            PluginError("conflict", f"RegistryConflict: namespace {namespace!r} is already used by {owner_source}; choose another NAMESPACE", _file_or_location(info)),
            CONFLICT,
        )
    # Register into a copy first: the registry's own conflict rule decides, and a refusal leaves nothing behind.
    trial = registry.copy()
    replaced: dict[str, NodeDef] = {}
    for d in definitions:
        existing = registry.get(d.id)
        try:
            trial.register(d, source=info.registry_source, override=d.id in overrides)
        except RegistryConflict as exc:
            hint = f" (to replace it on purpose, list {d.id!r} in the plugin's OVERRIDES)"
            raise PluginFailure(PluginError("conflict", f"RegistryConflict: {exc}{hint}", _def_where(d)), CONFLICT) from exc
        if existing is not None:
            replaced[d.id] = existing
    for d in definitions:
        registry.register(d, source=info.registry_source, override=True)
    info.replaced = replaced
    info.node_types = [d.id for d in definitions]


def _def_where(d: NodeDef) -> str:
    code = getattr(d.fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""


def _file_or_location(info: PluginInfo) -> str:
    """Where the plugin declares its namespace: the NAMESPACE line if there is one, else its file."""
    path = _file_of(sys.modules.get(info.module))
    if not path:
        return info.location
    found = static_namespace(Path(path))
    return f"{path}:{found[1]}" if found else path


