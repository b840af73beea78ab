"""ComfyUI's ControlNet nodes on tiny models: one loader for ControlNets and T2I-Adapters, the apply nodes'
strength and noise-level window, and the old apply node acting on the negative side too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodegraph.comfy import import_api_prompt
from tests.nodes.sd_workflow_helpers import CHECKPOINT_NAMES

CONTROLNET, ADAPTER = "tiny_controlnet.safetensors", "tiny_adapter.safetensors"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from PIL import Image

    from tests.nodes.comfy_models import sd15_executor
    from tests.nodes.control_files import (
        make_adapter,
        make_controlnet,
        write_adapter_original,
        write_controlnet_original,
    )
    from tests.nodes.sd_workflow_helpers import checkpoint, run_workflow

    root = tmp_path_factory.mktemp("models")
    executor = sd15_executor(root)
    unet = run_workflow(executor, {"ckpt": checkpoint(executor, "sd15")}, ["ckpt"]).outputs["ckpt"]["model"].unet
    write_controlnet_original(root / "controlnet" / CONTROLNET, make_controlnet(unet, seed=3, std=0.5))
    write_adapter_original(root / "controlnet" / ADAPTER, make_adapter(seed=4))
    image = root / "hint.png"
    Image.fromarray((np.random.default_rng(0).random((48, 40, 3)) * 255).astype(np.uint8)).save(image)
    return executor, image


def prompt(image, control: dict | None) -> dict:
    graph = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT_NAMES["sd15"]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 1}},
        "20": {"class_type": "LoadImage", "inputs": {"image": str(image)}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 2, "steps": 3, "cfg": 4.0, "sampler_name": "euler",
                                                    "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                                    "positive": ["6", 0], "negative": ["7", 0],
                                                    "latent_image": ["5", 0]}},
    }
    if control is not None:
        graph.update(control)
    return graph


def advanced(name: str, strength: float = 1.0, start: float = 0.0, end: float = 1.0) -> dict:
    return {
        "30": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": name}},
        "31": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["6", 0], "negative": ["7", 0], "control_net": ["30", 0], "image": ["20", 0],
            "strength": strength, "start_percent": start, "end_percent": end}},
    }


def latent(setup, control: dict | None) -> torch.Tensor:
    executor, image = setup
    graph = prompt(image, control)
    if control and "31" in control:
        graph["3"]["inputs"].update(positive=["31", 0], negative=["31", 1])
    elif control and "32" in control:
        graph["3"]["inputs"]["positive"] = ["32", 0]
    return executor.run(import_api_prompt(graph, executor.registry).graph, ["3"]).outputs["3"]["latent"]["samples"]


def test_one_loader_reads_controlnets_and_t2i_adapters(setup):
    executor, image = setup
    outputs = executor.run(import_api_prompt(prompt(image, advanced(CONTROLNET)), executor.registry).graph,
                           ["30"]).outputs
    assert hasattr(outputs["30"]["control_net"], "model")
    outputs = executor.run(import_api_prompt(prompt(image, advanced(ADAPTER)), executor.registry).graph,
                           ["30"]).outputs
    assert hasattr(outputs["30"]["control_net"], "adapter")


@pytest.mark.parametrize("name", [CONTROLNET, ADAPTER])
def test_the_control_changes_the_image_and_strength_zero_does_not(setup, name):
    base = latent(setup, None)
    assert torch.equal(latent(setup, advanced(name, strength=0.0)), base)
    assert (latent(setup, advanced(name)) - base).abs().max() > 1e-3


def test_start_and_end_percents_are_noise_levels(setup):
    base, full = latent(setup, None), latent(setup, advanced(CONTROLNET))
    # 1.0..1.0 is noise level 0, which no model call sees: no effect at all
    torch.testing.assert_close(latent(setup, advanced(CONTROLNET, start=1.0, end=1.0)), base)
    # up to 5%: the first step only (sigma 14.6 is above sigma(949)); from 5% on: every step but the first
    early = latent(setup, advanced(CONTROLNET, end=0.05))
    late = latent(setup, advanced(CONTROLNET, start=0.05))
    for partial in (early, late):
        assert (partial - base).abs().max() > 1e-4 and (partial - full).abs().max() > 1e-4


def test_the_old_apply_node_acts_on_the_negative_side_too(setup):
    control = {
        "30": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CONTROLNET}},
        "32": {"class_type": "ControlNetApply", "inputs": {"conditioning": ["6", 0], "control_net": ["30", 0],
                                                            "image": ["20", 0], "strength": 1.0}},
    }
    both = latent(setup, advanced(CONTROLNET))
    torch.testing.assert_close(latent(setup, control), both)
