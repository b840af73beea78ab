"""Imported ComfyUI layouts never overlap (nodegraph.comfy.spread), by the editor's node sizes as the engine
estimates them (nodegraph.node_sizes; tests/ui/test_comfy_open.py checks the real node items), and keep ComfyUI's
arrangement: nodes only move right and down, side-by-side nodes stay side by side, stacked nodes stay stacked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodegraph.comfy import load_comfy
from nodegraph.comfy.spread import spread
from nodegraph.graph import Graph, GraphNode
from nodegraph.installed import default_registry
from nodegraph.node_sizes import estimated_size, overlapping_pairs
from tests.engine.comfy_helpers import fixture

REGISTRY = default_registry()
UI_FIXTURES = ["ui_flux_dev.json", "ui_flux_schnell.json", "ui_sd35.json", "ui_v04_features.json", "ui_v1_nested.json"]


def rects(graph: Graph) -> dict[str, tuple[float, float, float, float]]:
    return {i: (n.layout["x"], n.layout["y"], *estimated_size(graph, REGISTRY, i))
            for i, n in graph.nodes.items() if "x" in n.layout}


def comfy_boxes(doc: dict) -> dict[str, tuple[float, float, float, float]]:
    return {str(n["id"]): (*n["pos"], *n["size"]) for n in doc["nodes"]}


@pytest.mark.parametrize("name", UI_FIXTURES)
def test_imported_ui_workflows_have_no_overlapping_nodes(name):
    doc = fixture(name)
    graph = load_comfy(doc, REGISTRY).graph
    assert overlapping_pairs(rects(graph)) == []
    before = comfy_boxes(doc)
    placed = {i: r for i, r in rects(graph).items() if i in before}
    for a, (ax, ay, aw, ah) in before.items():
        if a not in placed:
            continue
        assert placed[a][0] >= ax and placed[a][1] >= ay  # only right and down
        for b, (bx, by, _, _) in before.items():
            if b == a or b not in placed:
                continue
            if ax + aw <= bx:  # side by side in ComfyUI: still left of it
                assert placed[a][0] < placed[b][0], (a, b)
            elif ay + ah <= by and ax == bx:  # stacked in one column: still above it
                assert placed[a][1] < placed[b][1], (a, b)


def test_the_report_says_how_many_nodes_moved():
    report = load_comfy(fixture("ui_flux_dev.json"), REGISTRY).report
    assert any("moved right or down so that none covers another" in line for line in report.layout)


def test_groups_move_and_grow_with_the_nodes_they_held():
    doc = fixture("ui_sd35.json")  # its group holds the two prompts, which are pushed down
    graph = load_comfy(doc, REGISTRY).graph
    groups = getattr(graph, "groups", None) or graph.meta["groups"]
    (rect,) = [g["rect"] for g in groups]
    gx, gy, gw, gh = rect
    for node_id in ("16", "40"):
        x, y, w, h = rects(graph)[node_id]
        assert gx <= x and gy <= y and x + w <= gx + gw and y + h <= gy + gh


def test_nodes_piled_on_one_spot_are_stacked_in_their_order():
    graph = Graph()
    for i in range(12):
        node = GraphNode(f"n{i}", "core.KSampler", 1)
        node.layout = {"x": 100, "y": 100}
        graph.nodes[node.id] = node
    assert spread(graph, REGISTRY, {}) == 11
    assert overlapping_pairs(rects(graph)) == []
    ys = [graph.nodes[f"n{i}"].layout["y"] for i in range(12)]
    assert ys == sorted(ys) and all(graph.nodes[f"n{i}"].layout["x"] == 100 for i in range(12))


TYPES = ["core.KSampler", "core.Int", "core.CLIPTextEncode", "core.SaveImage", "core.Reroute", "core.VAEDecode",
         "core.Note", "core.FluxTextEncode"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TYPES), st.integers(-2000, 2000), st.integers(-2000, 2000),
                          st.integers(20, 500), st.integers(20, 500)), min_size=1, max_size=25))
def test_any_layout_spreads_to_one_without_overlaps(nodes):
    graph = Graph()
    sizes = {}
    for i, (kind, x, y, w, h) in enumerate(nodes):
        node = GraphNode(str(i), kind, 1)
        node.layout = {"x": x, "y": y}
        graph.nodes[node.id] = node
        sizes[node.id] = (float(w), float(h))
    before = {i: (n.layout["x"], n.layout["y"]) for i, n in graph.nodes.items()}
    spread(graph, REGISTRY, sizes)
    assert overlapping_pairs(rects(graph)) == []
    assert all(n.layout["x"] >= before[i][0] and n.layout["y"] >= before[i][1] for i, n in graph.nodes.items())
