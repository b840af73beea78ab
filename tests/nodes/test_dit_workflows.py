"""The shipped workflows pixart_txt2img, hunyuan_dit_txt2img and if_cascade run headless: the tiny folders are
written under the names the workflows load, and only sizes and step counts are made small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodegraph.context import RunSettings
from nodegraph.workflow import parse_workflow
from tests.fixtures.tiny_dit import write_hunyuan, write_if_stage_1, write_if_stage_2, write_pixart
from tests.nodes.dit_helpers import make_executor, one_thread  # noqa: F401 (one_thread: autouse)

pytest.importorskip("diffusers")

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
FOLDER_WRITERS = {"PixArt-XL-2-1024-MS": write_pixart, "HunyuanDiT-v1.2-Diffusers": write_hunyuan,
                  "IF-I-XL-v1.0": write_if_stage_1, "IF-II-L-v1.0": write_if_stage_2}
SMALL = {"core.EmptyLatentImage": {"width": 64, "height": 64}, "core.EmptyLatentForModel": {"width": 16, "height": 16},
         "core.KSampler": {"steps": 2}}


def shrink(doc: dict) -> dict:
    for entry in doc["nodes"].values():
        entry.setdefault("params", {}).update(SMALL.get(entry["type"], {}))
    return doc


@pytest.mark.parametrize("name", ["pixart_txt2img", "hunyuan_dit_txt2img", "if_cascade"])
def test_shipped_workflow_runs_and_saves_an_image(name, tmp_path):
    doc = shrink(json.loads((WORKFLOWS / f"{name}.json").read_text()))
    for entry in doc["nodes"].values():
        if entry["type"] == "core.DiffusersModelLoader":
            folder = entry["params"]["model_name"]
            FOLDER_WRITERS[folder](tmp_path / "models" / "checkpoints" / folder)
    executor = make_executor(tmp_path / "models")
    workflow = parse_workflow(doc, executor.registry)
    result = executor.run(workflow, ["save"], settings=RunSettings(output_dir=tmp_path / "out", workflow=doc))
    saved = [Path(p) for p in result.outputs["save"]["paths"].splitlines()]
    assert len(saved) == 1 and saved[0].is_file()
    from PIL import Image

    expected = 64 if name != "if_cascade" else 16 * 4
    assert Image.open(saved[0]).size == (expected, expected)
