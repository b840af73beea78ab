"""The queue panel: pending, running, finished and failed runs; cancel or reorder pending ones, reopen any."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from ui.run_queue import CANCELLED, DONE, FAILED, INVALID, PENDING, RUNNING, QueueEntry, RunQueue

STATUS_COLORS = {
    PENDING: QColor(160, 160, 160), RUNNING: QColor(240, 180, 40), DONE: QColor(80, 190, 100),
    FAILED: QColor(225, 60, 60), INVALID: QColor(225, 60, 60), CANCELLED: QColor(130, 130, 130),
}
COLUMNS = ("#", "Workflow", "Status", "Time")


class QueuePanel(QWidget):
    """A list of the queue's entries with buttons acting on the selected one."""

    reopen_requested = Signal(int)  # entry id

    def __init__(self, queue: RunQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setColumnWidth(0, 34)
        self.tree.setColumnWidth(1, 150)
        self.tree.setColumnWidth(2, 80)
        self.tree.itemDoubleClicked.connect(lambda item, _col: self.reopen_requested.emit(item.data(0, Qt.ItemDataRole.UserRole)))
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        buttons = QHBoxLayout()
        self.cancel_button = self._button("Cancel", self.cancel_selected, "Cancel the selected pending run, or stop the running one")
        self.up_button = self._button("Up", lambda: self.move_selected(-1), "Run the selected pending run sooner")
        self.down_button = self._button("Down", lambda: self.move_selected(1), "Run the selected pending run later")
        self.reopen_button = self._button("Reopen", self.reopen_selected, "Open the workflow this run ran (double click)")
        self.clear_button = self._button("Clear", queue.clear_finished, "Remove the finished runs from the list")
        for button in (self.cancel_button, self.up_button, self.down_button, self.reopen_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        queue.changed.connect(self.refresh)
        self._clock = QTimer(self)  # the running entry's time goes on while nothing else changes
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._clock.start()
        self.refresh()

    def _button(self, text: str, slot: object, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(lambda *_: slot())  # type: ignore[operator]
        return button

    def selected_id(self) -> int | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def refresh(self) -> None:
        chosen = self.selected_id()
        self.tree.clear()
        for entry in self.queue.entries:
            item = QTreeWidgetItem([str(entry.id), entry.title, entry.status, self._time(entry)])
            item.setData(0, Qt.ItemDataRole.UserRole, entry.id)
            item.setForeground(2, STATUS_COLORS.get(entry.status, QColor(200, 200, 200)))
            item.setToolTip(1, entry.summary or entry.title)
            item.setToolTip(2, entry.summary or entry.status)
            self.tree.addTopLevelItem(item)
            if entry.id == chosen:
                self.tree.setCurrentItem(item)
        self._update_buttons()

    def _tick(self) -> None:
        entry = self.queue.current
        if entry is None or not self.isVisible():
            return
        for index in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(index)
            if item.data(0, Qt.ItemDataRole.UserRole) == entry.id:
                item.setText(3, self._time(entry))

    @staticmethod
    def _time(entry: QueueEntry) -> str:
        if entry.status == PENDING:
            return time.strftime("queued %H:%M:%S", time.localtime(entry.queued))
        seconds = entry.seconds
        text = f"{seconds:.1f} s" if seconds is not None else ""
        return text + (f", {entry.images} image(s)" if entry.images else "")

    def _update_buttons(self) -> None:
        entry = self.queue.entry(self.selected_id()) if self.selected_id() is not None else None
        status = entry.status if entry else ""
        self.cancel_button.setEnabled(status in (PENDING, RUNNING))
        self.up_button.setEnabled(status == PENDING)
        self.down_button.setEnabled(status == PENDING)
        self.reopen_button.setEnabled(entry is not None)

    def cancel_selected(self) -> None:
        if self.selected_id() is not None:
            self.queue.cancel(self.selected_id())

    def move_selected(self, delta: int) -> None:
        if self.selected_id() is not None:
            self.queue.move(self.selected_id(), delta)

    def reopen_selected(self) -> None:
        if self.selected_id() is not None:
            self.reopen_requested.emit(self.selected_id())
