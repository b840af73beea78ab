"""The node palette (types grouped by category, with search and drag onto the canvas) and the Tab search."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import QDrag, QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nodegraph.node import NodeDef
from nodegraph.registry import Registry
from ui.search import rank
from ui.viewer import NODE_MIME

TYPE_ROLE = Qt.ItemDataRole.UserRole


def matches(definition: NodeDef, text: str) -> bool:
    """Every word of the query appears in the node's name, id, category or description."""
    haystack = f"{definition.name} {definition.id} {definition.category} {definition.description}".lower()
    return all(word in haystack for word in text.lower().split())


def tooltip(definition: NodeDef) -> str:
    lines = [f"<b>{definition.name}</b> <i>({definition.id} v{definition.version})</i>"]
    if definition.description:
        lines.append(definition.description)
    if definition.source != "builtin":
        lines.append(f"from {definition.source}")
    return "<br/>".join(lines)


class NodeTree(QTreeWidget):
    """Categories as folders; dragging an entry carries its node type."""

    activated_type = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.itemActivated.connect(self._activate)

    def _activate(self, item: QTreeWidgetItem) -> None:
        node_type = item.data(0, TYPE_ROLE)
        if node_type:
            self.activated_type.emit(node_type)

    def startDrag(self, actions: Qt.DropAction) -> None:
        item = self.currentItem()
        node_type = item.data(0, TYPE_ROLE) if item else None
        if not node_type:
            return
        mime = QMimeData()
        mime.setData(NODE_MIME, node_type.encode())
        mime.setText(node_type)
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)


class Palette(QWidget):
    """Search box over a category tree of every registered node type."""

    add_requested = Signal(str)  # double-click / Enter on a type

    def __init__(self, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.registry = registry
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search nodes…")
        self.search.setClearButtonEnabled(True)
        self.tree = NodeTree()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first)
        self.tree.activated_type.connect(self.add_requested)
        self.populate()

    def populate(self) -> None:
        self.tree.clear()
        folders: dict[str, QTreeWidgetItem] = {}
        for definition in self.registry:  # sorted by category, name
            parent: QTreeWidget | QTreeWidgetItem = self.tree
            path = ""
            for part in definition.category.split("/"):
                path = f"{path}/{part}" if path else part
                if path not in folders:
                    folder = QTreeWidgetItem(parent, [part])
                    folder.setFlags(folder.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
                    folders[path] = folder
                parent = folders[path]
            item = QTreeWidgetItem(parent, [definition.name])
            item.setData(0, TYPE_ROLE, definition.id)
            item.setToolTip(0, tooltip(definition))
        self.tree.expandAll()

    def type_items(self) -> list[QTreeWidgetItem]:
        found = []
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            if item.data(0, TYPE_ROLE):
                found.append(item)
            stack.extend(item.child(i) for i in range(item.childCount()))
        return found

    def filter(self, text: str) -> None:
        def visit(item: QTreeWidgetItem) -> bool:
            node_type = item.data(0, TYPE_ROLE)
            if node_type:
                definition = self.registry.get(node_type)
                visible = definition is not None and matches(definition, text)
            else:
                visible = any([visit(item.child(i)) for i in range(item.childCount())])
            item.setHidden(not visible)
            return visible

        for i in range(self.tree.topLevelItemCount()):
            visit(self.tree.topLevelItem(i))

    def visible_types(self) -> list[str]:
        return [item.data(0, TYPE_ROLE) for item in self.type_items() if not item.isHidden() and not _hidden_parent(item)]

    def _add_first(self) -> None:
        visible = set(self.visible_types())
        ranked = [d.id for d in rank(self.registry, self.search.text()) if d.id in visible]
        if ranked:
            self.add_requested.emit(ranked[0])


def _hidden_parent(item: QTreeWidgetItem) -> bool:
    parent = item.parent()
    while parent is not None:
        if parent.isHidden():
            return True
        parent = parent.parent()
    return False


class TabSearch(QFrame):
    """A small popup over the canvas: type to search node types (ranked: :mod:`ui.search`); Enter adds the
    best match where the search was opened. Opened for a dropped link, it lists only the types that fit."""

    chosen = Signal(str)

    def __init__(self, registry: Registry, parent: QWidget) -> None:
        super().__init__(parent)
        self.registry = registry
        self.allowed: set[str] | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("TabSearch { background: #2b2b2b; border: 1px solid #5a8ad0; border-radius: 4px; }")
        self.hint = QLabel()
        self.hint.setStyleSheet("color: #9ab; padding: 0 2px;")
        self.line = QLineEdit()
        self.line.setPlaceholderText("Add node…")
        self.list = QListWidget()
        self.list.setMinimumHeight(240)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.hint)
        layout.addWidget(self.line)
        layout.addWidget(self.list)
        self.resize(320, 310)
        self.line.textChanged.connect(self.refresh)
        self.line.returnPressed.connect(self.submit)
        self.list.itemActivated.connect(lambda _item: self.submit())
        self.line.installEventFilter(self)
        self.hide()

    def popup(self, at: QPoint, allowed: set[str] | None = None, hint: str = "") -> None:
        """Show the search with its top-left corner near ``at`` (viewport coordinates), kept inside the view."""
        self.allowed = allowed
        self.hint.setText(f"Nodes that fit: {hint}" if hint else "")
        self.hint.setVisible(bool(hint))
        self.line.clear()
        self.refresh("")
        parent = self.parentWidget()
        x = max(0, min(at.x(), parent.width() - self.width()))
        y = max(0, min(at.y(), parent.height() - self.height()))
        self.move(x, y)
        self.show()
        self.raise_()
        self.line.setFocus()

    def candidates(self, text: str) -> list[NodeDef]:
        pool = [d for d in self.registry if self.allowed is None or d.id in self.allowed]
        return rank(pool, text)

    def refresh(self, text: str) -> None:
        self.list.clear()
        for definition in self.candidates(text):
            item = QListWidgetItem(f"{definition.name}    ({definition.category})")
            item.setData(TYPE_ROLE, definition.id)
            item.setToolTip(tooltip(definition))
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)

    def submit(self) -> None:
        item = self.list.currentItem()
        self.hide()
        if item is not None:
            self.chosen.emit(item.data(TYPE_ROLE))

    def eventFilter(self, watched: object, event: object) -> bool:
        if watched is self.line and isinstance(event, QKeyEvent) and event.type() == QKeyEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                row = self.list.currentRow() + (1 if key == Qt.Key.Key_Down else -1)
                self.list.setCurrentRow(max(0, min(self.list.count() - 1, row)))
                return True
            if key == Qt.Key.Key_Escape:
                self.hide()
                self.parentWidget().setFocus()
                return True
        return super().eventFilter(watched, event)
