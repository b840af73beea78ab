"""Legible by default: distinct socket colours, text of at least 9 px at the opening zoom, large titles when
zoomed out, icons without an emoji font, resizable nodes, fixed toolbar buttons, model combos that help."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QImage, QPainter

from nodegraph.types import all_types
from tests.ui.helpers import drag, to_viewport
from ui.socket_colors import BUILTIN, MIN_CONTRAST, MIN_DIFFERENCE, NODE_BODY, assign_colors, contrast, difference
from ui.theme import MIN_TEXT_PX, smallest_text_px

ROOT = Path(__file__).resolve().parents[2]


def test_every_socket_type_has_a_colour_distinct_from_every_other(window):
    used = {t.name for d in window.registry for t in (*(i.type for i in d.inputs), *(o.type for o in d.outputs))}
    colors = assign_colors({t.name: t.color for t in all_types()})
    assert used <= set(colors)
    for (a, ca), (b, cb) in itertools.combinations(colors.items(), 2):
        assert difference(ca, cb) >= MIN_DIFFERENCE, f"{a} and {b} look alike: {ca} vs {cb}"
    for name, color in colors.items():
        assert contrast(color, NODE_BODY) >= MIN_CONTRAST, f"{name} is hard to see on a node"
    # the colours that were mixed up before
    assert difference(colors["CLIP"], colors["STRING"]) > 40 and difference(colors["IMAGE"], colors["INT"]) > 40


def test_plugin_types_asking_for_taken_colours_still_get_distinct_ones():
    declared = {f"PLUGIN_{i}": BUILTIN["IMAGE"] for i in range(6)} | {"LIKE_CLIP": (250, 210, 10)}
    colors = assign_colors(declared)
    for (a, ca), (b, cb) in itertools.combinations(colors.items(), 2):
        assert difference(ca, cb) >= MIN_DIFFERENCE, (a, b)
    assert colors == assign_colors(dict(reversed(list(declared.items()))))  # the same whatever the order


@pytest.mark.parametrize("name", ["txt2img", "demo_controlnet", "sdxl_txt2img"])
def test_a_workflow_opens_at_a_zoom_where_node_text_is_at_least_9_px(window, qtbot, name):
    window.open_path(ROOT / "workflows" / f"{name}.json", ask=False)
    qtbot.wait(10)  # the fit runs after the view has its size
    window.fit_all()
    scale = window.canvas.viewer().transform().m11()
    assert scale * smallest_text_px() >= MIN_TEXT_PX - 0.05
    assert scale <= 1.0


def _render(window, node_id: str, scale: float) -> QImage:
    item = window.canvas.views[node_id].view
    rect = item.sceneBoundingRect()
    image = QImage(int(rect.width() * scale) + 2, int(rect.height() * scale) + 2, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    window.canvas.viewer().scene().render(painter, QRectF(image.rect()), rect)
    painter.end()
    return image


def _light_pixels(image: QImage) -> int:
    return sum(1 for x in range(image.width()) for y in range(image.height()) if image.pixelColor(x, y).lightness() > 200)


def test_zoomed_out_a_node_draws_its_title_large_instead_of_an_empty_box(window, qtbot):
    node_id = window.document.add_node("core.VAEDecode", (0, 0))
    viewer = window.canvas.viewer()
    port = viewer.viewport()
    viewer.show_rect(QRectF(-400, -400, port.width() / 0.35, port.height() / 0.35), min_scale=0.0)
    qtbot.wait(10)
    item = window.canvas.views[node_id].view
    assert 0.3 < viewer.transform().m11() < 0.4
    viewer.viewport().repaint()
    assert item._proxy_mode  # fields hidden
    image = _render(window, node_id, viewer.transform().m11())
    assert _light_pixels(image) > 10  # the title, drawn large


def test_the_seed_button_is_a_painted_icon_not_an_emoji(window):
    sampler = window.document.add_node("core.KSampler")
    dice = window.canvas.views[sampler].param_widgets()["seed"].dice
    assert dice.text() == "" and not dice.icon().isNull()


def test_a_node_resizes_with_its_grip_and_its_prompt_box_grows(window, qtbot, tmp_path):
    doc = window.document
    node_id = doc.add_node("core.CLIPTextEncode", (0, 0))
    window.fit_all()
    qtbot.wait(10)
    view = window.canvas.views[node_id]
    item = view.view
    window.canvas.select([node_id])
    box = view.param_widgets()["text"]
    height_before, width_before = box.size().height(), item.width
    grip = item.mapToScene(item._grip_rect().center())
    start = to_viewport(window, grip)
    drag(window, start, to_viewport(window, grip + QPointF(120, 150)))
    layout = doc.graph.nodes[node_id].layout
    assert layout["width"] > width_before + 100 and layout["height"] > 0
    assert box.size().height() > height_before + 100  # the prompt box took the extra height
    assert box.size().width() > width_before
    doc.undo_stack.undo()
    assert "width" not in doc.graph.nodes[node_id].layout and item.width == width_before
    doc.undo_stack.redo()
    path = tmp_path / "big.json"
    window.save_as(path)
    window.new()
    window.open_path(path, ask=False)
    assert window.canvas.views[node_id].view.width == layout["width"]


def test_toolbar_buttons_keep_their_places_whatever_undo_says(window):
    buttons = {a.text(): window.toolbar.widgetForAction(a) for a in window.toolbar.actions() if not a.isSeparator()}
    before = {text: button.geometry() for text, button in buttons.items()}
    doc = window.document
    node = doc.add_node("core.Int")
    doc.set_param(node, "value", 5)
    doc.set_title(node, "a very long title that makes the undo text long")
    assert window.undo_tool.toolTip().startswith("Undo rename")
    assert {text: button.geometry() for text, button in buttons.items()} == before
    assert buttons["Undo"].text() == "Undo"


def test_a_model_parameter_with_one_installed_choice_starts_with_it(make_window, tmp_path):
    folder = tmp_path / "models" / "vae"
    folder.mkdir(parents=True)
    (folder / "only_one.safetensors").write_bytes(b"x")
    window = make_window()
    node_id = window.document.add_node("core.VAELoader")
    assert window.document.graph.nodes[node_id].params["vae_name"] == "only_one.safetensors"
    widget = window.canvas.views[node_id].param_widgets()["vae_name"]
    assert widget.get_value() == "only_one.safetensors" and not widget.is_missing()
    # the shipped demo checkpoint is the only one installed here: a new Load Checkpoint starts with it
    loader = window.document.add_node("core.CheckpointLoader")
    assert window.document.graph.nodes[loader].params["ckpt_name"] == "demo_shapes.safetensors"
    (folder / "second.safetensors").write_bytes(b"y")
    window.canvas.refresh_model_lists()
    assert window.document.graph.nodes[window.document.add_node("core.VAELoader")].params["vae_name"] == ""


def test_a_model_that_is_not_installed_is_marked_missing_and_kept(window, tmp_path):
    window.open_path(ROOT / "workflows" / "sdxl_txt2img.json", ask=False)
    widget = window.canvas.views["checkpoint"].param_widgets()["ckpt_name"]
    assert widget.is_missing()
    assert widget.combo.currentText() == "(missing) sd_xl_base_1.0.safetensors"
    assert widget.get_value() == "sd_xl_base_1.0.safetensors"
    assert "is not in the checkpoints folders" in widget.combo.toolTip()


def test_the_selected_node_is_drawn_above_the_others(window):
    doc = window.document
    a = doc.add_node("core.Int", (0, 0))
    b = doc.add_node("core.Int", (40, 20))  # overlapping a
    window.canvas.select([a])
    items = {n: window.canvas.views[n].view for n in (a, b)}
    assert items[a].zValue() > items[b].zValue()
    window.canvas.select([b])
    assert items[b].zValue() > items[a].zValue()
