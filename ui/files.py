"""Recent files (QSettings), autosave to a recovery file, and the recovery offer after a crash."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer

from nodegraph.workflow import atomic_write_bytes
from ui.document import Document

MAX_RECENT = 10
AUTOSAVE_MS = 1_000  # after the last edit: the work of the last second at most is lost in a crash


def data_dir() -> Path:
    """The user's data folder for the editor ($NODEGRAPH_DATA, else $XDG_DATA_HOME/nodegraph)."""
    env = os.environ.get("NODEGRAPH_DATA")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "nodegraph"


def settings() -> QSettings:
    return QSettings("nodegraph", "editor")


class RecentFiles:
    KEY = "recent_files"

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or settings()

    def paths(self) -> list[str]:
        value = self.store.value(self.KEY, [])
        if isinstance(value, str):  # QSettings returns a bare string for a one-item list on some back ends
            value = [value]
        return [p for p in (value or []) if isinstance(p, str)]

    def add(self, path: str | Path) -> None:
        text = str(Path(path).resolve())
        items = [text] + [p for p in self.paths() if p != text]
        self.store.setValue(self.KEY, items[:MAX_RECENT])

    def remove(self, path: str) -> None:
        self.store.setValue(self.KEY, [p for p in self.paths() if p != path])


class Autosave(QObject):
    """Writes the document to ``recovery.json`` about a second after each edit (undo and redo included) while
    it has unsaved changes; removes it once they are saved or discarded. A recovery file found at start-up
    means the last session ended without saving."""

    def __init__(self, document: Document, folder: Path | None = None, interval_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(document)
        self.document = document
        self.folder = folder or data_dir()
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.save_now)
        document.undo_stack.indexChanged.connect(lambda *_: self.timer.start())  # restarts: a burst saves once
        document.undo_stack.cleanChanged.connect(self._on_clean_changed)

    @property
    def path(self) -> Path:
        return self.folder / "recovery.json"

    def save_now(self) -> bool:
        if not self.document.dirty:
            return False
        record = {
            "pid": os.getpid(),
            "saved_at": time.time(),
            "path": str(self.document.path) if self.document.path else None,
            "workflow": self.document.document(),
        }
        try:
            atomic_write_bytes(self.path, json.dumps(record, ensure_ascii=False).encode("utf-8"))
        except OSError:
            return False  # a full disk must not interrupt editing; the next tick tries again
        return True

    def _on_clean_changed(self, clean: bool) -> None:
        if clean:
            self.discard()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def pending(self) -> dict[str, Any] | None:
        """The recovery record left by a session that did not end cleanly, if any."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(record, dict) or not isinstance(record.get("workflow"), dict):
            return None
        pid = record.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
            return None  # another editor is still running and owns this file
        return record


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, but belongs to someone else
    return True
