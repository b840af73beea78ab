"""Building and editing a graph through the editor: every edit lands in the engine graph and is undoable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from nodegraph.graph import LinkRefused
from nodegraph.workflow import to_document
from ui.node_items import node_class

ROOT = Path(__file__).resolve().parents[2]


def port_center(window, node_id, name, kind):
    """The viewport position of a port, for real mouse drags."""
    view = window.canvas.views[node_id]
    port = (view.outputs() if kind == "out" else view.inputs())[name].view
    scene_point = port.sceneBoundingRect().center()
    return window.canvas.viewer().mapFromScene(scene_point)


def drag(window, start: QPoint, end: QPoint) -> None:
    viewport = window.canvas.viewer().viewport()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 6):
        QTest.mouseMove(viewport, start + (end - start) * (i / 5))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)


def test_palette_adds_nodes_that_appear_in_the_engine_graph(window):
    window.palette.add_requested.emit("core.Int")
    window.palette.add_requested.emit("core.Math")
    graph = window.document.graph
    assert [n.type for n in graph.nodes.values()] == ["core.Int", "core.Math"]
    assert set(window.canvas.views) == set(graph.nodes)
    math_view = window.canvas.views["math_1"]
    assert sorted(math_view.inputs()) == ["a", "b"]
    assert sorted(math_view.param_widgets()) == ["a_value", "b_value", "operation"]
    # ports carry the socket type's colour
    from ui.socket_colors import socket_color

    assert tuple(math_view.inputs()["a"].color[:3]) == socket_color("FLOAT")


def test_palette_search_filters_by_name_and_category(window):
    window.palette.search.setText("math")
    assert set(window.palette.visible_types()) == {"core.Math", "core.IntMath"}
    window.palette.search.setText("")
    assert "test.Gradient" in window.palette.visible_types()


def test_links_by_code_reach_the_engine_and_a_refused_one_is_not_made(window):
    doc = window.document
    a = doc.add_node("core.Int")
    b = doc.add_node("core.Math")
    c = doc.add_node("core.StringJoin")
    views = window.canvas.views
    views[a].outputs()["value"].connect_to(views[b].inputs()["a"])
    assert doc.graph.nodes[b].inputs == {"a": (a, "value")}
    with pytest.raises(LinkRefused, match="expected STRING, found FLOAT"):
        views[b].outputs()["result"].connect_to(views[c].inputs()["a"])
    assert doc.graph.nodes[c].inputs == {}
    assert views[c].inputs()["a"].connected_ports() == []
    assert views[c].inputs()["a"].view.connected_pipes == []
    views[b].inputs()["a"].disconnect_from(views[a].outputs()["value"])
    assert doc.graph.nodes[b].inputs == {}
    doc.undo_stack.undo()
    assert doc.graph.nodes[b].inputs == {"a": (a, "value")}
    assert views[b].inputs()["a"].connected_ports() == [views[a].outputs()["value"]]


def test_mouse_drag_connects_compatible_ports_and_refuses_a_wrong_type(window, qtbot):
    doc = window.document
    a = doc.add_node("core.Int", (0, 0))
    b = doc.add_node("core.Math", (350, 0))
    c = doc.add_node("core.StringJoin", (700, 0))
    window.fit_all()
    qtbot.wait(10)
    drag(window, port_center(window, a, "value", "out"), port_center(window, b, "a", "in"))
    assert doc.graph.nodes[b].inputs == {"a": (a, "value")}
    refused = []
    window.canvas.edit_refused.connect(refused.append)
    drag(window, port_center(window, b, "result", "out"), port_center(window, c, "b", "in"))
    assert doc.graph.nodes[c].inputs == {}
    assert window.canvas.views[c].inputs()["b"].view.connected_pipes == []
    assert refused and "expected STRING" in refused[0]


def test_a_cycle_is_refused(window):
    doc = window.document
    a = doc.add_node("core.Math")
    b = doc.add_node("core.Math")
    doc.connect(a, "result", b, "a")
    with pytest.raises(LinkRefused, match="cycle"):
        doc.connect(b, "result", a, "a")


def test_every_edit_undoes_and_redoes(window):
    doc = window.document
    start = json.dumps(to_document(doc.graph), sort_keys=True)
    a = doc.add_node("core.Int", (10, 20))
    b = doc.add_node("core.Math", (300, 20))
    doc.connect(a, "value", b, "a")
    doc.set_param(b, "operation", "power")
    doc.set_param(a, "value", 7)
    doc.move_nodes({a: (50, 60)})
    doc.set_title(b, "Power")
    doc.remove_nodes([a])
    end = json.dumps(to_document(doc.graph), sort_keys=True)
    stack = doc.undo_stack
    while stack.canUndo():
        stack.undo()
    assert json.dumps(to_document(doc.graph), sort_keys=True) == start
    assert window.canvas.views == {}
    while stack.canRedo():
        stack.redo()
    assert json.dumps(to_document(doc.graph), sort_keys=True) == end
    assert set(window.canvas.views) == {b}
    assert window.canvas.views[b].name() == "Power"


def test_deleting_a_node_and_undo_restores_its_links_and_place(window):
    doc = window.document
    window.open_path(_primitives(), ask=False)
    before = json.dumps(to_document(doc.graph))
    window.canvas.select(["prompt"])
    window.delete_selected()
    assert "prompt" not in doc.graph.nodes and "value" not in doc.graph.nodes["show_prompt"].inputs
    doc.undo_stack.undo()
    assert json.dumps(to_document(doc.graph)) == before
    show_in = window.canvas.views["show_prompt"].inputs()["value"]
    assert [p.node().engine_id for p in show_in.connected_ports()] == ["prompt"]
    assert len(show_in.view.connected_pipes) == 1


def test_widget_edits_become_undoable_parameter_changes(window):
    doc = window.document
    node_id = doc.add_node("core.Math")
    widgets = window.canvas.views[node_id].param_widgets()
    widgets["b_value"].box.setValue(2.5)
    widgets["operation"].combo.setCurrentText("divide")
    assert doc.graph.nodes[node_id].params["b_value"] == 2.5
    assert doc.graph.nodes[node_id].params["operation"] == "divide"
    doc.undo_stack.undo()
    assert doc.graph.nodes[node_id].params["operation"] == "add"
    assert widgets["operation"].get_value() == "add"


def test_spin_boxes_start_at_the_value_and_respect_bounds(window):
    node_id = window.document.add_node("test.Gradient", params={"width": 32})
    width = window.canvas.views[node_id].param_widgets()["width"]
    assert width.box.value() == 32 and width.get_value() == 32
    assert (width.box.minimum(), width.box.maximum()) == (1, 256)


def test_seed_randomise_sets_a_new_seed(window, registry):
    from nodegraph.node import Output, node
    from nodegraph.params import Seed
    from nodegraph.types import INT

    @node("test.SeedSource", params=[Seed("seed", 5)], outputs=[Output("seed", INT)])
    def seed_source(ctx, seed):
        return seed

    registry.register(seed_source)
    from ui.widgets import SeedWidget

    widget = SeedWidget({"name": "seed", "label": "seed", "default": 5, "min": 0, "max": 2**64 - 1})
    seen = []
    widget.edited.connect(lambda name, value: seen.append(value))
    values = set()
    for _ in range(3):
        widget.randomise()
        values.add(widget.get_value())
    assert len(values) > 1 and seen[-1] == widget.get_value()


def test_model_file_combo_lists_the_model_folder(window, tmp_path, registry):
    loras = tmp_path / "models" / "loras"
    loras.mkdir(parents=True)
    (loras / "style.safetensors").write_bytes(b"x")
    (loras / "notes.txt").write_text("not a model")
    from ui.widgets import ModelFileWidget

    window.canvas.refresh_model_lists()
    widget = ModelFileWidget({"name": "lora", "label": "lora", "default": "", "folder": "loras", "extensions": [".safetensors"]})
    names = [widget.combo.itemText(i) for i in range(widget.combo.count())]
    # the user's folder first, then the LoRAs shipped with the product; other files are not offered
    assert names[0] == "style.safetensors" and "notes.txt" not in names
    assert set(names[1:]) == {p.name for p in (ROOT / "nodes" / "models" / "loras").glob("*.safetensors")}


def test_title_edit_is_stored_in_the_layout(window):
    doc = window.document
    node_id = doc.add_node("core.Int")
    view = window.canvas.views[node_id]
    window.canvas.viewer().node_name_changed.emit(view.id, "Steps")
    assert doc.graph.nodes[node_id].layout["title"] == "Steps"
    assert view.name() == "Steps"
    doc.undo_stack.undo()
    assert "title" not in doc.graph.nodes[node_id].layout and view.name() == "Integer"


def test_copy_paste_duplicates_nodes_with_their_internal_links(window):
    doc = window.document
    a = doc.add_node("core.Int")
    b = doc.add_node("core.Math", (300, 0))
    doc.connect(a, "value", b, "a")
    window.canvas.select([a, b])
    assert window.copy()
    new_ids = window.paste()
    assert len(new_ids) == 2 and not set(new_ids) & {a, b}
    new_math = next(i for i in new_ids if doc.graph.nodes[i].type == "core.Math")
    new_int = next(i for i in new_ids if doc.graph.nodes[i].type == "core.Int")
    assert doc.graph.nodes[new_math].inputs == {"a": (new_int, "value")}
    assert sorted(window.canvas.selected_ids()) == sorted(new_ids)
    doc.undo_stack.undo()
    assert set(doc.graph.nodes) == {a, b}


def test_tab_search_adds_the_chosen_type(window, qtbot):
    viewer = window.canvas.viewer()
    viewer.setFocus()
    QTest.keyClick(viewer, Qt.Key.Key_Tab)
    assert window.tab_search.isVisible()
    QTest.keyClicks(window.tab_search.line, "integer math")
    QTest.keyClick(window.tab_search.line, Qt.Key.Key_Return)
    assert not window.tab_search.isVisible()
    assert [n.type for n in window.document.graph.nodes.values()] == ["core.IntMath"]


def test_moving_nodes_by_mouse_is_undoable(window, qtbot):
    doc = window.document
    node_id = doc.add_node("core.Int", (0, 0))
    window.fit_all()
    qtbot.wait(10)
    view = window.canvas.views[node_id]
    title = window.canvas.viewer().mapFromScene(view.view.sceneBoundingRect().topLeft()) + QPoint(40, 8)
    drag(window, title, title + QPoint(60, 40))
    moved = doc.graph.nodes[node_id].layout
    assert (moved["x"], moved["y"]) != (0, 0)
    doc.undo_stack.undo()
    assert (doc.graph.nodes[node_id].layout["x"], doc.graph.nodes[node_id].layout["y"]) == (0, 0)
    assert list(view.pos()) == [0.0, 0.0]


def _primitives():
    from tests.ui.conftest import PRIMITIVES

    return PRIMITIVES


def test_keys_typed_into_a_node_field_do_not_trigger_canvas_shortcuts(window, qtbot):
    doc = window.document
    node_id = doc.add_node("core.String", params={"value": "abc"})
    window.fit_all()
    line = window.canvas.views[node_id].param_widgets()["value"].line
    proxy = window.canvas.views[node_id].param_widgets()["value"]
    window.canvas.viewer().setFocus()
    window.canvas.viewer().scene().setFocusItem(proxy)
    line.setFocus()
    line.end(False)
    QTest.keyClick(window.canvas.viewer(), Qt.Key.Key_Backspace)
    QTest.keyClick(window.canvas.viewer(), Qt.Key.Key_Return)
    assert node_id in doc.graph.nodes
    assert doc.graph.nodes[node_id].params["value"] == "ab"


def test_node_colour_is_stored_in_the_layout_and_shown(window):
    doc = window.document
    node_id = doc.add_node("core.Int")
    doc.set_color(node_id, (120, 30, 30))
    assert doc.graph.nodes[node_id].layout["color"] == [120, 30, 30]
    assert tuple(window.canvas.views[node_id].color()) == (120, 30, 30)
    doc.undo_stack.undo()
    assert "color" not in doc.graph.nodes[node_id].layout


def test_dropping_a_palette_entry_creates_the_node_at_the_drop_point(window):
    from PySide6.QtCore import QMimeData

    from ui.canvas import NODE_MIME

    mime = QMimeData()
    mime.setData(NODE_MIME, b"core.Float")
    window.canvas.viewer().data_dropped.emit(mime, QPoint(120, 80))
    (node,) = window.document.graph.nodes.values()
    assert (node.type, node.layout["x"], node.layout["y"]) == ("core.Float", 120, 80)
    assert window.canvas.selected_ids() == [node.id]


def test_every_parameter_kind_gets_a_widget_that_edits_the_graph(window, registry):
    from nodegraph.node import Output, node
    from nodegraph.params import Bool, Choice, Float, ImageFile, Int, ModelFile, Seed, String, Text
    from nodegraph.types import INT

    @node(
        "test.AllKinds",
        params=[Int("count", 3, min=1, max=9), Float("scale", 1.5, min=0.0, max=4.0, step=0.25), String("name", "x"),
                Text("prompt", "a\nb"), Bool("flag", True), Choice("mode", choices=("one", "two")), Seed("seed", 12),
                ModelFile("model", "", folder="checkpoints"), ImageFile("picture", "")],
        outputs=[Output("n", INT)],
    )
    def all_kinds(ctx, **kwargs):
        return 1

    registry.register(all_kinds)
    window.canvas.register_node(node_class(all_kinds))
    node_id = window.document.add_node("test.AllKinds")
    widgets = window.canvas.views[node_id].param_widgets()
    kinds = {name: type(w).__name__ for name, w in widgets.items()}
    assert kinds == {
        "count": "IntWidget", "scale": "FloatWidget", "name": "LineWidget", "prompt": "TextWidget",
        "flag": "BoolWidget", "mode": "ChoiceWidget", "seed": "SeedWidget", "model": "ModelFileWidget",
        "picture": "ImageFileWidget",
    }
    assert {name: w.get_value() for name, w in widgets.items()} == window.document.graph.nodes[node_id].params
    widgets["flag"].box.setChecked(False)
    widgets["prompt"].text.setPlainText("a cat")
    widgets["scale"].box.setValue(9.0)  # clamped by the spin box to the declared maximum
    params = window.document.graph.nodes[node_id].params
    assert (params["flag"], params["prompt"], params["scale"]) == (False, "a cat", 4.0)


def test_float_slider_and_wide_integers(window):
    from ui.widgets import widget_for

    strength = widget_for({"name": "s", "label": "s", "kind": "float", "default": 0.5, "min": 0.0, "max": 2.0,
                           "step": 0.05, "slider": True}, None)
    assert strength.slider.value() == 250
    strength.slider.setValue(1000)
    assert strength.get_value() == 2.0
    big = widget_for({"name": "n", "label": "n", "kind": "int", "default": 2**40, "min": 0, "max": 2**50}, None)
    assert type(big).__name__ == "BigIntWidget" and big.get_value() == 2**40
    big.line.setText(str(2**60))
    assert big.get_value() == 2**50
