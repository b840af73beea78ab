"""Plugins > Show Plugins: every plugin the editor's registry knows, with its status, node types and errors."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from nodegraph.plugins import LOADED, PluginInfo, plugin_folders, plugin_infos
from nodegraph.registry import Registry

COLUMNS = ("Plugin", "Version", "Status", "Source")
ERROR_COLOR = QColor(235, 100, 90)


class PluginsDialog(QDialog):
    """A tree of plugins (children: their node types, or the error); Reload re-imports the plugin folders."""

    def __init__(self, registry: Registry, reload: Callable[[], object], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plugins")
        self.registry = registry
        self._reload = reload
        self.folders = QLabel()
        self.folders.setWordWrap(True)
        self.folders.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setColumnWidth(0, 220)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.reload_button = buttons.addButton("Reload Plugin Folders", QDialogButtonBox.ButtonRole.ActionRole)
        self.reload_button.clicked.connect(self.reload)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folders)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)
        self.resize(760, 420)
        self.refresh()

    def reload(self) -> None:
        self._reload()
        self.refresh()

    def refresh(self) -> None:
        self.folders.setText("Plugin folders: " + ", ".join(str(p) for p in plugin_folders()))
        self.tree.clear()
        infos = plugin_infos(self.registry)
        if not infos:
            QTreeWidgetItem(self.tree, ["(no plugins found)", "", "", ""])
        for info in infos:
            self._add(info)
        self.tree.expandAll()

    def _add(self, info: PluginInfo) -> None:
        item = QTreeWidgetItem(self.tree, [info.name, info.version or "-", info.status, info.source])
        item.setToolTip(3, info.location)
        if info.status != LOADED:
            item.setForeground(2, QBrush(ERROR_COLOR))
        for node_type in info.node_types:
            definition = self.registry.get(node_type)
            QTreeWidgetItem(item, [node_type, "", "", definition.name if definition else ""])
        if info.error is not None:
            child = QTreeWidgetItem(item, [f"{info.error.kind} error", "", "", info.error.line()])
            for column in range(len(COLUMNS)):
                child.setForeground(column, QBrush(ERROR_COLOR))
            child.setToolTip(3, info.error.details or info.error.line())

    def rows(self) -> list[list[str]]:
        """The top-level rows as text (what the dialog shows, for tests and bug reports)."""
        found = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            found.append([item.text(c) for c in range(len(COLUMNS))])
        return found
