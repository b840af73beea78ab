"""The editor opens ComfyUI workflows: Open and drop detect them by content, the import report goes to the log,
and saving never overwrites the ComfyUI file."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QMessageBox

from tests.engine.comfy_helpers import FIXTURES, fixture, png_with_texts

Button = QMessageBox.StandardButton


def test_opening_a_comfyui_json_imports_it_and_logs_the_report(window):
    source = FIXTURES / "ui_v04_features.json"
    assert window.open_path(source, ask=False)
    graph = window.document.graph
    assert graph["3"].type == "comfy.KSampler" and "6" in window.canvas.views
    assert window.document.path is None and window.document.dirty  # Save asks for a new name
    log = window.log_view.toPlainText()
    assert "ComfyUI UI format (schema 0.4)" in log and "FaceDetailer" in log and "comfyui-impact-pack" in log


def test_a_dropped_comfyui_png_opens_its_workflow_instead_of_becoming_a_load_image_node(window, tmp_path):
    png = tmp_path / "ComfyUI_00001_.png"
    png.write_bytes(png_with_texts({"workflow": json.dumps(fixture("ui_v1_nested.json"))}))
    window.open_dropped([str(png)], (0.0, 0.0))
    graph = window.document.graph
    assert "20:1" in graph.nodes and graph["3"].type == "comfy.KSamplerAdvanced"
    assert not any(n.type == "core.LoadImage" for n in graph.nodes.values())


def test_a_file_that_is_no_workflow_is_refused_with_its_problem(window, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args[2]))
    source = tmp_path / "notes.json"
    source.write_text('{"todo": []}')
    assert not window.open_path(source, ask=False)
    assert "neither a nodegraph nor a ComfyUI workflow" in shown[0]
