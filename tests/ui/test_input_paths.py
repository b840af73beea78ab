"""The editor reads a workflow's relative input paths beside the open workflow file (as the command line does),
and accepts absolute paths the person at the screen chose."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.ui.test_running import wait_for_run


def write_workflow(folder, path: str):
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": {
        "load": {"type": "core.LoadImage", "params": {"path": path}},
        "show": {"type": "core.Show", "inputs": {"value": ["load", "width"]}},
    }}
    target = folder / "flow.json"
    target.write_text(json.dumps(doc))
    return target


def test_a_relative_image_path_is_found_beside_the_open_workflow(window, qtbot, tmp_path, monkeypatch):
    flows = tmp_path / "flows"
    flows.mkdir()
    Image.fromarray(np.zeros((6, 10, 3), dtype=np.uint8)).save(flows / "pic.png")
    monkeypatch.chdir(tmp_path)  # not the workflow's folder
    assert window.open_path(write_workflow(flows, "pic.png"), ask=False)
    window.run()
    wait_for_run(qtbot, window)
    assert window.canvas.views["show"].result_text.get_value() == "10"


def test_an_absolute_path_chosen_in_the_editor_may_lie_anywhere(window, qtbot, tmp_path):
    elsewhere = tmp_path / "pictures"
    elsewhere.mkdir()
    Image.fromarray(np.zeros((6, 12, 3), dtype=np.uint8)).save(elsewhere / "pic.png")
    flows = tmp_path / "flows"
    flows.mkdir()
    assert window.open_path(write_workflow(flows, str(elsewhere / "pic.png")), ask=False)
    window.run()
    wait_for_run(qtbot, window)
    assert window.canvas.views["show"].result_text.get_value() == "12"
