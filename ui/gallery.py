"""The gallery: every image produced in this session, newest first, with the workflow and the run that made it.

A click shows the image in the image panel; a double click (or Reopen Workflow) opens the workflow that made
it, exactly as it ran (a snapshot: later edits do not change it). The tooltip says which image of its batch it
is, its seed, when it was made, how long the run took and where it was saved.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from ui.run_images import ImageEntry

THUMB = 96
HISTORY_LIMIT = 500  # images kept in a session (oldest dropped first)


class Gallery(QWidget):
    image_chosen = Signal(object)  # ImageEntry: show it
    reopen_requested = Signal(object)  # ImageEntry: open the workflow that made it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 12, THUMB + 28))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemActivated.connect(lambda item: self.reopen_requested.emit(self._entry(item)))
        self.list.itemDoubleClicked.connect(lambda item: self.reopen_requested.emit(self._entry(item)))
        self.count_label = QLabel("no images yet")
        self.reopen_button = QPushButton("Reopen Workflow")
        self.reopen_button.setToolTip("Open the workflow that made the selected image (double click)")
        self.reopen_button.clicked.connect(lambda *_: self.reopen_selected())
        self.reopen_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.count_label, 1)
        row.addWidget(self.reopen_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)

    @property
    def entries(self) -> list[ImageEntry]:
        """Oldest first."""
        return [self._entry(self.list.item(i)) for i in reversed(range(self.list.count()))]  # type: ignore[misc]

    def _entry(self, item: QListWidgetItem | None) -> ImageEntry | None:
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def add(self, entries: list[ImageEntry]) -> None:
        """Add a run's new images at the top (newest first); images a run took from the cache are already here."""
        for entry in (e for e in entries if e.fresh):
            icon = QIcon(QPixmap.fromImage(entry.image.scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)))
            item = QListWidgetItem(icon, f"{entry.label}\nrun {entry.run_id}")
            item.setData(Qt.ItemDataRole.UserRole, entry)  # dropped with the item (the history is bounded)
            item.setToolTip(entry.describe())
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.list.insertItem(0, item)
        while self.list.count() > HISTORY_LIMIT:
            self.list.takeItem(self.list.count() - 1)
        if self.list.count():
            self.count_label.setText(f"{self.list.count()} image(s) this session")

    def selected(self) -> ImageEntry | None:
        return self._entry(self.list.currentItem())

    def reopen_selected(self) -> None:
        entry = self.selected()
        if entry is not None:
            self.reopen_requested.emit(entry)

    def _current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        entry = self._entry(current)
        self.reopen_button.setEnabled(entry is not None)
        if entry is not None:
            self.image_chosen.emit(entry)
