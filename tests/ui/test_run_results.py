"""What a run leaves in the editor: live previews in the sampler node and the image panel, each image listed
once, a gallery that reopens the workflow of any image, Save As with the workflow, the problems panel and
value summaries in the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodegraph.png_meta import IMAGE_KEY, WORKFLOW_KEY, png_text_chunks
from nodegraph.workflow import load_workflow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def window(make_window, registry):
    registry.register_module("tests.ui.run_nodes_for_tests", source="tests")
    return make_window(registry=registry)


def wait_for_queue(qtbot, window, timeout=60000):
    qtbot.waitUntil(lambda: not window.queue.busy and not window.queue.pending(), timeout=timeout)


def _images_then_preview(window, **params):
    node_id = window.document.add_node("test.SeededImages", params=params)
    preview = window.document.add_node("core.PreviewImage")
    window.document.connect(node_id, "image", preview, "images")
    return node_id, preview


def test_an_image_shown_by_its_maker_and_its_output_node_is_listed_once(window, qtbot):
    node_id, preview = _images_then_preview(window, count=2)
    window.run()
    wait_for_queue(qtbot, window)
    labels = [window.image_panel.chooser.itemText(i) for i in range(window.image_panel.chooser.count())]
    assert labels == [f"{preview} #1", f"{preview} #2"]
    assert [(e.index, e.count, e.source) for e in window.gallery.entries] == [(0, 2, (node_id, "image")), (1, 2, (node_id, "image"))]


def test_gallery_reopens_the_workflow_that_made_an_image(window, qtbot):
    node_id, _ = _images_then_preview(window, seed=11)
    window.run()
    wait_for_queue(qtbot, window)
    window.document.set_param(node_id, "seed", 99)  # edited after the run
    (entry,) = window.gallery.entries
    assert "seed: " in entry.describe() and "11" in entry.describe()
    window.gallery.list.setCurrentRow(0)
    assert window.image_panel.current_entry() is entry
    window.gallery.reopen_selected()
    assert window.document.graph.nodes[node_id].params["seed"] == 11
    assert window.document.dirty and window.document.path is None  # a snapshot: saving asks for a name


def test_save_as_embeds_the_workflow_of_the_image(window, qtbot, tmp_path):
    node_id, preview = _images_then_preview(window, seed=4, count=2)
    window.run()
    wait_for_queue(qtbot, window)
    window.image_panel.chooser.setCurrentIndex(1)
    target = tmp_path / "kept"  # no extension given: a PNG is written
    assert window.image_panel.save_as(str(target))
    data = (tmp_path / "kept.png").read_bytes()
    chunks = png_text_chunks(data)
    assert json.loads(chunks[WORKFLOW_KEY])["nodes"][node_id]["params"]["seed"] == 4
    assert json.loads(chunks[IMAGE_KEY])["batch_index"] == 1
    graph = load_workflow(tmp_path / "kept.png", window.registry)  # opening the PNG reopens the workflow
    assert set(graph.nodes) == {node_id, preview}


def test_problems_panel_lists_problems_with_node_field_expected_found(window, qtbot):
    loader = window.document.add_node("core.CheckpointLoader", params={"ckpt_name": "nowhere.safetensors"})
    window.validate_now()
    (row,) = [p for p in window.problems_panel.problems if p.node == loader]
    assert row.field == "ckpt_name" and row.found == "'nowhere.safetensors'" and "searched" in row.message.lower()
    item = window.problems_panel.tree.topLevelItem(0)
    assert [item.text(i) for i in range(2)] == [loader, "ckpt_name"]
    window.problems_panel.tree.itemClicked.emit(item, 0)
    assert window.canvas.selected_ids() == [loader]
    assert "nowhere.safetensors" in window.problems_panel.copy(only_selected=False)
    assert window.problems_dock.windowTitle() == "Problems (1)"
    window.run()  # refused for the same problem: listed once, not again as a failure
    qtbot.waitUntil(lambda: not window.queue.busy, timeout=20000)
    assert window.queue.entries[0].status == "invalid" and window.problems_panel.tree.topLevelItemCount() == 1


def test_a_failure_during_the_run_is_listed_in_the_problems_panel(window, qtbot):
    node_id, preview = _images_then_preview(window)
    fail = window.document.add_node("test.FailLater", params={"steps": 2})
    window.document.connect(node_id, "image", fail, "image")
    window.document.connect(fail, "image", preview, "images")
    window.run()
    wait_for_queue(qtbot, window)
    failures = window.problems_panel.failures
    assert [(p.node, p.field) for p in failures] == [(fail, "steps")]
    assert "image=Tensor[1, 8, 8, 3] float32 cpu" in failures[0].found  # the inputs it got, summarised


def test_the_log_summarises_values_instead_of_printing_them(window, qtbot):
    node_id = window.document.add_node("core.EmptyLatentImage", params={"width": 64, "height": 32, "batch_size": 3})
    window.run_node(node_id)
    wait_for_queue(qtbot, window)
    log = window.log_view.toPlainText()
    assert f"{node_id}.latent = {{samples: Tensor[3, 4, 4, 8] float32 cpu}}" in log
    assert "tensor(" not in log


def test_the_demo_sampler_shows_its_live_preview_in_the_node_and_the_image_panel(window, qtbot, tmp_path):
    copy = tmp_path / "txt2img.json"  # its images are saved beside it: here, not in the project
    copy.write_text((ROOT / "workflows" / "txt2img.json").read_text())
    window.open_path(copy, ask=False)
    window.document.set_param("sampler", "steps", 6)
    window.document.set_param("latent", "batch_size", 1)
    window.runner.preview_interval = 0.0  # every step
    previews = []
    window.runner.node_preview.connect(lambda node, image: previews.append((node, image.width(), image.height())))
    live_labels = []
    window.runner.node_preview.connect(lambda *_: live_labels.append(window.image_panel.chooser.currentText()))
    window.run()
    wait_for_queue(qtbot, window)
    assert window.queue.entries[0].status == "done", window.queue.entries[0].summary
    assert previews == [("sampler", 8, 8)] * 6  # one 8x8 latent: one pixel per cell
    assert set(live_labels) == {"sampler (live)"}
    pixmap = window.canvas.views["sampler"].preview.label.source()
    assert pixmap is not None and not pixmap.isNull()
    # after the run the live entry makes way for the saved images
    labels = [window.image_panel.chooser.itemText(i) for i in range(window.image_panel.chooser.count())]
    assert labels == ["save"]
