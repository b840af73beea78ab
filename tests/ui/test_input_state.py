"""The canvas keeps answering after a shortcut opened a dialog (which took the key release of Ctrl)."""

from __future__ import annotations

import types

import pytest
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QFileDialog, QMenu, QMessageBox

from tests.ui.conftest import PRIMITIVES
from tests.ui.helpers import drag, title_point, when_modal, widget_center
from ui.main_window import MainWindow

CTRL = Qt.KeyboardModifier.ControlModifier


def press_button(kind):
    def handle(dialog):
        if isinstance(dialog, QMessageBox):
            dialog.button(kind).click()
        else:
            dialog.findChild(QDialogButtonBox).button(kind).click()

    return handle


def reject(dialog):
    dialog.reject() if isinstance(dialog, QDialog) else dialog.close()


def open_primitives(dialog):
    assert isinstance(dialog, QFileDialog)
    dialog.selectFile(str(PRIMITIVES))
    dialog.accept()


def hold_ctrl(viewer) -> None:
    """Ctrl goes down on the canvas (as the first half of Ctrl+N does). The event carries the modifiers held
    before the key, as a platform sends it; Qt's QKeyEvent.modifiers() then includes Ctrl."""
    QApplication.sendEvent(viewer, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Control, Qt.KeyboardModifier.NoModifier))


SHORTCUTS = {
    "new, then Discard": (Qt.Key.Key_N, CTRL, press_button(QMessageBox.StandardButton.Discard)),
    "new, then Cancel": (Qt.Key.Key_N, CTRL, press_button(QMessageBox.StandardButton.Cancel)),
    "open, then Cancel": (Qt.Key.Key_O, CTRL, reject),
    "open, then Open": (Qt.Key.Key_O, CTRL, open_primitives),
    "save as, then Cancel": (Qt.Key.Key_S, CTRL | Qt.KeyboardModifier.ShiftModifier, reject),
    "rename, then Cancel": (Qt.Key.Key_F2, Qt.KeyboardModifier.NoModifier, reject),
}


@pytest.mark.parametrize("case", list(SHORTCUTS))
def test_canvas_drags_nodes_and_opens_combos_after_a_shortcut_dialog(make_window, qtbot, case):
    window = make_window()
    stub = window.ask
    window.ask = types.MethodType(MainWindow.ask, window)  # the real, modal question
    try:
        check_canvas_after_dialog(window, qtbot, case)
    finally:
        window.ask = stub
        window.document.undo_stack.setClean()


def check_canvas_after_dialog(window, qtbot, case):
    window.open_path(PRIMITIVES, ask=False)
    if case.startswith("new"):
        window.document.set_param("scale", "operation", "power")  # unsaved: New asks first
    window.canvas.select(["scale"])
    key, modifiers, answer = SHORTCUTS[case]
    viewer = window.canvas.viewer()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)  # shortcuts need the active window
    viewer.setFocus()
    if modifiers & CTRL:
        hold_ctrl(viewer)  # the key release never comes: the dialog takes it
        assert viewer.CTRL_state
    seen: list[str] = []
    when_modal(lambda dialog: (seen.append(type(dialog).__name__), answer(dialog)))
    QTest.keyPress(viewer, key, modifiers)
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen[0] in ("QMessageBox", "QFileDialog", "QInputDialog")
    qtbot.waitUntil(lambda: QApplication.activeModalWidget() is None, timeout=5000)
    window.fit_all()
    qtbot.wait(20)

    node_id = next(iter(window.document.graph.nodes), None)
    if node_id is None:  # New discarded the workflow: add a node to drag
        node_id = window.document.add_node("core.Math", (0, 0))
        window.fit_all()
    before = dict(window.document.graph.nodes[node_id].layout)
    start = title_point(window, node_id)
    drag(window, start, start + QPoint(60, 40))
    after = window.document.graph.nodes[node_id].layout
    assert (after["x"], after["y"]) != (before["x"], before["y"]), "the node did not move: a stale Ctrl still held"

    combo_node = next(i for i, n in window.document.graph.nodes.items() if n.type == "core.Math")
    opened: list[int] = []
    when_modal(lambda popup: (opened.append(len(popup.actions())), popup.close()) if isinstance(popup, QMenu) else popup.close())
    QTest.mouseClick(viewer.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     widget_center(window, combo_node, "operation"))
    qtbot.waitUntil(lambda: bool(opened), timeout=5000)
    assert opened == [7]  # every operation listed


def test_modifier_state_is_taken_from_the_mouse_not_remembered_keys(window, qtbot):
    viewer = window.canvas.viewer()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    viewer.setFocus()
    hold_ctrl(viewer)
    assert viewer.CTRL_state
    viewer.sync_modifiers(Qt.KeyboardModifier.NoModifier)
    assert not (viewer.CTRL_state or viewer.SHIFT_state or viewer.ALT_state)
    QApplication.sendEvent(viewer, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Shift, Qt.KeyboardModifier.NoModifier))
    assert viewer.SHIFT_state
    viewer.clearFocus()
    viewer.setFocus()
    assert not viewer.SHIFT_state  # focus-in forgets keys released elsewhere


def test_space_and_drag_pans_the_canvas_without_moving_nodes(window, qtbot):
    from tests.ui.helpers import drag

    node_id = window.document.add_node("core.Int", (0, 0))
    window.fit_all()
    viewer = window.canvas.viewer()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    viewer.setFocus()
    before = viewer.mapToScene(viewer.viewport().rect().center())
    QApplication.sendEvent(viewer, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier))
    start = title_point(window, node_id)
    drag(window, start, start + QPoint(120, 80))
    QApplication.sendEvent(viewer, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier))
    after = viewer.mapToScene(viewer.viewport().rect().center())
    assert after.x() < before.x() - 50 and after.y() < before.y() - 30  # the view moved with the hand
    assert window.document.graph.nodes[node_id].layout == {"x": 0, "y": 0}
    assert not viewer.ALT_state


def test_double_click_on_empty_canvas_opens_the_search(window, qtbot):
    viewer = window.canvas.viewer()
    QTest.mouseDClick(viewer.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(40, 40))
    assert window.tab_search.isVisible()
