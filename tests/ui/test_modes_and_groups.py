"""Bypass and mute (Ctrl+B, Ctrl+M), groups, reroutes and notes in the editor, saved in the workflow file."""

from __future__ import annotations

import json

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QFocusEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.ui.helpers import drag, to_viewport
from tests.ui.test_running import wait_for_run


def _keys(window, qtbot, key):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.canvas.viewer().setFocus()
    QTest.keyClick(window.canvas.viewer(), key, Qt.KeyboardModifier.ControlModifier)


def _chain(window):
    doc = window.document
    a = doc.add_node("core.Int", (0, 0), {"value": 3})
    double = doc.add_node("core.IntMath", (300, 0), {"operation": "multiply", "b_value": 2})
    show = doc.add_node("core.Show", (650, 0))
    doc.connect(a, "value", double, "a")
    doc.connect(double, "result", show, "value")
    return a, double, show


def test_ctrl_b_bypasses_the_selection_and_a_run_passes_the_input_through(window, qtbot):
    _a, double, show = _chain(window)
    window.canvas.select([double])
    _keys(window, qtbot, Qt.Key.Key_B)
    assert window.document.graph.nodes[double].mode == "bypass"
    assert window.canvas.views[double].view.mode == "bypass"
    assert window.run()
    wait_for_run(qtbot, window)
    assert window.canvas.views[show].result_text.get_value() == "3"
    assert window.canvas.views[double].view.run_state == ""  # it never ran
    _keys(window, qtbot, Qt.Key.Key_B)  # again: back to normal
    assert window.document.graph.nodes[double].mode is None


def test_ctrl_m_mutes_and_what_needs_the_muted_node_does_not_run(window, qtbot):
    a, double, show = _chain(window)
    other = window.document.add_node("core.Show", (650, 300))
    window.document.connect(a, "value", other, "value")
    window.canvas.select([double])
    _keys(window, qtbot, Qt.Key.Key_M)
    assert window.document.graph.nodes[double].mode == "mute"
    assert window.canvas.views[double].view.opacity() < 1
    assert window.run()
    wait_for_run(qtbot, window)
    assert window.canvas.views[other].result_text.get_value() == "3"
    assert window.canvas.views[show].result_text.get_value() == ""
    assert window.validate_now() == []


def test_modes_are_saved_in_the_workflow_file(window, tmp_path):
    _a, double, show = _chain(window)
    window.document.set_mode([double], "bypass")
    window.document.set_mode([show], "mute")
    path = tmp_path / "modes.json"
    window.save_as(path)
    nodes = json.loads(path.read_text())["nodes"]
    assert nodes[double]["mode"] == "bypass" and nodes[show]["mode"] == "mute"
    window.new()
    window.open_path(path, ask=False)
    assert window.canvas.views[double].view.mode == "bypass"


def test_a_group_moves_with_its_nodes_in_one_undo_step_and_is_saved(window, qtbot, tmp_path):
    doc = window.document
    a, double, show = _chain(window)
    window.canvas.select([a, double])
    index = window.group_selected()
    group = doc.graph.groups[index]
    assert group["title"] == "Group" and group["color"].startswith("#")
    window.fit_all()
    qtbot.wait(10)
    item = window.canvas.groups.items[index]
    assert sorted(window.canvas.groups.members(item)) == sorted([a, double])
    before = {n: (doc.graph.nodes[n].layout["x"], doc.graph.nodes[n].layout["y"]) for n in (a, double, show)}
    grab = to_viewport(window, item.mapToScene(QPointF(60, 12)))
    window.canvas.clear_selection()
    drag(window, grab, grab + QPoint(40, 60))
    moved = {n: (doc.graph.nodes[n].layout["x"], doc.graph.nodes[n].layout["y"]) for n in (a, double, show)}
    dx, dy = moved[a][0] - before[a][0], moved[a][1] - before[a][1]
    assert dx > 0 and dy > 0
    assert moved[double] == (before[double][0] + dx, before[double][1] + dy)
    assert moved[show] == before[show]  # outside the group
    assert doc.graph.groups[index]["rect"][:2] == [group["rect"][0] + dx, group["rect"][1] + dy]
    doc.undo_stack.undo()
    assert {n: (doc.graph.nodes[n].layout["x"], doc.graph.nodes[n].layout["y"]) for n in (a, double, show)} == before
    assert doc.graph.groups[index]["rect"] == group["rect"]
    doc.undo_stack.redo()
    path = tmp_path / "grouped.json"
    window.save_as(path)
    saved = json.loads(path.read_text())["groups"]
    assert saved == doc.graph.groups
    window.new()
    window.open_path(path, ask=False)
    assert [g.title for g in window.canvas.groups.items] == ["Group"]


