"""Driving the editor as a person would: real mouse events on the canvas, real dialogs answered by a timer."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

NO = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def to_viewport(window, scene_point: QPointF) -> QPoint:
    return window.canvas.viewer().mapFromScene(scene_point)


def port_center(window, node_id: str, name: str, kind: str) -> QPoint:
    """The viewport position of a port, for real mouse drags."""
    view = window.canvas.views[node_id]
    port = (view.outputs() if kind == "out" else view.inputs())[name].view
    return to_viewport(window, port.sceneBoundingRect().center())


def title_point(window, node_id: str) -> QPoint:
    item = window.canvas.views[node_id].view
    rect = item.sceneBoundingRect()
    return to_viewport(window, QPointF(rect.center().x(), rect.top() + 10))


def widget_center(window, node_id: str, param: str) -> QPoint:
    widget = window.canvas.views[node_id].param_widgets()[param]
    inner = widget.get_custom_widget()
    local = inner.mapTo(inner.window(), inner.rect().center())
    return to_viewport(window, widget.mapToScene(QPointF(local)))


def drag(window, start: QPoint, end: QPoint, modifiers=NO, steps: int = 6) -> None:
    viewport = window.canvas.viewer().viewport()
    QTest.mousePress(viewport, LEFT, modifiers, start)
    for i in range(1, steps + 1):
        QTest.mouseMove(viewport, start + (end - start) * (i / steps))
    QTest.mouseRelease(viewport, LEFT, modifiers, end)


def click(window, point: QPoint, modifiers=NO) -> None:
    QTest.mouseClick(window.canvas.viewer().viewport(), LEFT, modifiers, point)


def when_modal(handle: Callable[[QWidget], None], delay: int = 50, tries: int = 100) -> None:
    """Run ``handle`` on the next modal dialog or pop-up as soon as it shows (it would block the test)."""

    def poll(left: int = tries) -> None:
        widget = QApplication.activeModalWidget() or QApplication.activePopupWidget()
        if widget is not None and widget.isVisible():
            handle(widget)
        elif left > 0:
            QTimer.singleShot(delay, lambda: poll(left - 1))

    QTimer.singleShot(delay, poll)
