"""Feedback before and around a run: validation marks, running a single node, link-driven parameters."""

from __future__ import annotations

import json

from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import PRIMITIVES
from tests.ui.test_running import wait_for_run


def test_opened_workflow_marks_nodes_with_problems_and_logs_them(window, tmp_path):
    doc = json.loads(PRIMITIVES.read_text())
    doc["nodes"]["scale"]["params"]["operation"] = "power-of-nine"
    del doc["nodes"]["show_prompt"]["inputs"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    window.open_path(path, ask=False)
    marked = {node_id for node_id, view in window.canvas.views.items() if view.view.has_problem}
    assert marked == {"scale", "show_prompt"}
    tip = window.canvas.views["scale"].view.toolTip()
    assert "operation: invalid value" in tip and "power-of-nine" in tip
    assert "required input 'value' is not connected" in window.canvas.views["show_prompt"].view.toolTip()
    log = window.log_view.toPlainText()
    assert "2 problem(s)" in log and "node 'scale', field 'operation'" in log
    assert window.problems_label.isVisible() and window.problems_label.text() == "⚠ 2 problem(s)"


def test_marks_follow_edits_and_undo(window, qtbot):
    doc = window.document
    show = doc.add_node("core.Show")
    qtbot.waitUntil(lambda: window.canvas.views[show].view.has_problem)
    number = doc.add_node("core.Int")
    doc.connect(number, "value", show, "value")
    qtbot.waitUntil(lambda: not window.canvas.views[show].view.has_problem)
    assert window.canvas.views[show].problems == []
    assert not window.problems_label.isVisible()
    assert "Problems" not in window.canvas.views[show].view.toolTip()
    doc.undo_stack.undo()
    qtbot.waitUntil(lambda: window.canvas.views[show].view.has_problem)


def test_run_this_node_runs_only_it_and_what_it_needs(window, qtbot):
    window.open_path(PRIMITIVES, ask=False)
    menu = window.node_menu("scale")
    run_action = next(a for a in menu.actions() if a.text() == "Run This Node")
    run_action.trigger()
    wait_for_run(qtbot, window)
    states = {node_id: view.view.run_state for node_id, view in window.canvas.views.items()}
    assert states == {
        "colour": "", "shape": "", "prompt": "", "show_prompt": "", "show_scale": "",
        "steps": "done", "scale": "done",
    }
    assert "scale.result = 10.0" in window.log_view.toPlainText()
    assert window.canvas.views["show_scale"].result_text.get_value() == ""  # downstream did not run


def test_right_click_on_a_node_asks_for_that_nodes_menu(window, qtbot):
    node_id = window.document.add_node("core.Math", (0, 0))
    window.fit_all()
    qtbot.wait(10)
    viewer = window.canvas.viewer()
    rect = window.canvas.views[node_id].view.sceneBoundingRect()
    title_point = viewer.mapFromScene(rect.center().x(), rect.top() + 8)
    assert viewer.node_at(title_point) == node_id
    assert viewer.node_at(viewer.mapFromScene(rect.right() + 60, rect.center().y())) is None
    window.canvas.node_menu_requested.disconnect(window._show_node_menu)  # a real menu would wait for a click
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, title_point, viewer.viewport().mapToGlobal(title_point))
    with qtbot.waitSignal(window.canvas.node_menu_requested) as requested:
        QApplication.sendEvent(viewer.viewport(), event)
    assert requested.args[0] == node_id


def test_a_parameter_driven_by_a_link_is_greyed_out_until_the_link_goes(window):
    doc = window.document
    number = doc.add_node("core.Int", (0, 0))
    math = doc.add_node("core.Math", (300, 0))
    widget = window.canvas.views[math].param_widgets()["b_value"]
    field = widget.get_custom_widget()
    assert field.isEnabled()
    doc.connect(number, "value", math, "b_value")
    assert not field.isEnabled()
    assert field.toolTip() == f"driven by link from {number}.value"
    assert window.canvas.views[math].param_widgets()["a_value"].get_custom_widget().isEnabled()
    doc.undo_stack.undo()
    assert field.isEnabled() and field.toolTip() == "b, when nothing is connected."


def test_run_selected_nodes_targets_the_selection(window, qtbot):
    window.open_path(PRIMITIVES, ask=False)
    window.canvas.select(["prompt", "steps"])
    assert window.run_selected()
    wait_for_run(qtbot, window)
    ran = {node_id for node_id, view in window.canvas.views.items() if view.view.run_state == "done"}
    assert ran == {"colour", "shape", "prompt", "steps"}
    log = window.log_view.toPlainText()
    assert "prompt.text = 'a red circle on a blue background'" in log and "steps.value = 20" in log


def test_node_tooltip_survives_a_redraw_when_an_image_arrives(window, qtbot):
    source = window.document.add_node("test.Gradient")
    node_id = window.document.add_node("core.PreviewImage", (300, 0))
    window.document.connect(source, "image", node_id, "images")
    window.run()
    wait_for_run(qtbot, window, timeout=90000)  # the first test to import torch pays for it (slow on a busy machine)
    view = window.canvas.views[node_id]
    assert view.preview.label.source() is not None  # the image arrived in the node's box
    assert view.view.toolTip().startswith(f"{node_id} · core.PreviewImage v1")
    assert view.view.toolTip().endswith("done: " + view.status.split(": ", 1)[1])
