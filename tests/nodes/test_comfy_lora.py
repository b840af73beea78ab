"""ComfyUI's LoRA arithmetic: merged weights, the text encoder's patched weights rounded to fp16, the shared
modules left as they were, and agreement with the product's own (peft, run-time) LoRA up to that rounding."""

from __future__ import annotations

import pytest
import torch

from nodegraph.comfy import import_api_prompt
from tests.nodes.lora_files import TEXT_TARGETS, UNET_TARGETS, peft_adapter, write_kohya
from tests.nodes.sd_workflow_helpers import CHECKPOINT_NAMES

LORA = "tiny_comfy_lora.safetensors"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from tests.nodes.comfy_models import sd15_executor
    from tests.nodes.sd_workflow_helpers import checkpoint, run_workflow

    root = tmp_path_factory.mktemp("models")
    executor = sd15_executor(root)
    outputs = run_workflow(executor, {"ckpt": checkpoint(executor, "sd15")}, ["ckpt"]).outputs["ckpt"]
    unet = outputs["model"].unet
    adapter = peft_adapter(unet, UNET_TARGETS, rank=4, alpha=2, seed=7)
    encoders = [peft_adapter(e, TEXT_TARGETS, rank=4, alpha=2, seed=8) for e in outputs["clip"].encoders]
    write_kohya(root / "loras" / LORA, "sd15", adapter, encoders, unet.config)
    return executor


def prompt(loader: str, strength_model: float = 0.8, strength_clip: float = 0.6) -> dict:
    inputs = {"lora_name": LORA, "strength_model": strength_model, "model": ["4", 0]}
    if loader == "LoraLoader":
        inputs.update(strength_clip=strength_clip, clip=["4", 1])
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT_NAMES["sd15"]}},
        "10": {"class_type": loader, "inputs": inputs},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle", "clip": ["10", 1] if loader == "LoraLoader" else ["4", 1]}},
    }


def test_patched_text_encoder_weights_are_merged_in_float32_and_rounded_to_fp16(setup):
    from nodes.adapters.lora import read_lora

    graph = import_api_prompt(prompt("LoraLoader"), setup.registry).graph
    outputs = setup.run(graph, ["4", "10"]).outputs
    clip = outputs["10"]["clip"]
    encoder = clip.encoders[0]
    (patch,) = clip.patches
    (part,) = patch.parts
    name, lora = next(iter(part.weights.items()))
    weight = dict(encoder.named_modules())[name].weight
    before = weight.detach().clone()
    file = read_lora(setup.folders.resolve("loras", LORA))
    assert file.layout == "kohya"
    expected = (before.float() + 0.6 * (lora.alpha / lora.rank) * (lora.up.float() @ lora.down.float())).half().float()
    with patch.applied(encoder):
        torch.testing.assert_close(weight.detach(), expected, rtol=0, atol=0)
    assert torch.equal(weight.detach(), before)  # the shared module is back as it was


def test_merged_unet_lora_agrees_with_the_products_runtime_lora(setup):
    sampler = {"seed": 4, "steps": 2, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}
    p = prompt("LoraLoaderModelOnly")
    p["5"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 1}}
    p["3"] = {"class_type": "KSampler", "inputs": {**sampler, "model": ["10", 0], "positive": ["6", 0],
                                                    "negative": ["6", 0], "latent_image": ["5", 0]}}
    graph = import_api_prompt(p, setup.registry).graph

    def latent() -> torch.Tensor:
        return setup.run(graph, ["3"]).outputs["3"]["latent"]["samples"]

    merged = latent()
    graph["10"].type = "core.LoraLoaderModelOnly"  # the same LoRA through peft's layers at run time
    runtime = latent()
    graph["3"].inputs["model"] = ("4", "model")  # and without the LoRA
    base = latent()
    torch.testing.assert_close(merged, runtime, rtol=1e-4, atol=1e-4)
    assert (merged - base).abs().max() > 1e-2  # the LoRA did change the image


def test_the_conditioning_differs_from_the_runtime_lora_only_by_the_fp16_rounding(setup):
    graph = import_api_prompt(prompt("LoraLoader", 1.0, 1.0), setup.registry).graph
    merged = setup.run(graph, ["6"]).outputs["6"]["conditioning"][0].embeds
    graph["10"].type = "core.LoraLoader"
    runtime = setup.run(graph, ["6"]).outputs["6"]["conditioning"][0].embeds
    difference = float((merged - runtime).abs().max())
    assert 0 < difference < 1e-2


def test_strength_zero_adds_no_patch(setup):
    graph = import_api_prompt(prompt("LoraLoader", 0.0, 0.0), setup.registry).graph
    outputs = setup.run(graph, ["4", "10"]).outputs
    assert outputs["10"]["model"] is outputs["4"]["model"] and outputs["10"]["clip"] is outputs["4"]["clip"]
