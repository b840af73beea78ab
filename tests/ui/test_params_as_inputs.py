"""Parameters as input sockets: from the node menu and back, saved in the workflow file, driven by primitives."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QMenu

from nodegraph.workflow import load_workflow


def _menu_action(menu: QMenu, *path: str):
    for part in path[:-1]:
        menu = next(a.menu() for a in menu.actions() if a.menu() is not None and a.text() == part)
    return next(a for a in menu.actions() if a.text() == path[-1])


def test_a_parameter_becomes_an_input_from_the_node_menu_and_back(window):
    doc = window.document
    sampler = doc.add_node("core.KSampler", (300, 0))
    menu = window.node_menu(sampler)
    action = _menu_action(menu, "Parameters as Inputs", "steps")
    assert action.isCheckable() and not action.isChecked()
    action.trigger()
    assert doc.graph.nodes[sampler].param_inputs == ["steps"]
    view = window.canvas.views[sampler]
    assert "steps" in view.inputs() and not view.param_widgets()["steps"].isVisible()
    assert any(p.code == "missing_input" and p.field == "steps" for p in window.validate_now())

    count = doc.add_node("core.Int", (0, 0), {"value": 9})
    doc.connect(count, "value", sampler, "steps")
    menu = window.node_menu(sampler)
    back = _menu_action(menu, "Parameters as Inputs", "steps")
    assert back.isChecked()
    back.trigger()  # back to a field: the link that drove it goes too
    node = doc.graph.nodes[sampler]
    assert node.param_inputs == [] and "steps" not in node.inputs
    view = window.canvas.views[sampler]
    assert "steps" not in view.inputs() and view.param_widgets()["steps"].isVisible()
    doc.undo_stack.undo()  # one step brings socket and link back
    assert doc.graph.nodes[sampler].inputs["steps"] == (count, "value")
    assert "steps" in window.canvas.views[sampler].inputs()


def test_parameter_inputs_round_trip_through_the_workflow_file(window, tmp_path):
    doc = window.document
    seed = doc.add_node("core.Seed", (0, 0), {"value": 1234})
    first = doc.add_node("core.KSampler", (300, 0))
    second = doc.add_node("core.KSampler", (300, 500))
    for sampler in (first, second):  # one primitive drives both samplers' seeds
        doc.set_param_input(sampler, "seed", True)
        doc.connect(seed, "value", sampler, "seed")
    doc.set_param_input(first, "cfg", True)  # a socket with nothing connected yet
    path = tmp_path / "seeds.json"
    assert window.save_as(path)
    saved = json.loads(path.read_text())
    assert saved["version"] == 2
    assert saved["nodes"][first]["param_inputs"] == ["seed", "cfg"]
    assert saved["nodes"][second]["inputs"]["seed"] == [seed, "value"]
    graph = load_workflow(path, window.registry)
    assert graph.nodes[first].param_inputs == ["seed", "cfg"]

    window.new()
    assert window.open_path(path, ask=False)
    view = window.canvas.views[first]
    assert {"seed", "cfg"} <= set(view.inputs())
    assert [p.node().engine_id for p in view.inputs()["seed"].connected_ports()] == [seed]
    assert not view.param_widgets()["cfg"].isVisible()


def test_a_parameter_linked_in_an_older_file_gets_its_field_back_when_the_link_goes(window, tmp_path):
    import json as _json

    from tests.ui.conftest import PRIMITIVES

    raw = _json.loads(PRIMITIVES.read_text())
    raw["version"] = 1
    raw["nodes"]["scale"]["inputs"]["b_value"] = ["steps", "value"]  # a parameter driven by a link, no param_inputs
    path = tmp_path / "old.json"
    path.write_text(_json.dumps(raw))
    window.open_path(path, ask=False)
    view = window.canvas.views["scale"]
    assert "b_value" in view.inputs() and not view.param_widgets()["b_value"].isVisible()
    window.document.disconnect("scale", "b_value")
    view = window.canvas.views["scale"]
    assert "b_value" not in view.inputs() and view.param_widgets()["b_value"].isVisible()
