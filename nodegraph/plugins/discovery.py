"""Where node types come from: the built-in library and installed plugins through the entry point group
``nodegraph.nodes``, then plugin folders. A folder plugin is imported as a submodule of its own package so that
it cannot shadow a real one.

The built-in library is an entry point like any other (``core = "nodes"`` in nodegraph's pyproject.toml); the
engine never names the module. In a source checkout that is not installed (tests run from the tree), the
entry points are read from that checkout's pyproject.toml instead of the installed metadata."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from nodegraph.plugins.records import (
    DISTRIBUTION,
    ENGINE_DIR,
    ENTRY_POINT,
    ENTRY_POINT_GROUP,
    FOLDER,
    FOLDER_PACKAGE,
    PATH_ENV,
    Candidate,
    PluginError,
    PluginFailure,
    PluginInfo,
)

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


def library_entry_points() -> list[Any]:
    """The built-in library's entry points: those nodegraph's own distribution declares in the group, or, in a
    source checkout that is not installed (or installed before it declared them), those its pyproject.toml
    declares."""
    from importlib.metadata import EntryPoint, PackageNotFoundError, distribution

    try:
        declared = [ep for ep in distribution(DISTRIBUTION).entry_points if ep.group == ENTRY_POINT_GROUP]
    except PackageNotFoundError:
        declared = []
    if not declared:
        import tomllib

        try:
            project = tomllib.loads((ENGINE_DIR.parent / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
        except (OSError, tomllib.TOMLDecodeError):
            project = {}
        if project.get("name") == DISTRIBUTION:
            table = project.get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
            declared = [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in table.items()]
    return sorted(declared, key=lambda e: e.name)


def _is_library(ep: Any) -> bool:
    dist = getattr(ep, "dist", None)
    return dist is not None and dist.metadata["Name"] == DISTRIBUTION


def entry_point_candidates() -> list[Candidate]:
    """Installed third-party plugins (the built-in library's own entry points are :func:`library_entry_points`)."""
    from importlib.metadata import entry_points

    candidates: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if (ep.name, ep.value) in seen or _is_library(ep):  # the same distribution reachable twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        source = f"entry point {ep.name} = {ep.value}" + (f" ({dist_name})" if dist_name else "")
        info = PluginInfo(ep.name, ENTRY_POINT, source, ep.value, version, namespace=default_namespace(ep.name))
        info.fingerprint = f"{dist_name}=={version}"
        info.module = ep.module
        candidates.append(Candidate(info, ep.load))
    return candidates


def folder_candidates(folders: Iterable[Path]) -> list[Candidate]:
    candidates: list[Candidate] = []
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
            declared = static_namespace(init)
            info = PluginInfo(name, FOLDER, str(entry), str(entry), namespace=declared[0] if declared else default_namespace(name))
            info.module = f"{FOLDER_PACKAGE}.{identifier(name)}"
            if entry.is_dir() and not init.is_file():
                error = PluginError("not_a_plugin", "a plugin folder needs an __init__.py (or make it a single .py file)", str(entry))
                candidates.append(Candidate(info, _raiser(PluginFailure(error)), entry))
                continue
            info.fingerprint = hash_files(entry)
            candidates.append(Candidate(info, _folder_loader(entry, init, info.module), entry))
    return candidates


def _raiser(exc: Exception) -> Callable[[], Any]:
    def load() -> Any:
        raise exc

    return load


def _folder_loader(entry: Path, init: Path, module_name: str) -> Callable[[], ModuleType]:
    def load() -> ModuleType:
        return import_file(module_name, init, entry if entry.is_dir() else None)

    return load


def import_file(module_name: str, path: Path, package_dir: Path | None) -> ModuleType:
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
        purge_modules(module_name)
        raise
    finally:
        sys.dont_write_bytecode = previous
    return module


def purge_modules(module_name: str) -> None:
    for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
        del sys.modules[name]


# -- small helpers --------------------------------------------------------------------------------------


def identifier(name: str) -> str:
    text = re.sub(r"\W", "_", name)
    return text if text and not text[0].isdigit() else "_" + text


def default_namespace(name: str) -> str:
    return identifier(name)


def static_namespace(path: Path) -> tuple[str, int] | None:
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


def hash_files(entry: Path) -> str:
    digest = hashlib.sha256()
    files = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*.py") if "__pycache__" not in p.parts)
    for path in files:
        try:
            digest.update(str(path.relative_to(entry) if entry.is_dir() else path.name).encode())
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()
