"""Files: save and reopen identically, PNG with an embedded workflow, placeholders, drops, dirty, recovery."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QMessageBox

from nodegraph.workflow import to_document
from tests.ui.conftest import PRIMITIVES

Button = QMessageBox.StandardButton


def test_save_and_reopen_gives_an_identical_workflow_file(window, tmp_path):
    assert window.open_path(PRIMITIVES, ask=False)
    original = to_document(window.document.graph)
    window.document.set_param("colour", "value", "green")
    first = tmp_path / "first.json"
    assert window.save_as(first)
    assert not window.document.dirty and window.windowTitle().startswith("first.json")
    assert window.open_path(first)
    second = tmp_path / "second.json"
    assert window.save_as(second)
    assert first.read_bytes() == second.read_bytes()
    saved = json.loads(first.read_text())
    assert saved["nodes"]["colour"]["params"] == {"value": "green"}
    saved["nodes"]["colour"]["params"]["value"] = "red"
    assert saved == original  # nothing else changed: ids, order, links, layout
    assert str(first.resolve()) in window.recent.paths()


def test_unknown_node_type_is_a_placeholder_that_keeps_its_data(window, tmp_path):
    doc = {
        "format": "nodegraph.workflow",
        "version": 1,
        "nodes": {
            "n": {"type": "core.Int", "version": 1, "params": {"value": 3}, "layout": {"x": 0, "y": 0}},
            "up": {
                "type": "fancyplugin.Upscale", "version": 4, "params": {"factor": 2.5, "mode": "lanczos"},
                "inputs": {"image": ["n", "value"]}, "layout": {"x": 300, "y": 0}, "notes": {"kept": True},
            },
            "show": {"type": "core.Show", "version": 1, "inputs": {"value": ["up", "upscaled"]}, "layout": {"x": 600, "y": 0}},
        },
    }
    source = tmp_path / "plugin.json"
    source.write_text(json.dumps(doc))
    assert window.open_path(source, ask=False)
    view = window.canvas.views["up"]
    assert type(view).__name__ == "MissingNode"
    assert "fancyplugin.Upscale" in view.name() and "not installed" in view.view.toolTip()
    assert [p.node().engine_id for p in view.inputs()["image"].connected_ports()] == ["n"]
    assert "upscaled" in view.outputs()
    window.document.move_nodes({"n": (10, 10)})
    out = tmp_path / "out.json"
    window.save_as(out)
    assert json.loads(out.read_text())["nodes"]["up"] == doc["nodes"]["up"]


def test_opening_a_png_saved_by_the_product_reopens_its_workflow(window, tmp_path):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("nodegraph.workflow", PRIMITIVES.read_text())
    png = tmp_path / "render.png"
    Image.new("RGB", (8, 8), (200, 30, 30)).save(png, pnginfo=info)
    assert window.open_path(png, ask=False)
    assert to_document(window.document.graph)["nodes"] == json.loads(PRIMITIVES.read_text())["nodes"]
    assert window.document.path is None  # Save must not overwrite the image
    assert set(window.canvas.views) == set(json.loads(PRIMITIVES.read_text())["nodes"])


def test_dropping_files_opens_workflows_and_turns_images_into_load_nodes(window, tmp_path):
    from PIL import Image

    plain = tmp_path / "photo.png"
    Image.new("RGB", (4, 4)).save(plain)
    window.open_dropped([str(plain)], (100.0, 50.0))
    nodes = list(window.document.graph.nodes.values())
    if "core.LoadImage" in window.document.registry:  # the built-in loader is preferred to any other
        assert [(n.type, n.params["path"]) for n in nodes] == [("core.LoadImage", str(plain))]
    else:
        assert [(n.type, n.params) for n in nodes] == [("test.OpenImage", {"image": str(plain)})]
    assert (nodes[0].layout["x"], nodes[0].layout["y"]) == (100, 50)
    window.answers.append(Button.Discard)
    window.open_dropped([str(PRIMITIVES)])
    assert "prompt" in window.document.graph.nodes and window.questions == ["Unsaved changes"]


def test_drop_on_the_canvas_reaches_the_same_handler(window, tmp_path):
    from PySide6.QtCore import QMimeData, QPoint, QUrl

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(PRIMITIVES))])
    window.canvas.viewer().data_dropped.emit(mime, QPoint(0, 0))
    assert "prompt" in window.document.graph.nodes


def test_unsaved_changes_prompt_can_cancel_or_discard(window):
    window.document.add_node("core.Int")
    assert window.isWindowModified()
    window.answers.append(Button.Cancel)
    window.new()
    assert len(window.document.graph) == 1
    window.answers.append(Button.Discard)
    window.new()
    assert len(window.document.graph) == 0 and not window.document.dirty


def test_autosave_and_recovery_after_a_crash(make_window, tmp_path):
    first = make_window()
    first.document.add_node("core.Int", params={"value": 42})
    assert first.autosave.save_now()
    assert first.autosave.path.exists()
    # a crash: the window goes away without closeEvent, the recovery file stays
    first.autosave.timer.stop()
    second = make_window()
    second.answers.append(Button.Yes)
    assert second.offer_recovery()
    restored = list(second.document.graph.nodes.values())
    assert [(n.type, n.params) for n in restored] == [("core.Int", {"value": 42})]
    assert second.document.dirty
    second.save_as(tmp_path / "rescued.json")
    assert not second.autosave.path.exists()  # saved: nothing left to recover


def test_workflow_without_positions_gets_columns_by_depth(window, tmp_path):
    doc = json.loads(PRIMITIVES.read_text())
    for node in doc["nodes"].values():
        node.pop("layout")
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(doc))
    window.open_path(path, ask=False)
    layout = {n.id: n.layout for n in window.document.graph.nodes.values()}
    assert layout["colour"]["x"] == layout["shape"]["x"] == 0
    assert layout["colour"]["x"] < layout["prompt"]["x"] < layout["show_prompt"]["x"]
    assert layout["colour"]["y"] != layout["shape"]["y"]


def test_screenshot_mode_writes_an_image_of_the_window(tmp_path):
    import os
    import subprocess
    import sys

    from PySide6.QtGui import QImage

    from tests.ui.conftest import ROOT

    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "NODEGRAPH_DATA": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "nodegraph", "gui", str(PRIMITIVES), "--screenshot", str(shot)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1600, 960)


def test_recovery_file_of_a_running_editor_is_left_alone(window):
    import os

    window.document.add_node("core.Int")
    assert window.autosave.save_now()
    record = json.loads(window.autosave.path.read_text())
    assert record["pid"] == os.getpid()
    record["pid"] = os.getppid()  # a live process that is not us: another editor
    window.autosave.path.write_text(json.dumps(record))
    assert window.autosave.pending() is None
