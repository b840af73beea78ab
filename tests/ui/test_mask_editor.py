"""The mask editor: painting with the mouse, erasing, filling, undo/redo, saving beside the image (never over a
file), reopening, and its hooks into the window (a Load Image node's Edit Mask…, the Images panel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialog


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "inputs" / "cat.png"
    path.parent.mkdir()
    Image.fromarray(np.full((96, 128, 3), 120, np.uint8)).save(path)
    return path


@pytest.fixture(autouse=True)
def _discard_without_asking(monkeypatch):
    """Closing an edited mask asks before discarding; at teardown nobody is there to answer."""
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Discard)


@pytest.fixture
def editor(qtbot, picture):
    from ui.mask_editor import MaskEditor

    dialog = MaskEditor(picture)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.view.resetTransform()  # 1:1, so view pixels are image pixels (plus the scroll offset)
    dialog.view.centerOn(64, 48)
    return dialog


def at(editor, x: float, y: float) -> QPoint:
    return editor.view.mapFromScene(x, y)


def drag(qtbot, editor, points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton) -> None:
    viewport = editor.view.viewport()
    qtbot.mousePress(viewport, button, pos=at(editor, *points[0]))
    for x, y in points[1:]:
        qtbot.mouseMove(viewport, at(editor, x, y))
    qtbot.mouseRelease(viewport, button, pos=at(editor, *points[-1]))


def test_a_brush_stroke_paints_along_the_drag_and_undo_redo_step_through_strokes(qtbot, editor):
    editor.size_slider.setValue(10)
    editor.hardness_slider.setValue(100)
    drag(qtbot, editor, [(20, 40), (60, 40), (100, 40)])
    mask = editor.model.mask
    assert mask[40, 20:100].min() == 255  # solid along the stroke
    assert mask[40 - 8, 60] == 0 and mask[20, 20] == 0  # nothing beyond the brush
    assert 0.05 < (mask > 0).mean() < 0.15
    drag(qtbot, editor, [(60, 10), (60, 80)])
    assert mask[10:80, 60].min() == 255 if editor.model.mask is mask else editor.model.mask[10:80, 60].min() == 255
    editor.undo()
    assert editor.model.mask[20, 60] == 0 and editor.model.mask[40, 30] == 255
    editor.undo()
    assert not editor.model.mask.any() and not editor.buttons["undo"].isEnabled()
    editor.redo()
    assert editor.model.mask[40, 30] == 255 and editor.buttons["redo"].isEnabled()


def test_soft_brush_fades_and_the_eraser_takes_paint_away(qtbot, editor):
    editor.size_slider.setValue(20)
    editor.hardness_slider.setValue(0)
    drag(qtbot, editor, [(64, 48)])
    mask = editor.model.mask
    assert mask[48, 64] >= 200 and 0 < mask[48, 64 + 7] < mask[48, 64 + 3] < 255
    editor.set_tool("eraser")
    editor.hardness_slider.setValue(100)
    drag(qtbot, editor, [(64, 48)])
    assert editor.model.mask[48, 64] == 0


def test_fill_fills_the_enclosed_area_and_invert_and_clear(qtbot, editor):
    editor.size_slider.setValue(4)
    editor.hardness_slider.setValue(100)
    ring = [(40 + 20 * np.cos(a), 48 + 20 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 64)]
    drag(qtbot, editor, ring)
    editor.set_tool("fill")
    drag(qtbot, editor, [(40, 48)])
    mask = editor.model.mask
    assert mask[48, 40] == 255 and mask[40, 45] == 255  # inside the ring
    assert mask[48, 100] == 0 and mask[5, 5] == 0  # outside it
    editor.invert()
    assert editor.model.mask[48, 40] == 0 and editor.model.mask[48, 100] == 255
    editor.clear()
    assert not editor.model.mask.any()
    editor.undo()
    assert editor.model.mask[48, 100] == 255


def test_right_drag_pans_and_the_wheel_zooms_without_painting(qtbot, editor):
    before = editor.view.horizontalScrollBar().value()
    editor.view.scale(4, 4)
    drag(qtbot, editor, [(64, 48), (40, 48)], button=Qt.MouseButton.RightButton)
    assert not editor.model.mask.any()
    assert editor.view.horizontalScrollBar().value() != before


def test_save_writes_a_new_file_beside_the_image_and_reopening_shows_the_mask(qtbot, editor, picture):
    from ui.mask_editor import MaskEditor

    (picture.parent / "cat_mask_0001.png").write_bytes(b"someone else's file")
    editor.size_slider.setValue(16)
    drag(qtbot, editor, [(30, 30), (90, 60)])
    painted = editor.model.mask.copy()
    editor.save()
    assert editor.result() == QDialog.DialogCode.Accepted
    saved = editor.saved_path
    assert saved == picture.parent / "cat_mask_0002.png"
    assert (picture.parent / "cat_mask_0001.png").read_bytes() == b"someone else's file"
    assert np.array_equal(np.asarray(Image.open(saved)), painted)
    assert not any(p.name.startswith(".mask-") for p in picture.parent.iterdir())  # no temporary left behind
    assert oct(saved.stat().st_mode & 0o777) != oct(0o600)  # the usual permissions, not mkstemp's
    reopened = MaskEditor(picture, saved)
    qtbot.addWidget(reopened)
    assert np.array_equal(reopened.model.mask, painted)
    drag(qtbot, reopened, [(5, 5)])
    reopened.save()
    assert reopened.saved_path.name == "cat_mask_0003.png"
    assert np.array_equal(np.asarray(Image.open(saved)), painted)  # the first mask is untouched


def test_a_read_only_image_folder_sends_the_mask_to_the_input_folder(qtbot, picture, tmp_path, monkeypatch):
    import os

    from ui.mask_editor import MaskEditor

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    os.chmod(picture.parent, 0o555)
    try:
        if os.access(picture.parent, os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        dialog = MaskEditor(picture)
        qtbot.addWidget(dialog)
        dialog.model.clear()
        dialog.save()
        assert dialog.saved_path.parent == tmp_path / "data" / "nodegraph" / "input"
    finally:
        os.chmod(picture.parent, 0o755)


def test_edit_mask_on_a_load_image_node_points_it_at_the_saved_mask_undoably(window, qtbot, picture, monkeypatch):
    from ui import mask_editor

    node_id = window.document.add_node("core.LoadImage", params={"path": str(picture)})
    menu = window.node_menu(node_id)
    assert "Edit Mask…" in [a.text() for a in menu.actions()]

    def paint_and_save(dialog):
        dialog.model.begin_stroke(50, 50, 20, 1.0, False)
        dialog.save()
        return dialog.result()

    monkeypatch.setattr(mask_editor.MaskEditor, "exec", paint_and_save)
    dialog = mask_editor.edit_node_mask(window, node_id)
    saved = window.document.graph.nodes[node_id].params["mask_path"]
    assert saved == str(dialog.saved_path) and Path(saved).parent == picture.parent
    window.document.undo_stack.undo()
    assert window.document.graph.nodes[node_id].params.get("mask_path", "") == ""
    window.document.undo_stack.redo()
    # the workflow runs headless with the mask: Load Image's mask output is the painted one
    from nodegraph.executor import Executor
    from tests.input_policy import tmp_run_settings

    result = Executor(window.registry).run(window.document.graph, [node_id], settings=tmp_run_settings()).outputs[node_id]
    assert result["mask"][0, 50, 50] == 1.0 and result["mask"][0, 5, 5] == 0.0


def test_the_images_panel_offers_to_inpaint_the_shown_image(window, qtbot, monkeypatch, tmp_path):
    from tests.ui.test_running import wait_for_run
    from ui import mask_editor

    window.document.add_node("test.Gradient", params={"width": 32, "height": 16})
    window.run()
    wait_for_run(qtbot, window)

    def save_at_once(dialog):
        dialog.model.begin_stroke(8, 8, 6, 1.0, False)
        dialog.save()
        return dialog.result()

    monkeypatch.setattr(mask_editor.MaskEditor, "exec", save_at_once)
    node_id = mask_editor.inpaint_image_from_panel(window)
    params = window.document.graph.nodes[node_id].params
    image, mask = Path(params["path"]), Path(params["mask_path"])
    from nodegraph.paths import user_input_dir

    assert image.parent == mask.parent == user_input_dir()
    assert Image.open(image).size == (32, 16) and Image.open(mask).size == (32, 16)
    first = (image.read_bytes(), mask.read_bytes())
    second_id = mask_editor.inpaint_image_from_panel(window)  # a second time: new files, nothing replaced
    second = window.document.graph.nodes[second_id].params
    assert second_id != node_id and {second["path"], second["mask_path"]}.isdisjoint({str(image), str(mask)})
    assert (image.read_bytes(), mask.read_bytes()) == first
