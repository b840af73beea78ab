"""The built-in node library reaches the engine as a plugin does: through the entry point group
``nodegraph.nodes``, first, from installed metadata or (a source checkout) from pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nodegraph.installed import default_registry
from nodegraph.plugins import (
    ENTRY_POINT_GROUP,
    LIBRARY,
    LOADED,
    LibraryError,
    library_entry_points,
    library_infos,
    load_library,
    plugin_infos,
)
from nodegraph.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def test_the_project_declares_the_library_in_the_plugin_entry_point_group():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == {"core": "nodes"}
    assert [(ep.name, ep.value) for ep in library_entry_points()] == [("core", "nodes")]


def test_the_process_registry_lists_the_library_first_with_every_builtin_node():
    registry = default_registry()
    [library] = library_infos(registry)
    assert (library.name, library.kind, library.status, library.namespace) == ("core", LIBRARY, LOADED, "core")
    builtin = sorted(d.id for d in registry if d.source == "builtin")
    assert sorted(library.node_types) == builtin and "core.KSampler" in builtin
    assert all(info.kind != LIBRARY for info in plugin_infos(registry))  # not listed twice


def test_a_source_checkout_that_is_not_installed_reads_the_entry_points_from_pyproject(monkeypatch):
    import importlib.metadata

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    assert [(ep.name, ep.value) for ep in library_entry_points()] == [("core", "nodes")]
    registry = Registry()
    load_library(registry)
    assert {d.id for d in registry} == {d.id for d in default_registry() if d.source == "builtin"}


def test_a_library_that_cannot_load_is_an_error_not_a_skipped_plugin(monkeypatch):
    from importlib.metadata import EntryPoint

    import nodegraph.plugins.loading as loading

    monkeypatch.setattr(loading, "library_entry_points", lambda: [EntryPoint("core", "no_such_module_xyz", ENTRY_POINT_GROUP)])
    with pytest.raises(LibraryError, match="no_such_module_xyz"):
        load_library(Registry())
