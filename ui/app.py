"""Entry point of ``nodegraph gui``: the application object, the window, and the screenshot mode."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtWidgets import QApplication

SCREENSHOT_SIZE = (1600, 960)


def _quiet_qt_messages(kind: QtMsgType, context: object, message: str) -> None:
    # the offscreen and Xvfb platforms warn about window features they lack; nothing a user can act on
    if "propagateSizeHints" in message or "This plugin does not support" in message:
        return
    sys.stderr.write(message + "\n")


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("nodegraph")
        app.setOrganizationName("nodegraph")
        app.setStyle("Fusion")
    qInstallMessageHandler(_quiet_qt_messages)
    return app  # type: ignore[return-value]


def settle(app: QApplication, rounds: int = 5) -> None:
    """Let layouts, deferred calls and paints happen (the screenshot must show the finished window)."""
    for _ in range(rounds):
        app.processEvents()


def main(workflow: Path | str | None = None, screenshot: Path | str | None = None) -> int:
    """Open the editor (optionally on a workflow). With ``screenshot``: save an image of the window, exit."""
    if screenshot is not None and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = application()
    from ui.main_window import MainWindow  # after the QApplication: NodeGraphQt builds widgets at import

    window = MainWindow()
    if workflow is not None and not window.open_path(workflow, ask=False):
        if screenshot is not None:
            print(f"nodegraph: cannot open {workflow}", file=sys.stderr)
            return 2
    if screenshot is not None:
        window.resize(*SCREENSHOT_SIZE)
        window.show()
        settle(app)
        window.fit_all()
        settle(app)
        path = Path(screenshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(path)):
            print(f"nodegraph: could not write {path}", file=sys.stderr)
            return 1
        window.document.undo_stack.setClean()
        window.close()
        print(f"screenshot saved to {path}")
        return 0
    window.show()
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, window.offer_recovery)
    return app.exec()
