"""Tab search: ranked results, Enter adds the best match at the cursor and keeps the canvas focused; a link let
go on empty canvas searches only the node types that fit, and the new node comes connected."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from nodegraph.installed import default_registry
from tests.ui.conftest import PRIMITIVES
from tests.ui.helpers import drag, port_center, to_viewport, widget_center
from ui.search import fitting_port, rank

RANKING = [
    ("ksampler", ["KSampler", "KSampler (Advanced)"]),
    ("clip text", ["CLIP Text Encode", "CLIP Text Encode (SDXL)", "CLIP Text Encode (SDXL Refiner)"]),
    ("vae dec", ["VAE Decode", "VAE Decode (Tiled)"]),
    ("lora", ["Load LoRA", "Load LoRA (model only)", "Train LoRA (DreamBooth)"]),
    ("save", ["Save Image", "Save Checkpoint"]),
    ("empty lat", ["Empty Latent Image", "Empty Latent (FLUX / SD3)", "Empty Latent (model's space)"]),
    ("reroute", ["Reroute"]),
    ("KSAMPLER adv", ["KSampler (Advanced)"]),
]


@pytest.mark.parametrize(("query", "first"), RANKING)
def test_search_ranks_names_before_ids_and_descriptions(query, first):
    builtin = [d for d in default_registry() if d.source == "builtin"]
    names = [d.name for d in rank(builtin, query)]
    assert names[: len(first)] == first


def test_a_query_matching_only_a_description_ranks_after_name_matches():
    builtin = [d for d in default_registry() if d.source == "builtin"]
    names = [d.name for d in rank(builtin, "ksampler")]
    assert "IF Super-Resolution (stage II)" in names  # its description mentions the sampler...
    assert names.index("IF Super-Resolution (stage II)") > names.index("KSampler (Advanced)")  # ...so it comes later


def test_fitting_port_prefers_exact_types_and_reaches_parameters():
    registry = default_registry()
    assert fitting_port(registry.get("core.KSampler"), "LATENT", from_output=True) == "latent_image"
    assert fitting_port(registry.get("core.KSampler"), "INT", from_output=True) == "seed"  # a parameter as input
    assert fitting_port(registry.get("core.VAEDecode"), "IMAGE", from_output=False) == "image"
    assert fitting_port(registry.get("core.SaveImage"), "LATENT", from_output=True) is None


def test_enter_adds_the_top_hit_at_the_cursor_and_the_canvas_keeps_focus(window, qtbot):
    window.open_path(PRIMITIVES, ask=False)
    viewer = window.canvas.viewer()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    viewer.setFocus()
    # the cursor near the right edge, over empty canvas
    spot = viewer.viewport().rect().topRight() + QPointF(-30, 60).toPoint()
    QTest.mouseMove(viewer.viewport(), spot)
    QTest.keyClick(viewer, Qt.Key.Key_Tab)
    assert window.tab_search.isVisible()
    QTest.keyClicks(window.tab_search.line, "ksampler")
    QTest.keyClick(window.tab_search.line, Qt.Key.Key_Return)
    added = [n for n in window.document.graph.nodes.values() if n.type == "core.KSampler"]
    assert len(added) == 1
    expected = viewer.mapToScene(spot)
    assert (added[0].layout["x"], added[0].layout["y"]) == (round(expected.x()), round(expected.y()))
    assert window.focusWidget() is viewer
    assert window.canvas.selected_ids() == [added[0].id]


def test_a_link_dropped_on_empty_canvas_offers_fitting_types_and_connects_the_new_node(window, qtbot):
    doc = window.document
    loader = doc.add_node("core.VAELoader", (0, 0))
    window.fit_all()
    qtbot.wait(10)
    start = port_center(window, loader, "vae", "out")
    drag(window, start, start + QPointF(220, 80).toPoint())
    search = window.tab_search
    assert search.isVisible()
    offered = {search.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(search.list.count())}
    assert {"core.VAEDecode", "core.VAEEncode", "core.SaveCheckpoint"} <= offered
    assert "core.KSampler" not in offered and "core.SaveImage" not in offered
    QTest.keyClicks(search.line, "vae dec")
    QTest.keyClick(search.line, Qt.Key.Key_Return)
    decode = next(n for n in doc.graph.nodes.values() if n.type == "core.VAEDecode")
    assert decode.inputs == {"vae": (loader, "vae")}
    doc.undo_stack.undo()  # one step: the node and its link
    assert [n.type for n in doc.graph.nodes.values()] == ["core.VAELoader"]


def test_a_link_dropped_from_an_input_adds_a_node_that_feeds_it(window, qtbot):
    doc = window.document
    decode = doc.add_node("core.VAEDecode", (600, 0))
    window.fit_all()
    qtbot.wait(10)
    start = port_center(window, decode, "samples", "in")
    drag(window, start, start - QPointF(200, 0).toPoint())
    QTest.keyClicks(window.tab_search.line, "ksampler")
    QTest.keyClick(window.tab_search.line, Qt.Key.Key_Return)
    sampler = next(n for n in doc.graph.nodes.values() if n.type == "core.KSampler")
    assert doc.graph.nodes[decode].inputs == {"samples": (sampler.id, "latent")}


def test_a_link_dropped_on_a_parameter_turns_it_into_an_input(window, qtbot):
    doc = window.document
    seed = doc.add_node("core.Seed", (0, 0), {"value": 42})
    sampler = doc.add_node("core.KSampler", (350, 0))
    window.fit_all()
    qtbot.wait(10)
    drag(window, port_center(window, seed, "value", "out"), widget_center(window, sampler, "seed"))
    node = doc.graph.nodes[sampler]
    assert node.inputs == {"seed": (seed, "value")} and node.param_inputs == ["seed"]
    view = window.canvas.views[sampler]
    assert "seed" in view.inputs() and not view.param_widgets()["seed"].isVisible()


def test_a_link_dropped_on_a_node_goes_to_its_first_free_fitting_input(window, qtbot):
    doc = window.document
    text = doc.add_node("core.String", (0, 0), {"value": "x"})
    join = doc.add_node("core.StringJoin", (350, 0))
    doc.connect(text, "value", join, "a")
    other = doc.add_node("core.String", (0, 200), {"value": "y"})
    window.fit_all()
    qtbot.wait(10)
    title = window.canvas.views[join].view.sceneBoundingRect()
    drag(window, port_center(window, other, "value", "out"), to_viewport(window, QPointF(title.center().x(), title.top() + 8)))
    assert doc.graph.nodes[join].inputs == {"a": (text, "value"), "b": (other, "value")}
