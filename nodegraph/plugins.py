"""Plugin discovery, isolation and reload: third-party node types enter through the same registry as built-ins.

Where plugins come from, in this order:

1. installed distributions that declare an entry point in the group ``nodegraph.nodes``; the entry point names
   a module (``imagetools = "nodegraph_imagetools"``) or a callable returning node definitions and/or modules
   (``imagetools = "nodegraph_imagetools:nodes"``);
2. plugin folders: every path in ``$NODEGRAPH_PLUGIN_PATH`` (separated by ``os.pathsep``), then the user plugin
   folder (``$XDG_DATA_HOME/nodegraph/plugins``, by default ``~/.local/share/nodegraph/plugins``). Each entry of
   a folder is a plugin: a package directory (with ``__init__.py``) or a single ``.py`` module.

A plugin module may declare (all optional):

* ``NAMESPACE = "acme"``: the first part of every node id it declares (default: the plugin's name). A node id
  outside the namespace is refused, and a namespace already used by the built-ins or another plugin is a
  conflict;
* ``OVERRIDES = {"core.Show"}``: ids of existing node types it replaces on purpose. Without this, declaring an
  id that already exists is a :class:`~nodegraph.registry.RegistryConflict` and the plugin is not loaded;
* ``NODES``: the node definitions and/or modules to register (or a function returning them). Without it, every
  node definition at the top level of the module is registered;
* ``__version__``: shown by ``nodegraph plugins`` when the package metadata has no version.

Each plugin is isolated: an import error, an exception while collecting its nodes, an invalid declaration
(:class:`~nodegraph.node.NodeDefinitionError`), a duplicate id, an id outside its namespace or a conflict is
recorded in its :class:`PluginInfo` (one line plus the file and line where it happened) and every other plugin
keeps working. A plugin's nodes are registered all or nothing.

The editor reads :func:`plugin_infos` and calls :func:`reload_plugins` to pick up edited plugin folders.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import traceback
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nodegraph.node import NodeDef

if TYPE_CHECKING:
    from nodegraph.registry import Registry

ENTRY_POINT_GROUP = "nodegraph.nodes"
PATH_ENV = "NODEGRAPH_PLUGIN_PATH"
# Folder plugins are imported as submodules of this name, so a folder called "json" or "torch" cannot shadow
# a real package, and a package plugin's relative imports work.
FOLDER_PACKAGE = "nodegraph_folder_plugins"
SOURCE_PREFIX = "plugin:"

LOADED, FAILED, CONFLICT = "loaded", "failed", "conflict"
ENTRY_POINT, FOLDER = "entry_point", "folder"

_NAMESPACE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENGINE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PluginError:
    """Why a plugin is not loaded. ``kind``: import, register, definition, namespace, conflict or not_a_plugin."""

    kind: str
    message: str
    where: str = ""
    details: str = ""  # the full traceback, for a log panel; never printed by default

    def line(self) -> str:
        return f"{self.message} (at {self.where})" if self.where else self.message


@dataclass
class PluginInfo:
    """What is known about one plugin: read by ``nodegraph plugins`` and the editor."""

    name: str
    kind: str  # ENTRY_POINT or FOLDER
    source: str  # "entry point imagetools = nodegraph_imagetools (nodegraph-imagetools)" or the folder entry's path
    location: str  # the entry point's value, or the path of the plugin's folder or file
    version: str | None = None
    status: str = FAILED
    namespace: str = ""
    node_types: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    error: PluginError | None = None
    fingerprint: str = ""  # changes when the plugin's code changes (hash of its files, or its version)
    module: str = ""  # the module name it was imported as
    replaced: dict[str, NodeDef] = field(default_factory=dict, repr=False)  # what OVERRIDES displaced

    @property
    def registry_source(self) -> str:
        """The ``source`` its node definitions carry in the registry (and in ``nodegraph nodes --json``)."""
        return SOURCE_PREFIX + self.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "location": self.location,
            "version": self.version,
            "status": self.status,
            "namespace": self.namespace,
            "node_types": list(self.node_types),
            "overrides": list(self.overrides),
            "error": None
            if self.error is None
            else {"kind": self.error.kind, "message": self.error.message, "where": self.error.where},
        }


@dataclass
class PluginChanges:
    """What :func:`reload_plugins` changed in the registry, by node id."""

    added: list[str]
    removed: list[str]
    changed: list[str]  # declaration or plugin code changed: cached results of these may be stale
    plugins: list[PluginInfo]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


class _PluginFailure(Exception):
    def __init__(self, error: PluginError, status: str = FAILED) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status


@dataclass
class _Candidate:
    """A plugin found but not yet imported."""

    info: PluginInfo
    load: Callable[[], Any]  # returns the plugin object: a module or a callable
    files: Path | None = None  # a folder plugin's package dir or module file (for tracebacks and the fingerprint)


@dataclass
class _LoadState:
    entry_points: bool
    folders: list[Path] | None
    plugins: list[PluginInfo]


_STATE: weakref.WeakKeyDictionary[Registry, _LoadState] = weakref.WeakKeyDictionary()


# -- where plugins are looked for -----------------------------------------------------------------------


def user_plugin_dir() -> Path:
    """The per-user plugin folder: ``$XDG_DATA_HOME/nodegraph/plugins`` (``%APPDATA%`` on Windows)."""
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "nodegraph" / "plugins"
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "nodegraph" / "plugins"


def plugin_folders() -> list[Path]:
    """The folders searched for plugins: ``$NODEGRAPH_PLUGIN_PATH`` entries first, then the user folder."""
    paths = [Path(p).expanduser() for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p.strip()]
    paths.append(user_plugin_dir())
    unique: list[Path] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique


def _entry_point_candidates() -> list[_Candidate]:
    from importlib.metadata import entry_points

    candidates: list[_Candidate] = []
    seen: set[tuple[str, str]] = set()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if (ep.name, ep.value) in seen:  # the same distribution reachable twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        source = f"entry point {ep.name} = {ep.value}" + (f" ({dist_name})" if dist_name else "")
        info = PluginInfo(ep.name, ENTRY_POINT, source, ep.value, version, namespace=_default_namespace(ep.name))
        info.fingerprint = f"{dist_name}=={version}"
        info.module = ep.module
        candidates.append(_Candidate(info, ep.load))
    return candidates


def _folder_candidates(folders: Iterable[Path]) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if entry.name.startswith((".", "_")):
                continue  # __pycache__, hidden files, editor backups
            if entry.is_dir() and "." in entry.name:
                continue  # not importable as a package: build metadata (*.egg-info, *.dist-info) and the like
            if entry.is_dir():
                name, init = entry.name, entry / "__init__.py"
            elif entry.suffix == ".py":
                name, init = entry.stem, entry
            else:
                continue
            declared = _static_namespace(init)
            info = PluginInfo(name, FOLDER, str(entry), str(entry), namespace=declared[0] if declared else _default_namespace(name))
            info.module = f"{FOLDER_PACKAGE}.{_identifier(name)}"
            if entry.is_dir() and not init.is_file():
                error = PluginError("not_a_plugin", "a plugin folder needs an __init__.py (or make it a single .py file)", str(entry))
                candidates.append(_Candidate(info, _raiser(_PluginFailure(error)), entry))
                continue
            info.fingerprint = _hash_files(entry)
            candidates.append(_Candidate(info, _folder_loader(entry, init, info.module), entry))
    return candidates


def _raiser(exc: Exception) -> Callable[[], Any]:
    def load() -> Any:
        raise exc

    return load


def _folder_loader(entry: Path, init: Path, module_name: str) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        return _import_file(module_name, init, entry if entry.is_dir() else None)

    return load


def _import_file(module_name: str, path: Path, package_dir: Path | None) -> ModuleType:
    if FOLDER_PACKAGE not in sys.modules:
        parent = ModuleType(FOLDER_PACKAGE, "Plugins imported from plugin folders.")
        parent.__path__ = []
        sys.modules[FOLDER_PACKAGE] = parent
    spec = importlib.util.spec_from_file_location(
        module_name, path, submodule_search_locations=[str(package_dir)] if package_dir else None
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # No .pyc next to user files: it would litter plugin folders, and its one-second timestamp could serve
    # stale code after a quick edit and reload.
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
    except BaseException:
        _purge_modules(module_name)
        raise
    finally:
        sys.dont_write_bytecode = previous
    return module


def _purge_modules(module_name: str) -> None:
    for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
        del sys.modules[name]


# -- loading --------------------------------------------------------------------------------------------


def load_plugins(
    registry: Registry, *, entry_points: bool = True, folders: Iterable[str | os.PathLike[str]] | None = None
) -> list[PluginInfo]:
    """Discover plugins and register their nodes into ``registry``; returns one :class:`PluginInfo` each.

    ``folders`` replaces the plugin folders from the environment (tests pass their own); ``entry_points=False``
    skips installed distributions. Never raises because of a plugin: failures are in the returned records.
    """
    folder_list = None if folders is None else [Path(f) for f in folders]
    candidates = (_entry_point_candidates() if entry_points else []) + _folder_candidates(
        plugin_folders() if folder_list is None else folder_list
    )
    infos: list[PluginInfo] = []
    for candidate in candidates:
        infos.append(_load_one(registry, candidate, infos))
    _STATE[registry] = _LoadState(entry_points, folder_list, infos)
    return infos


def _load_one(registry: Registry, candidate: _Candidate, earlier: list[PluginInfo]) -> PluginInfo:
    info = candidate.info
    try:
        # The name identifies the plugin's nodes in the registry (source "plugin:<name>") and, for folder
        # plugins, the module it is imported as: it must be unique.
        clash = next((p for p in earlier if p.name == info.name or (p.module == info.module and p.kind == info.kind == FOLDER)), None)
        if clash is not None:
            raise _PluginFailure(
                PluginError("conflict", f"a plugin named {clash.name!r} was already found: {clash.source}", info.location),
                CONFLICT,
            )
        obj = _run_plugin_code("import", candidate, candidate.load)
        meta = obj if isinstance(obj, ModuleType) else sys.modules.get(getattr(obj, "__module__", ""), None)
        _read_metadata(info, meta)
        definitions = _run_plugin_code("register", candidate, lambda: _collect(obj, registry, info))
        _register_all(registry, info, definitions, earlier)
    except _PluginFailure as failure:
        info.status = failure.status
        info.error = failure.error
        info.node_types = []
        return info
    info.status = LOADED
    return info


def _run_plugin_code(phase: str, candidate: _Candidate, call: Callable[[], Any]) -> Any:
    """Run foreign code; turn whatever it raises into a one-line error and the place it came from."""
    from nodegraph.node import NodeDefinitionError

    try:
        return call()
    except _PluginFailure:
        raise
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the editor
        kind = "definition" if isinstance(exc, NodeDefinitionError) else phase
        what = {"import": "failed to import", "register": "failed while registering", "definition": "declares an invalid node"}[kind]
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"{what}: {type(exc).__name__}: {first}" if first else f"{what}: {type(exc).__name__}"
        where = _where(exc, candidate)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise _PluginFailure(PluginError(kind, message, where, details)) from exc


def _where(exc: BaseException, candidate: _Candidate) -> str:
    """The file and line in the plugin's own code where ``exc`` arose (not inside nodegraph or importlib)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    root = candidate.files
    if root is None and candidate.info.kind == ENTRY_POINT:
        root = _module_root(candidate.info.module)
    inside = [f for f in frames if root is not None and _is_within(f.filename, root)]
    foreign = [f for f in frames if not f.filename.startswith("<") and not _is_within(f.filename, _ENGINE_DIR)]
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
        if not isinstance(namespace, str) or not _NAMESPACE_PATTERN.match(namespace):
            raise _PluginFailure(
                PluginError("namespace", f"NAMESPACE must be one identifier such as 'acme', found {namespace!r}", _file_of(meta))
            )
        info.namespace = namespace
    if not _NAMESPACE_PATTERN.match(info.namespace):
        raise _PluginFailure(
            PluginError("namespace", f"the plugin name {info.name!r} is not a valid namespace; declare NAMESPACE = 'yourname'", _file_of(meta))
        )
    overrides = getattr(meta, "OVERRIDES", ())
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise _PluginFailure(PluginError("namespace", f"OVERRIDES must be a set of node ids, found {overrides!r}", _file_of(meta)))
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
    from nodegraph.registry import RegistryConflict

    namespace = info.namespace
    by_id: dict[str, NodeDef] = {}
    for d in definitions:
        if d.id in by_id:
            raise _PluginFailure(
                PluginError("definition", f"declares node type {d.id!r} twice (also at {_def_where(by_id[d.id])})", _def_where(d))
            )
        by_id[d.id] = d
    overrides = set(info.overrides)
    for d in definitions:
        if d.id.split(".", 1)[0] != namespace and d.id not in overrides:
            raise _PluginFailure(
                PluginError(
                    "namespace",
                    f"node type {d.id!r} is outside the plugin's namespace {namespace!r}: its id must start with "
                    f"'{namespace}.' (or list it in OVERRIDES to replace an existing node on purpose)",
                    _def_where(d),
                )
            )
        if d.id in overrides and d.id.split(".", 1)[0] != namespace and d.id not in registry:
            raise _PluginFailure(
                PluginError("namespace", f"OVERRIDES lists {d.id!r}, but no installed node type has that id", _def_where(d))
            )
    owner = next((p for p in earlier if p.status == LOADED and p.namespace == namespace), None)
    if owner is None:
        owner_source = next((d.source for d in registry if d.id.split(".", 1)[0] == namespace and d.source != info.registry_source), None)
    else:
        owner_source = owner.registry_source
    if owner_source is not None:
        raise _PluginFailure(
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
            raise _PluginFailure(PluginError("conflict", f"RegistryConflict: {exc}{hint}", _def_where(d)), CONFLICT) from exc
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
    found = _static_namespace(Path(path))
    return f"{path}:{found[1]}" if found else path


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
    from nodegraph.registry import Registry

    registry = Registry()
    if builtins:
        from nodes import BUILTIN_MODULES

        for module in BUILTIN_MODULES:
            registry.register_module(module)
    infos = load_plugins(registry, entry_points=entry_points, folders=list(folders))
    failed = [i for i in infos if i.status != LOADED]
    if strict and failed:
        raise PluginLoadError(failed)
    return registry


# -- reading the record ---------------------------------------------------------------------------------


def plugin_infos(registry: Registry | None = None) -> list[PluginInfo]:
    """The plugins loaded into ``registry`` (default: the process-wide registry, built if needed)."""
    if registry is None:
        from nodegraph.registry import default_registry

        registry = default_registry()
    state = _STATE.get(registry)
    return list(state.plugins) if state is not None else []


def explain_missing(node_type: str, registry: Registry | None = None) -> str | None:
    """Why a node type is missing, if a known plugin explains it (failed, conflicting, or lacking that node)."""
    namespace = node_type.split(".", 1)[0]
    states = [_STATE[registry]] if registry is not None and registry in _STATE else list(_STATE.values())
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
    state = _STATE.pop(registry, None)
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
            _purge_modules(info.module)
    return removed


def reload_plugins(registry: Registry) -> PluginChanges:
    """Re-import plugin folders and re-register every plugin; report which node ids were added, removed, changed.

    Installed (entry point) plugins are re-registered from their already imported modules; only folder
    plugins are re-imported from disk. After a reload with ``changed`` or ``removed`` ids, cached results may
    come from old code: clear the executor's cache (``executor.cache.clear()``) and re-validate open workflows.
    """
    state = _STATE.get(registry)
    before = {d.id: _identity(d, state) for d in registry}
    unload_plugins(registry)
    importlib.invalidate_caches()  # new files in plugin folders must be seen by the import system
    infos = load_plugins(
        registry,
        entry_points=state.entry_points if state else True,
        folders=state.folders if state else None,
    )
    after = {d.id: _identity(d, _STATE.get(registry)) for d in registry}
    return PluginChanges(
        added=sorted(set(after) - set(before)),
        removed=sorted(set(before) - set(after)),
        changed=sorted(k for k in set(before) & set(after) if before[k] != after[k]),
        plugins=infos,
    )


def _identity(d: NodeDef, state: _LoadState | None) -> tuple[str, str, str]:
    fingerprint = ""
    if state is not None and d.source.startswith(SOURCE_PREFIX):
        name = d.source[len(SOURCE_PREFIX) :]
        fingerprint = next((p.fingerprint for p in state.plugins if p.name == name and p.status == LOADED), "")
    return json.dumps(d.schema(), sort_keys=True, default=str), d.source, fingerprint


# -- the command line -----------------------------------------------------------------------------------


def print_plugins(as_json: bool = False) -> int:
    """``nodegraph plugins``: every plugin with source, version, status, node types and errors."""
    infos = plugin_infos()
    if as_json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
        return 0
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


# -- small helpers --------------------------------------------------------------------------------------


def _identifier(name: str) -> str:
    text = re.sub(r"\W", "_", name)
    return text if text and not text[0].isdigit() else "_" + text


def _default_namespace(name: str) -> str:
    return _identifier(name)


def _static_namespace(path: Path) -> tuple[str, int] | None:
    """``NAMESPACE = "..."`` and its line, read without importing (so a plugin that fails to import still
    explains which node types it would have provided)."""
    import ast

    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "NAMESPACE" for t in stmt.targets):
            if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                return stmt.value.value, stmt.lineno
    return None


def _hash_files(entry: Path) -> str:
    digest = hashlib.sha256()
    files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*.py") if "__pycache__" not in p.parts)
    for path in files:
        try:
            digest.update(str(path.relative_to(entry) if entry.is_dir() else path.name).encode())
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()
