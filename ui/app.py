"""Entry point of ``nodegraph gui``: the application object, the window, and the screenshot mode."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

SCREENSHOT_SIZE = (1600, 960)


def _quiet_qt_messages(kind: QtMsgType, context: object, message: str) -> None:
    # the offscreen and Xvfb platforms warn about window features they lack; nothing a user can act on
    if "propagateSizeHints" in message or "This plugin does not support" in message:
        return
    sys.stderr.write(message + "\n")


def dark_palette() -> QPalette:
    """A dark Fusion palette, so that panels and the widgets inside nodes match the dark canvas."""
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, rgb in (
        (roles.Window, (45, 45, 48)), (roles.WindowText, (220, 220, 220)), (roles.Base, (30, 30, 32)),
        (roles.AlternateBase, (45, 45, 48)), (roles.ToolTipBase, (60, 60, 64)), (roles.ToolTipText, (230, 230, 230)),
        (roles.Text, (220, 220, 220)), (roles.Button, (55, 55, 58)), (roles.ButtonText, (220, 220, 220)),
        (roles.Highlight, (70, 120, 200)), (roles.HighlightedText, (255, 255, 255)), (roles.PlaceholderText, (130, 130, 130)),
        (roles.Link, (110, 160, 240)),
    ):
        palette.setColor(role, QColor(*rgb))
    palette.setColor(QPalette.ColorGroup.Disabled, roles.Text, QColor(120, 120, 120))
    palette.setColor(QPalette.ColorGroup.Disabled, roles.ButtonText, QColor(120, 120, 120))
    return palette


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("nodegraph")
        app.setOrganizationName("nodegraph")
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
    qInstallMessageHandler(_quiet_qt_messages)
    return app  # type: ignore[return-value]


def settle(app: QApplication, rounds: int = 5) -> None:
    """Let layouts, deferred calls and paints happen (the screenshot must show the finished window)."""
    for _ in range(rounds):
        app.processEvents()


def display_problem() -> str | None:
    """Why no window can be shown here, or None. Qt itself would abort the process with a core dump."""
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return None  # a platform chosen on purpose, or one that always has a display
    display, wayland = os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", "")
    if not display and not wayland:
        return "no display: DISPLAY and WAYLAND_DISPLAY are not set (no desktop session, e.g. over ssh)"
    if display.startswith(":") and not wayland:
        number = display[1:].split(".")[0]
        if number.isdigit() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return f"no X server answers at DISPLAY={display} (no /tmp/.X11-unix/X{number})"
    return None


def main(workflow: Path | str | None = None, screenshot: Path | str | None = None) -> int:
    """Open the editor (optionally on a workflow). With ``screenshot``: save an image of the window and exit,
    never waiting on a dialog (problems are printed; exit 2 when the workflow cannot be opened)."""
    if screenshot is not None and display_problem() is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    problem = display_problem()
    if problem is not None:
        print(f"nodegraph: cannot open the editor: {problem}.\n"
              "  Run workflows without a window: nodegraph run WORKFLOW.json\n"
              "  A picture of the editor without a display: nodegraph gui WORKFLOW.json --screenshot out.png",
              file=sys.stderr)
        return 2
    app = application()
    from ui.main_window import MainWindow  # after the QApplication: NodeGraphQt builds widgets at import

    window = MainWindow(remember_layout=screenshot is None, interactive=screenshot is None)
    if workflow is not None and not window.open_path(workflow, ask=False):
        if screenshot is not None:
            return 2  # open_path printed the problems
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
    app.aboutToQuit.connect(MainWindow.release_clipboard)
    return app.exec()
