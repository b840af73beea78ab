"""The shipped SD workflows validate against the registry and run end to end when pointed at tiny models
(model names, sizes and step counts swapped for small ones; the graph itself is the shipped one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nodegraph.installed import default_registry
from nodegraph.validation import validate
from nodegraph.workflow import parse_workflow
from tests.input_policy import tmp_run_settings
from tests.nodes.sd_workflow_helpers import shrink_workflow

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
NAMES = ["sd15_txt2img", "sd15_img2img", "sdxl_txt2img", "sdxl_base_refiner"]
TINY = {
    "v1-5-pruned-emaonly.safetensors": "tiny_sd15.safetensors",
    "sd_xl_base_1.0.safetensors": "tiny_sdxl.safetensors",
    "sd_xl_refiner_1.0.safetensors": "tiny_refiner.safetensors",
}


def load(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NAMES)
def test_shipped_workflow_validates_and_names_models_by_file_name(name):
    doc = load(name)
    assert validate(parse_workflow(doc, default_registry()), default_registry()) == []
    loaders = [n for n in doc["nodes"].values() if n["type"] == "core.CheckpointLoader"]
    assert loaders and all(n["params"]["ckpt_name"] in TINY for n in loaders)


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    from tests.nodes.sd_workflow_helpers import make_executor, make_models_root

    return make_executor(make_models_root(tmp_path_factory.mktemp("models")))


@pytest.mark.parametrize("name", NAMES)
def test_shipped_workflow_runs_on_tiny_models_and_saves_an_image(executor, name, tmp_path):
    from PIL import Image

    image_path = tmp_path / "input.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(image_path)
    doc = shrink_workflow(load(name), image_path, TINY)
    result = executor.run(parse_workflow(doc, executor.registry), settings=tmp_run_settings(output_dir=tmp_path / "out"))
    (paths,) = [out["paths"] for out in result.outputs.values()]
    saved = Path(paths.splitlines()[0])
    assert saved.is_file() and Image.open(saved).size == (32, 32)
