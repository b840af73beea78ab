"""Plugin discovery, isolation and reload: third-party node types enter through the same door as the built-ins.

Where node types come from, in this order:

0. the built-in library: the entry points nodegraph itself declares in the group ``nodegraph.nodes``
   (``core = "nodes"``), through the same protocol as a plugin (:func:`load_library`);
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

The package: :mod:`~nodegraph.plugins.records` (what is known about a plugin), :mod:`~nodegraph.plugins.discovery`
(where plugins are found), :mod:`~nodegraph.plugins.loading` (importing and registering),
:mod:`~nodegraph.plugins.reloading` (reading the record, unload, reload), :mod:`~nodegraph.plugins.testing`
(a registry for plugin authors' tests). The editor reads :func:`plugin_infos` and calls :func:`reload_plugins` to
pick up edited plugin folders; :mod:`nodegraph.installed` builds the process-wide registry.
"""

from nodegraph.plugins.discovery import library_entry_points, plugin_folders, user_plugin_dir
from nodegraph.plugins.loading import LibraryError, load_library, load_plugins
from nodegraph.plugins.records import (
    CONFLICT,
    ENTRY_POINT,
    ENTRY_POINT_GROUP,
    FAILED,
    FOLDER,
    FOLDER_PACKAGE,
    LIBRARY,
    LOADED,
    PATH_ENV,
    SOURCE_PREFIX,
    PluginChanges,
    PluginError,
    PluginInfo,
)
from nodegraph.plugins.reloading import explain_missing, library_infos, plugin_infos, reload_plugins, unload_plugins
from nodegraph.plugins.testing import PluginLoadError, plugin_registry

__all__ = [
    "CONFLICT",
    "ENTRY_POINT",
    "ENTRY_POINT_GROUP",
    "FAILED",
    "FOLDER",
    "FOLDER_PACKAGE",
    "LIBRARY",
    "LOADED",
    "PATH_ENV",
    "SOURCE_PREFIX",
    "LibraryError",
    "PluginChanges",
    "PluginError",
    "PluginInfo",
    "PluginLoadError",
    "explain_missing",
    "library_entry_points",
    "library_infos",
    "load_library",
    "load_plugins",
    "plugin_folders",
    "plugin_infos",
    "plugin_registry",
    "reload_plugins",
    "unload_plugins",
    "user_plugin_dir",
]
