"""What is known about plugins: the record of each one, why one did not load, and what a reload changed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodegraph.node import NodeDef

ENTRY_POINT_GROUP = "nodegraph.nodes"
DISTRIBUTION = "nodegraph"  # its entry points in the group are the built-in library, loaded first
PATH_ENV = "NODEGRAPH_PLUGIN_PATH"
# Folder plugins are imported as submodules of this name, so a folder called "json" or "torch" cannot shadow
# a real package, and a package plugin's relative imports work.
FOLDER_PACKAGE = "nodegraph_folder_plugins"
SOURCE_PREFIX = "plugin:"

LOADED, FAILED, CONFLICT = "loaded", "failed", "conflict"
ENTRY_POINT, FOLDER, LIBRARY = "entry_point", "folder", "library"
LIBRARY_SOURCE = "builtin"  # the ``source`` the built-in library's node definitions carry

NAMESPACE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENGINE_DIR = Path(__file__).resolve().parent.parent  # nodegraph/


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
    kind: str  # ENTRY_POINT or FOLDER (LIBRARY: the built-in library, listed first)
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
        return LIBRARY_SOURCE if self.kind == LIBRARY else SOURCE_PREFIX + self.name

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


class PluginFailure(Exception):
    def __init__(self, error: PluginError, status: str = FAILED) -> None:
        super().__init__(error.message)
        self.error = error
        self.status = status


@dataclass
class Candidate:
    """A plugin found but not yet imported."""

    info: PluginInfo
    load: Callable[[], Any]  # returns the plugin object: a module or a callable
    files: Path | None = None  # a folder plugin's package dir or module file (for tracebacks and the fingerprint)