def test_a_group_can_be_renamed_recoloured_and_removed(window):
    doc = window.document
    index = doc.add_group((0, 0, 300, 200), "Prompts")
    layer = window.canvas.groups
    layer.ask_text = lambda title, label, text: ("Negative prompts", True)
    layer.rename(index)
    assert doc.graph.groups[index]["title"] == "Negative prompts"
    menu = layer.menu(index)
    colours = next(a.menu() for a in menu.actions() if a.text() == "Colour")
    next(a for a in colours.actions() if a.text() == "Green").trigger()
    assert doc.graph.groups[index]["color"] == "#4a7f4a"
    next(a for a in menu.actions() if a.text().startswith("Remove Group")).trigger()
    assert doc.graph.groups == [] and layer.items == []


def test_a_reroute_passes_a_link_and_takes_the_colour_of_what_it_carries(window, qtbot):
    from ui.socket_colors import socket_color

    doc = window.document
    a, _double, show = _chain(window)
    reroute = doc.add_node("core.Reroute", (300, 200))
    doc.connect(a, "value", reroute, "value")
    doc.connect(reroute, "value", show, "value")
    view = window.canvas.views[reroute]
    assert tuple(view.inputs()["value"].view.color[:3]) == socket_color("INT")
    assert view.view.boundingRect().width() < 60  # a small pill, not a node
    assert window.run()
    wait_for_run(qtbot, window)
    assert window.canvas.views[show].result_text.get_value() == "3"


def test_a_note_shows_markdown_and_never_runs(window, qtbot):
    doc = window.document
    note = doc.add_node("core.Note", (0, 300), {"text": "# Read me\n**bold** words"})
    view = window.canvas.views[note]
    assert view.inputs() == {} and view.outputs() == {}
    editor = view.param_widgets()["text"].editor
    assert "Read me" in editor.toPlainText() and "#" not in editor.toPlainText()  # rendered, not raw
    assert editor.toMarkdown().strip().startswith("# Read me")
    QApplication.sendEvent(editor, QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.MouseFocusReason))
    assert editor.toPlainText() == "# Read me\n**bold** words"  # editing shows the Markdown itself
    editor.setPlainText("*changed*")
    QApplication.sendEvent(editor, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.MouseFocusReason))
    assert doc.graph.nodes[note].params["text"] == "*changed*"
    _chain(window)
    assert window.run()
    wait_for_run(qtbot, window)
    assert window.canvas.views[note].view.run_state == ""


def test_a_muted_output_node_does_not_make_its_image_source_run(window, qtbot):
    doc = window.document
    source = doc.add_node("test.Gradient", (0, 0))
    preview = doc.add_node("core.PreviewImage", (300, 0))
    doc.connect(source, "image", preview, "images")
    count = doc.add_node("test.SlowCount", (0, 300), {"steps": 2, "delay": 0.0})
    doc.set_mode([preview], "mute")
    ran = []
    window.runner.node_state.connect(lambda node, state, _msg: ran.append(node) if state == "done" else None)
    assert window.run()
    wait_for_run(qtbot, window)
    assert ran == [count]
