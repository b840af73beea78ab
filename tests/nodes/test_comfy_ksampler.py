"""ComfyUI's KSampler on tiny models: an imported API workflow runs, and its sampler reproduces the
procedure the ComfyUI reference README describes, written out independently below (about 30 lines, as
the README's own check did), on the same modules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nodegraph.comfy import import_api_prompt
from nodegraph.context import RunSettings
from nodegraph.workflow import to_document
from tests.nodes.sd_workflow_helpers import CHECKPOINT_NAMES

PROMPT, NEGATIVE = "a red circle on a blue background", "blurry"


def api_workflow(sampler: dict, latent: dict | None = None) -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT_NAMES["sd15"]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": latent or {"width": 32, "height": 32, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                                                    "latent_image": ["5", 0], **sampler}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    }


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    from tests.nodes.comfy_models import sd15_executor

    return sd15_executor(tmp_path_factory.mktemp("models"), ("sd15", "sdxl"))


def run(executor, prompt: dict, targets: list[str]) -> dict:
    graph = import_api_prompt(prompt, executor.registry).graph
    return executor.run(graph, targets).outputs


def readme_sampler(unet, cond, uncond, seed: int, steps: int, cfg: float, shape) -> torch.Tensor:
    """README, "What ComfyUI 0.8.0 does", for euler / normal from an empty latent, in float64 schedule math."""
    betas = np.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000, dtype=np.float64) ** 2
    ac = np.cumprod(1 - betas)
    table = np.sqrt((1 - ac) / ac).astype(np.float32)
    logs = np.log(table.astype(np.float64))
    t = np.linspace(999, 0, steps)
    low, high = np.floor(t).astype(int), np.ceil(t).astype(int)
    sigmas = [float(np.float32(np.exp((1 - (t - low)) * logs[low] + (t - low) * logs[high])[k])) for k in range(steps)] + [0.0]
    torch.manual_seed(seed)
    x = torch.randn(shape) * math.sqrt(1 + sigmas[0] ** 2)  # full denoise: noise * sqrt(1 + sigma_0^2)
    for i in range(steps):
        sigma = sigmas[i]
        timestep = int(np.abs(math.log(sigma) - np.log(table.astype(np.float64))).argmin())
        x_in = x / math.sqrt(sigma**2 + 1)
        eps = unet(torch.cat([x_in, x_in]), torch.tensor([float(timestep)] * 2),
                   encoder_hidden_states=torch.cat([cond, uncond]), return_dict=False)[0]
        denoised_c, denoised_u = x - eps[:1] * sigma, x - eps[1:] * sigma
        denoised = denoised_u + (denoised_c - denoised_u) * cfg
        x = x + (x - denoised) / sigma * (sigmas[i + 1] - sigma)
    return x


def test_ksampler_reproduces_the_readme_procedure_for_euler_normal(executor):
    sampler = {"seed": 11, "steps": 3, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}
    outputs = run(executor, api_workflow(sampler), ["3", "4", "6", "7"])
    ours = outputs["3"]["latent"]["samples"]
    unet = outputs["4"]["model"].unet
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        expected = readme_sampler(unet, outputs["6"]["conditioning"][0].embeds, outputs["7"]["conditioning"][0].embeds,
                                  11, 3, 6.0, tuple(ours.shape))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_a_split_advanced_run_equals_one_full_run_for_a_deterministic_sampler(executor):
    base = {"seed": 5, "steps": 4, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1.0}
    full = run(executor, api_workflow(base), ["3"])["3"]["latent"]["samples"]
    prompt = api_workflow(base)
    common = {"steps": 4, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "karras", "noise_seed": 5,
              "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0]}
    prompt["3"] = {"class_type": "KSamplerAdvanced", "inputs": {
        **common, "add_noise": "enable", "start_at_step": 0, "end_at_step": 2, "return_with_leftover_noise": "enable",
        "latent_image": ["5", 0]}}
    prompt["9"] = {"class_type": "KSamplerAdvanced", "inputs": {
        **common, "add_noise": "disable", "start_at_step": 2, "end_at_step": 10000,
        "return_with_leftover_noise": "disable", "latent_image": ["3", 0]}}
    split = run(executor, prompt, ["9"])["9"]["latent"]["samples"]
    # dpmpp_2m's second half starts without the first half's history, as in ComfyUI: first-order there
    assert not torch.equal(split, full)
    prompt["3"]["inputs"]["sampler_name"] = prompt["9"]["inputs"]["sampler_name"] = "euler"
    base["sampler_name"] = "euler"
    full_euler = run(executor, api_workflow(base), ["3"])["3"]["latent"]["samples"]
    torch.testing.assert_close(run(executor, prompt, ["9"])["9"]["latent"]["samples"], full_euler, rtol=1e-5, atol=1e-5)


def test_batch_images_take_consecutive_slices_of_one_noise_draw(executor):
    sampler = {"seed": 3, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}
    pair = run(executor, api_workflow(sampler, {"width": 32, "height": 32, "batch_size": 2}), ["3"])["3"]["latent"]["samples"]
    single = run(executor, api_workflow(sampler), ["3"])["3"]["latent"]["samples"]
    torch.testing.assert_close(pair[:1], single, rtol=1e-4, atol=1e-5)  # image 0: the first slice of seed 3's draw
    assert not torch.allclose(pair[1], pair[0], atol=1e-3)


def test_image_to_image_keeps_more_of_the_input_with_a_lower_denoise(executor):
    prompt = api_workflow({"seed": 2, "steps": 4, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal",
                           "denoise": 1.0})
    prompt["10"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["8", 0], "vae": ["4", 2]}}
    prompt["11"] = {"class_type": "KSampler", "inputs": {
        "seed": 9, "steps": 4, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal", "model": ["4", 0],
        "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["10", 0]}}
    changes = []
    for denoise in (0.3, 0.9):
        prompt["11"]["inputs"]["denoise"] = denoise
        outputs = run(executor, prompt, ["10", "11"])
        source, result = outputs["10"]["latent"]["samples"], outputs["11"]["latent"]["samples"]
        changes.append(float((result - source).abs().mean()))
    assert changes[0] < changes[1]


def test_a_noise_mask_keeps_the_latent_outside_the_mask(executor):
    from nodes.comfy.ksampler import ComfyDenoiser, KSamplerSettings, comfy_sample, ksampler_sigmas
    from nodes.comfy.samplers import choose_sampler
    from nodes.sampling.denoiser import UNetDenoiser
    from nodes.sampling.guidance import build_chain
    from nodes.sampling.sigmas import DiscreteSigmas

    outputs = run(executor, api_workflow({"seed": 1, "steps": 2, "cfg": 2.0, "sampler_name": "euler",
                                          "scheduler": "normal", "denoise": 1.0}), ["3", "4", "6", "7"])
    model, latent = outputs["4"]["model"], outputs["3"]["latent"]["samples"]
    mask = torch.zeros(1, 32, 32)
    mask[:, :, 16:] = 1.0  # repaint the right half
    for name in ("euler", "ddim"):
        settings = KSamplerSettings(seed=4, steps=3, cfg=2.0, sampler=choose_sampler(name), scheduler="normal")
        levels = DiscreteSigmas.from_scheduler_config(model.scheduler_config)
        sigmas = ksampler_sigmas(levels, settings)
        wrapper = ComfyDenoiser(UNetDenoiser(model.unet), levels, outputs["6"]["conditioning"],
                                outputs["7"]["conditioning"], 2.0, build_chain(2.0), sigmas, latent.shape, "cpu",
                                torch.float32)
        result = comfy_sample(wrapper, levels, {"samples": latent, "noise_mask": mask}, settings, sigmas, "cpu")
        torch.testing.assert_close(result[..., :2], latent[..., :2], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(result[..., 2:], latent[..., 2:], atol=1e-3)


def test_an_imported_workflow_runs_headless_and_saves_comfyuis_truncated_pixels(executor, tmp_path):
    from PIL import Image

    prompt = api_workflow({"seed": 8, "steps": 2, "cfg": 7.0, "sampler_name": "dpmpp_sde", "scheduler": "karras",
                           "denoise": 1.0})
    prompt["9"] = {"class_type": "SaveImage", "inputs": {"filename_prefix": "comfy/out", "images": ["8", 0]}}
    graph = import_api_prompt(prompt, executor.registry).graph
    settings = RunSettings(output_dir=tmp_path, workflow=to_document(graph))
    outputs = executor.run(graph, ["8", "9"], settings=settings).outputs
    saved = Image.open(outputs["9"]["paths"].splitlines()[0])
    image = outputs["8"]["image"][0].numpy()
    assert np.array_equal(np.asarray(saved), np.clip(255.0 * image, 0, 255).astype(np.uint8))
    rounded = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    assert not np.array_equal(np.asarray(saved), rounded)  # truncation, not the product's rounding
    # the PNG reopens here as the workflow, and in ComfyUI as the API prompt it came from
    assert "nodegraph.workflow" in saved.info and json.loads(saved.info["prompt"]) == prompt


def test_an_sdxl_workflow_samples_with_pooled_embeddings_and_size_conditioning(executor):
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINT_NAMES["sdxl"]}},
        "6": {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            "width": 1024, "height": 1024, "crop_w": 0, "crop_h": 0, "target_width": 1024, "target_height": 1024,
            "text_g": PROMPT, "text_l": PROMPT, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2, "cfg": 5.0, "sampler_name": "euler_ancestral",
                                                    "scheduler": "karras", "denoise": 1.0, "model": ["4", 0],
                                                    "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    }
    first = run(executor, prompt, ["3"])["3"]["latent"]["samples"]
    prompt["6"]["inputs"]["width"] = 512  # the size conditioning reaches the model
    second = run(executor, prompt, ["3"])["3"]["latent"]["samples"]
    assert first.shape == (1, 4, 4, 4) and torch.isfinite(first).all()
    assert not torch.allclose(first, second)
