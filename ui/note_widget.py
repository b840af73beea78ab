"""The field of a Note node: Markdown shown formatted, edited as plain text when clicked into."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker, QSize
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import QTextEdit, QWidget

from ui.widgets import ParamWidget


class MarkdownEdit(QTextEdit):
    """Formatted while shown, raw Markdown while edited; ``committed`` runs with the text on leaving."""

    def __init__(self, committed: Any) -> None:
        super().__init__()
        self.raw = ""
        self._committed = committed
        self.setAcceptRichText(False)
        self.setStyleSheet("QTextEdit { background: #3b3822; color: #f0ecd0; border: none; }")
        self.setPlaceholderText("Click to write a note (Markdown: **bold**, *italic*, - lists, `code`)")

    def sizeHint(self) -> QSize:
        return QSize(240, 110)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, 60)

    def show_text(self, raw: str) -> None:
        self.raw = raw
        with QSignalBlocker(self):
            if self.hasFocus():
                self.setPlainText(raw)
            else:
                self.setMarkdown(raw)

    def focusInEvent(self, event: QFocusEvent) -> None:
        with QSignalBlocker(self):
            self.setPlainText(self.raw)
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        text = self.toPlainText()
        super().focusOutEvent(event)
        changed = text != self.raw
        self.show_text(text)
        if changed:
            self._committed(text)


class NoteWidget(ParamWidget):
    """The ``text`` parameter of ``core.Note``."""

    stretch = True

    def build(self) -> QWidget:
        self.editor = MarkdownEdit(lambda _text: self._emit())
        return self.editor

    def get_value(self) -> str:
        return self.editor.raw

    def set_value(self, value: Any) -> None:
        if (value or "") != self.editor.raw:
            self.editor.show_text(value or "")
