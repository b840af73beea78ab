"""Nodes never overlap: every shipped workflow as it opens and after auto layout, and after a run."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

from nodegraph.graph import Graph
from tests.ui.test_running import wait_for_run
from ui.layout import layered_positions, overlapping_pairs

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))


def node_rects(window) -> dict[str, tuple[float, float, float, float]]:
    rects = {}
    for node_id, view in window.canvas.views.items():
        rect = view.view.sceneBoundingRect()
        rects[node_id] = (rect.x(), rect.y(), rect.width(), rect.height())
    return rects


def test_shipped_workflows_open_and_auto_layout_without_overlapping_nodes(window):
    assert len(WORKFLOWS) >= 19
    for path in WORKFLOWS:  # one window opens them all (as a user would)
        assert window.open_path(path, ask=False)
        assert overlapping_pairs(node_rects(window)) == [], f"{path.name} as opened"
        window.auto_layout()
        assert overlapping_pairs(node_rects(window)) == [], f"{path.name} after auto layout"
        for node in window.document.graph.nodes.values():  # links run left to right
            for source, _ in node.inputs.values():
                assert window.canvas.views[source].view.sceneBoundingRect().right() < window.canvas.views[node.id].view.pos().x()
        window.document.undo_stack.setClean()


def test_auto_layout_places_a_workflow_without_positions_by_real_sizes(window, tmp_path):
    raw = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    for node in raw["nodes"].values():
        node.pop("layout", None)
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(raw))
    window.open_path(path, ask=False)
    assert not window.document.dirty
    assert all("x" in n.layout for n in window.document.graph.nodes.values())
    assert overlapping_pairs(node_rects(window)) == []


def test_layered_layout_keeps_file_order_columns_and_gaps():
    from nodegraph.graph import GraphNode

    graph = Graph([GraphNode("a", "t"), GraphNode("b", "t", inputs={"x": ("a", "o")}), GraphNode("c", "t", inputs={"x": ("a", "o")})])
    sizes = {"a": (100.0, 50.0), "b": (300.0, 400.0), "c": (100.0, 60.0)}
    positions = layered_positions(graph, sizes)
    assert positions["a"][0] == 0 and positions["b"][0] == positions["c"][0] == 190  # width 100 + gap 90
    assert positions["c"][1] >= positions["b"][1] + 400 + 40  # stacked in file order with a gap
    rects = {n: (*positions[n], *sizes[n]) for n in sizes}
    assert overlapping_pairs(rects) == []


def test_a_run_does_not_change_node_sizes(window, qtbot):
    doc = window.document
    source = doc.add_node("test.Gradient", (0, 0))
    preview = doc.add_node("core.PreviewImage", (300, 0))
    show = doc.add_node("core.Show", (300, 400))
    doc.connect(source, "image", preview, "images")
    doc.connect(source, "image", show, "value")
    before = {n: tuple(v.view.size) for n, v in window.canvas.views.items()}
    window.run()
    wait_for_run(qtbot, window)
    assert window.canvas.views[preview].preview.label.source() is not None
    assert len(window.canvas.views[show].result_text.get_value()) > 20
    assert {n: tuple(v.view.size) for n, v in window.canvas.views.items()} == before


def test_the_layout_script_changes_only_positions_and_is_stable(tmp_path):
    target = tmp_path / "sdxl.json"
    shutil.copy(ROOT / "workflows" / "sdxl_txt2img.json", target)
    original = json.loads(target.read_text())
    for node in original["nodes"].values():
        node["layout"]["x"], node["layout"]["y"] = 0, 0  # everything on one spot
    target.write_text(json.dumps(original))
    script = runpy.run_path(str(ROOT / "scripts" / "layout_workflows.py"))  # its functions, run in this process
    assert script["main"]([str(target)]) == 0
    first = json.loads(target.read_text())
    for node_id, node in first["nodes"].items():
        expected = {k: v for k, v in original["nodes"][node_id].items() if k != "layout"}
        assert {k: v for k, v in node.items() if k != "layout"} == expected
    assert len({(n["layout"]["x"], n["layout"]["y"]) for n in first["nodes"].values()}) == len(first["nodes"])
    assert script["main"]([str(target)]) == 0
    assert json.loads(target.read_text()) == first
    assert script["main"]([str(tmp_path / "missing.json")]) == 1  # a bad file: a message, no traceback
