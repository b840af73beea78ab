"""The problems panel: every problem the checks found and every failure of the last run, one row each, with
node, field, what was expected and what was found. A click selects the node on the canvas; Ctrl+C (or the
context menu) copies the selected rows as text, for a bug report or a search."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMenu, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from nodegraph.errors import Problem

COLUMNS = ("Node", "Field", "Problem", "Expected", "Found")
CHECK, RUN = "check", "run"
SOURCE_COLORS = {CHECK: QColor(235, 160, 70), RUN: QColor(225, 60, 60)}


class ProblemsPanel(QWidget):
    node_chosen = Signal(str)  # a row was clicked: select this node
    count_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.checks: list[Problem] = []  # from validation and preflight, replaced after every check
        self.failures: list[Problem] = []  # from the last run, replaced when the next one starts
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(False)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        for column, width in enumerate((110, 90, 320, 160)):
            self.tree.setColumnWidth(column, width)
        self.tree.itemClicked.connect(self._clicked)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._menu)
        self.copy_action = QAction("Copy", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.copy_action.triggered.connect(lambda *_: self.copy())
        self.tree.addAction(self.copy_action)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)

    @property
    def problems(self) -> list[Problem]:
        return [*self.failures, *self.checks]

    def set_checks(self, problems: list[Problem]) -> None:
        self.checks = list(problems)
        self._refill()

    def set_failures(self, problems: list[Problem]) -> None:
        self.failures = list(problems)
        self._refill()

    def add_failures(self, problems: list[Problem]) -> None:
        """A run's problems; those the checks list already (a run refused for them) are not listed twice."""
        self.failures.extend(p for p in problems if p not in self.failures and p not in self.checks)
        self._refill()

    def clear(self) -> None:
        self.checks, self.failures = [], []
        self._refill()

    def _refill(self) -> None:
        self.tree.clear()
        for source, problems in ((RUN, self.failures), (CHECK, self.checks)):
            for problem in problems:
                item = QTreeWidgetItem([problem.node or "(workflow)", problem.field, problem.message, problem.expected, problem.found])
                item.setData(0, Qt.ItemDataRole.UserRole, problem.node)
                item.setForeground(2, SOURCE_COLORS[source])
                item.setToolTip(2, ("The last run failed here:\n" if source == RUN else "") + str(problem))
                for column in (3, 4):
                    item.setToolTip(column, item.text(column))
                self.tree.addTopLevelItem(item)
        self.count_changed.emit(self.tree.topLevelItemCount())

    def _clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        node = item.data(0, Qt.ItemDataRole.UserRole)
        if node:
            self.node_chosen.emit(node)

    def text(self, only_selected: bool = True) -> str:
        """The rows as lines of text (the selected ones, or all)."""
        items = self.tree.selectedItems() if only_selected else []
        if not items:
            items = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        problems = self.problems
        rows = [self.tree.indexOfTopLevelItem(item) for item in items]
        return "\n".join(str(problems[row]) for row in sorted(rows) if 0 <= row < len(problems))

    def copy(self, only_selected: bool = True) -> str:
        text = self.text(only_selected)
        QGuiApplication.clipboard().setText(text)
        return text

    def _menu(self, pos: object) -> None:
        menu = QMenu(self)
        menu.addAction("Copy", lambda: self.copy(True))
        menu.addAction("Copy All", lambda: self.copy(False))
        menu.exec(self.tree.viewport().mapToGlobal(pos))  # type: ignore[arg-type]
        menu.deleteLater()
