"""Copy and paste at the mouse with the links among the pasted nodes; Ctrl+Shift+V keeps links from the rest;
Ctrl+D duplicates with links."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QCursor
from PySide6.QtTest import QTest

from tests.ui.conftest import PRIMITIVES


def _chain(window):
    doc = window.document
    a = doc.add_node("core.Int", (0, 0), {"value": 3})
    b = doc.add_node("core.IntMath", (300, 0))
    c = doc.add_node("core.Show", (600, 0))
    doc.connect(a, "value", b, "a")
    doc.connect(b, "result", c, "value")
    return a, b, c


def _mouse_at(window, qtbot, scene: QPointF) -> None:
    viewer = window.canvas.viewer()
    QCursor.setPos(viewer.viewport().mapToGlobal(viewer.mapFromScene(scene)))
    qtbot.waitUntil(lambda: window.mouse_scene_pos() is not None, timeout=2000)


def test_paste_lands_at_the_mouse_and_keeps_links_among_the_pasted_nodes(window, qtbot):
    doc = window.document
    _a, b, c = _chain(window)
    window.fit_all()
    window.canvas.select([b, c])
    assert window.copy()
    target = window.canvas.viewer().mapToScene(window.canvas.viewer().viewport().rect().center() + QPoint(40, 90))
    _mouse_at(window, qtbot, target)
    new = window.paste()
    assert len(new) == 2
    new_b = next(n for n in new if doc.graph.nodes[n].type == "core.IntMath")
    new_c = next(n for n in new if doc.graph.nodes[n].type == "core.Show")
    mouse = window.mouse_scene_pos()
    top_left = (min(doc.graph.nodes[n].layout["x"] for n in new), min(doc.graph.nodes[n].layout["y"] for n in new))
    assert top_left == (round(mouse[0]), round(mouse[1]))
    assert doc.graph.nodes[new_c].inputs == {"value": (new_b, "result")}  # the link among the pasted nodes
    assert doc.graph.nodes[new_b].inputs == {}  # its input came from a node that was not copied
    assert sorted(window.canvas.selected_ids()) == sorted(new)
    view_in = window.canvas.views[new_c].inputs()["value"]
    assert [p.node().engine_id for p in view_in.connected_ports()] == [new_b]  # and the canvas shows it


def test_paste_with_links_keeps_inputs_from_nodes_that_were_not_copied(window, qtbot):
    a, b, _c = _chain(window)
    window.canvas.select([b])
    window.copy()
    window.canvas.viewer().setFocus()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    QTest.keyClick(window.canvas.viewer(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    (new,) = window.canvas.selected_ids()
    assert new != b and window.document.graph.nodes[new].inputs == {"a": (a, "value")}


def test_duplicate_copies_nodes_beside_them_with_their_links(window, qtbot):
    doc = window.document
    window.open_path(PRIMITIVES, ask=False)
    window.canvas.select(["scale", "show_scale"])
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.canvas.viewer().setFocus()
    QTest.keyClick(window.canvas.viewer(), Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    new = window.canvas.selected_ids()
    assert len(new) == 2
    scale, show = sorted((doc.graph.nodes[n] for n in new), key=lambda n: n.type != "core.Math")
    assert scale.type == "core.Math" and show.inputs == {"value": (scale.id, "result")}
    assert scale.inputs == doc.graph.nodes["scale"].inputs  # still fed by the original's sources
    assert scale.layout["x"] == doc.graph.nodes["scale"].layout["x"] + 30
    doc.undo_stack.undo()
    assert set(doc.graph.nodes) == set(window.canvas.views) and scale.id not in doc.graph.nodes
