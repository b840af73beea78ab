"""The shipped adapter workflows (LoRA, ControlNet, T2I-Adapter, dynamic thresholding) validate against the
registry and run end to end when pointed at tiny models and tiny adapter files under the shipped names
(sizes and step counts made small; the graphs are the shipped ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nodegraph.installed import default_registry
from nodegraph.validation import validate
from nodegraph.workflow import parse_workflow
from tests.input_policy import tmp_run_settings
from tests.nodes.sd_workflow_helpers import shrink_workflow

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
NAMES = ["sd15_lora", "sd15_controlnet_canny", "sd15_t2i_adapter", "sd15_dynamic_threshold", "sdxl_controlnet"]
TINY_CHECKPOINTS = {"v1-5-pruned-emaonly.safetensors": "tiny_sd15.safetensors", "sd_xl_base_1.0.safetensors": "tiny_sdxl.safetensors"}


def load(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NAMES)
def test_shipped_adapter_workflow_validates_against_the_registry(name):
    registry = default_registry()
    assert validate(parse_workflow(load(name), registry), registry) == []


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    from tests.nodes.control_files import controlnet_original_state, make_adapter, make_controlnet
    from tests.nodes.lora_files import TEXT_TARGETS, UNET_TARGETS, peft_adapter, write_kohya
    from tests.nodes.sd_workflow_helpers import checkpoint, make_executor, make_models_root, run_workflow

    root = make_models_root(tmp_path_factory.mktemp("models"))
    ex = make_executor(root)
    sd15 = run_workflow(ex, {"ckpt": checkpoint(ex, "sd15")}, ["ckpt"]).outputs["ckpt"]
    sdxl = run_workflow(ex, {"ckpt": checkpoint(ex, "sdxl")}, ["ckpt"]).outputs["ckpt"]
    unet = sd15["model"].unet
    write_kohya(root / "loras" / "sd15_watercolor_lora.safetensors", "sd15", peft_adapter(unet, UNET_TARGETS, 4, 4, 1),
                [peft_adapter(sd15["clip"].encoders[0], TEXT_TARGETS, 4, 4, 2)], unet.config)
    (root / "controlnet").mkdir(exist_ok=True)
    torch.save(controlnet_original_state(make_controlnet(unet, 3)), root / "controlnet" / "control_v11p_sd15_canny.pth")
    make_controlnet(sdxl["model"].unet, 4).save_pretrained(str(root / "controlnet" / "controlnet-canny-sdxl-1.0"))
    from tests.nodes.control_files import write_adapter_original

    sketch = write_adapter_original(root / "t2i_adapter" / "sketch.safetensors", make_adapter(5, in_channels=1))
    from safetensors.torch import load_file

    torch.save(load_file(str(sketch)), root / "t2i_adapter" / "t2iadapter_sketch_sd15v2.pth")
    return ex


@pytest.mark.parametrize("name", NAMES)
def test_shipped_adapter_workflow_runs_on_tiny_models_and_saves_an_image(executor, name, tmp_path):
    from PIL import Image

    image_path = tmp_path / "input.png"
    Image.fromarray((np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)).save(image_path)
    doc = shrink_workflow(load(name), image_path, TINY_CHECKPOINTS)
    result = executor.run(parse_workflow(doc, executor.registry), settings=tmp_run_settings(output_dir=tmp_path / "out"))
    (paths,) = [out["paths"] for out in result.outputs.values()]
    saved = Path(paths.splitlines()[0])
    assert saved.is_file() and Image.open(saved).size == (32, 32)
