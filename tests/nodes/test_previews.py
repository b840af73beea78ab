"""Live sampler previews: they arrive during a run at the asked pace, look like the final image, and exist for
every model family (fitted latent -> RGB maps for the demo and other VAEs, published factors for SD1.5/SDXL)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nodegraph.context import RunSettings
from nodegraph.events import NodeProgress
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.runtime import Runtime
from nodegraph.workflow import load_workflow, parse_workflow
from nodes.sampling import previews
from nodes.sampling.latent_rgb import PUBLISHED, LatentRGB, fit_latent_rgb, standard_vae_kind
from nodes.sampling.refit_preview import RefittingLatentRGB
from nodes.sd.families import load_config

ROOT = Path(__file__).resolve().parents[2]
# Correlation of the last preview with the decoded image (pooled to the preview's size). Measured on the demo
# model's txt2img workflow: 0.98 (seed 1, 20 DDIM steps, batch 4; the first preview 0.38); the test shortens it
# to 10 steps, batch 2 (0.98). The demo VAE's global fitted map alone reaches 0.28: the refit makes the rest.
MIN_CORRELATION = 0.8


def _demo_run(tmp_path: Path, interval: float | None, steps: int = 10, batch: int = 2) -> tuple[dict, list]:
    registry = default_registry()
    graph = load_workflow(ROOT / "workflows" / "txt2img.json", registry)
    graph.nodes["sampler"].params["steps"] = steps
    graph.nodes["latent"].params["batch_size"] = batch
    events: list[tuple[float, NodeProgress]] = []

    def record(event):
        if isinstance(event, NodeProgress) and event.node == "sampler":
            events.append((time.monotonic(), event))

    executor = Executor(registry, runtime=Runtime("cpu"), folders=ModelFolders.from_environment())
    result = executor.run(graph, ["decode", "sampler"], on_event=record,
                          settings=RunSettings(output_dir=tmp_path, preview_interval=interval))
    return result.outputs, events


@pytest.fixture(scope="module")
def every_step(tmp_path_factory):
    return _demo_run(tmp_path_factory.mktemp("previews"), interval=0.0)


def test_every_step_brings_a_preview_when_the_interval_is_zero(every_step):
    _, events = every_step
    assert [e.step for _, e in events] == list(range(1, 11))
    assert all(e.preview is not None for _, e in events)
    # a batch of two 8x8 latents is shown side by side: 8 x 16 pixels, RGB in 0..1
    assert {e.preview.shape for _, e in events} == {(8, 16, 3)}
    assert all(0.0 <= e.preview.min() and e.preview.max() <= 1.0 for _, e in events)


def test_last_preview_looks_like_the_decoded_image(every_step):
    outputs, events = every_step
    image = outputs["decode"]["image"]  # [2, 64, 64, 3]
    pooled = torch.nn.functional.avg_pool2d(image.permute(0, 3, 1, 2), 8).permute(0, 2, 3, 1)
    expected = previews.grid(pooled)
    last = events[-1][1].preview
    correlation = float(np.corrcoef(last.ravel(), expected.ravel())[0, 1])
    assert correlation > MIN_CORRELATION
    first = events[0][1].preview  # the first estimate is far from the end: the measure can tell them apart
    assert float(np.corrcoef(first.ravel(), expected.ravel())[0, 1]) < correlation


def test_previews_are_throttled_by_time(tmp_path):
    interval = 0.05
    _, events = _demo_run(tmp_path, interval=interval, steps=12, batch=1)
    sent = [(t, e) for t, e in events if e.preview is not None]
    assert [e.step for _, e in events] == list(range(1, 13))  # progress still comes every step
    assert sent[0][1].step == 1 and sent[-1][1].step == 12  # the first estimate and the final one
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sent[:-1])]  # the last one is sent whatever the time
    assert all(gap >= interval * 0.9 for gap in gaps)
    elapsed = events[-1][0] - events[0][0]
    assert len(sent) <= 2 + elapsed / interval


def test_no_preview_is_computed_unless_the_run_asks(tmp_path):
    _, events = _demo_run(tmp_path, interval=None, steps=3, batch=1)
    assert [e.step for _, e in events] == [1, 2, 3] and all(e.preview is None for _, e in events)


def test_fitted_map_of_the_demo_vae_is_cached_with_the_vae(tmp_path):
    registry = default_registry()
    graph = load_workflow(ROOT / "workflows" / "txt2img.json", registry)
    executor = Executor(registry, runtime=Runtime("cpu"), folders=ModelFolders.from_environment())
    outputs = executor.run(graph, ["checkpoint"]).outputs["checkpoint"]
    model, vae = outputs["model"], outputs["vae"]
    assert standard_vae_kind(vae.vae.config) is None  # the demo VAE is its own: no published factors fit it
    first = previews.preview_map(model)
    assert isinstance(first, LatentRGB) and first.source == "fitted" and first.channels == 4
    assert previews.preview_map(model) is first  # fitted once per VAE
    # the fit is a property of the decoder: the same VAE gives the same map
    again = fit_latent_rgb(vae.vae, vae.scaling_factor)
    assert torch.allclose(again.factors, first.factors) and torch.allclose(again.bias, first.bias)


def test_released_vaes_are_recognised_from_their_configs():
    assert standard_vae_kind(load_config("sd15", "vae")) == "sd15"
    assert standard_vae_kind(load_config("sdxl", "vae")) == "sdxl"
    configs = ROOT / "nodes" / "mmdit" / "configs"
    assert standard_vae_kind(json.loads((configs / "flux_vae.json").read_text())) == "flux"
    assert standard_vae_kind(json.loads((configs / "sd3_vae.json").read_text())) == "sd3"
    assert {kind: len(factors) for kind, (factors, _) in PUBLISHED.items()} == {"sd15": 4, "sdxl": 4, "sd3": 16, "flux": 16}
    tiny = dict(load_config("sd15", "vae"), block_out_channels=[8, 16, 16, 16])
    assert standard_vae_kind(tiny) is None


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_tiny_model_without_a_vae_previews_with_its_familys_published_factors(family, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from tests.fixtures.tiny_sd import write_tiny_checkpoint

    folder = tmp_path / "models" / "checkpoints"
    full = write_tiny_checkpoint(tmp_path / "full.safetensors", family)
    with safe_open(str(full), framework="pt") as handle:  # a pruned checkpoint: no first_stage_model.* weights
        tensors = {k: handle.get_tensor(k) for k in handle.keys() if not k.startswith("first_stage_model.")}
        metadata = handle.metadata()
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "novae.safetensors"), metadata=metadata)
    encode = "core.CLIPTextEncode" if family == "sd15" else "core.CLIPTextEncodeSDXL"
    nodes = {
        "ckpt": {"type": "core.CheckpointLoader", "params": {"ckpt_name": "novae.safetensors"}},
        "pos": {"type": encode, "params": {"text": "a cat"} if family == "sd15" else {"text_g": "a cat", "text_l": "a cat"},
                "inputs": {"clip": ["ckpt", "clip"]}},
        "neg": {"type": encode, "params": {"text": ""} if family == "sd15" else {"text_g": "", "text_l": ""},
                "inputs": {"clip": ["ckpt", "clip"]}},
        "lat": {"type": "core.EmptyLatentImage", "params": {"width": 32, "height": 32}},
        "sampler": {"type": "core.KSampler", "params": {"steps": 3, "cfg": 2.0, "scheduler": "euler"},
                    "inputs": {"model": ["ckpt", "model"], "positive": ["pos", "conditioning"],
                               "negative": ["neg", "conditioning"], "latent_image": ["lat", "latent"]}},
    }
    registry = default_registry()
    graph = parse_workflow({"format": "nodegraph.workflow", "version": 1, "nodes": nodes}, registry)
    events = []
    executor = Executor(registry, runtime=Runtime("cpu", "fp32"), folders=ModelFolders([tmp_path / "models"]))
    result = executor.run(graph, ["sampler"], on_event=events.append, settings=RunSettings(preview_interval=0.0))
    latent = result.outputs["sampler"]["latent"]["samples"]
    last = [e for e in events if isinstance(e, NodeProgress) and e.preview is not None][-1].preview
    # Euler's last step lands on the estimate itself: the preview is the published map of the result
    factors, bias = (torch.tensor(v, dtype=torch.float32) for v in PUBLISHED[family])
    expected = ((torch.einsum("bchw,cd->bhwd", latent, factors) + bias + 1) / 2).clamp(0, 1)[0].numpy()
    assert np.allclose(last, expected, atol=1e-4)


DIT_WORKFLOWS = {"pixart_txt2img": (8, 8), "hunyuan_dit_txt2img": (8, 8), "if_cascade": None}


@pytest.mark.parametrize("name", sorted(DIT_WORKFLOWS))
def test_dit_and_pixel_space_families_send_previews(name, tmp_path):
    from tests.nodes.test_dit_workflows import FOLDER_WRITERS, shrink

    doc = shrink(json.loads((ROOT / "workflows" / f"{name}.json").read_text()))
    for entry in doc["nodes"].values():
        if entry["type"] == "core.DiffusersModelLoader":
            folder = entry["params"]["model_name"]
            FOLDER_WRITERS[folder](tmp_path / "models" / "checkpoints" / folder)
    registry = default_registry()
    executor = Executor(registry, runtime=Runtime("cpu", "fp32"), folders=ModelFolders([tmp_path / "models"]))
    events = []
    executor.run(parse_workflow(doc, registry), ["save"], on_event=events.append,
                 settings=RunSettings(output_dir=tmp_path / "out", preview_interval=0.0))
    shapes: dict[str, set] = {}
    for event in events:
        if isinstance(event, NodeProgress) and event.preview is not None:
            shapes.setdefault(event.node, set()).add(event.preview.shape)
    assert shapes, "no previews"
    if DIT_WORKFLOWS[name] is not None:  # a latent preview: one pixel per latent cell
        assert set().union(*shapes.values()) == {(*DIT_WORKFLOWS[name], 3)}
    else:  # IF samples pixels: stage I at 16 px, stage II at 64 px
        assert set().union(*shapes.values()) == {(16, 16, 3), (64, 64, 3)}


@pytest.mark.parametrize("name", ["flux_dev_txt2img", "sd3_medium_txt2img"])
def test_flux_and_sd3_send_previews_of_their_sixteen_channel_latents(name, tmp_path, flux_dev_folder, sd35_medium_folder):
    from tests.nodes.flow_fixtures import link

    root = tmp_path / "models"
    link(flux_dev_folder, root, "FLUX.1-dev")
    link(sd35_medium_folder, root, "stable-diffusion-3-medium-diffusers")
    doc = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    for entry in doc["nodes"].values():
        entry.setdefault("params", {}).update(
            {"core.EmptyLatentForModel": {"width": 32, "height": 32}, "core.KSampler": {"steps": 2}}.get(entry["type"], {}))
    registry = default_registry()
    executor = Executor(registry, runtime=Runtime("cpu", "fp32"), folders=ModelFolders([root]))
    graph = parse_workflow(doc, registry)
    loader = next(n for n, e in doc["nodes"].items() if e["type"] == "core.FlowCheckpointLoader")
    events = []
    result = executor.run(graph, ["save", loader], on_event=events.append,
                          settings=RunSettings(output_dir=tmp_path / "out", preview_interval=0.0))
    shots = [e.preview for e in events if isinstance(e, NodeProgress) and e.preview is not None]
    assert len(shots) == 2 and {s.shape for s in shots} == {(4, 4, 3)}  # 32 px: 4x4 latent cells
    to_rgb = previews.preview_map(result.outputs[loader]["model"])
    assert isinstance(to_rgb, LatentRGB) and to_rgb.channels == 16 and to_rgb.source == "fitted"  # its own (tiny) VAE


def test_comfyui_ksampler_sends_previews_of_its_estimate_too(tmp_path):
    registry = default_registry()
    graph = load_workflow(ROOT / "workflows" / "txt2img.json", registry)
    node = graph.nodes["sampler"]
    node.type = "comfy.KSampler"
    node.params = {"seed": 1, "steps": 8, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}
    graph.nodes["latent"].params["batch_size"] = 1
    events = []
    executor = Executor(registry, runtime=Runtime("cpu"), folders=ModelFolders.from_environment())
    result = executor.run(graph, ["decode"], on_event=events.append,
                          settings=RunSettings(output_dir=tmp_path, preview_interval=0.0))
    shots = [e.preview for e in events if isinstance(e, NodeProgress) and e.node == "sampler" and e.preview is not None]
    assert len(shots) == 8 and shots[-1].shape == (8, 8, 3)
    image = result.outputs["decode"]["image"]
    pooled = torch.nn.functional.avg_pool2d(image.permute(0, 3, 1, 2), 8).permute(0, 2, 3, 1)
    assert float(np.corrcoef(shots[-1].ravel(), previews.grid(pooled).ravel())[0, 1]) > MIN_CORRELATION


def test_a_run_refits_the_demo_vaes_map_on_its_own_estimates(every_step):
    outputs, _ = every_step
    registry = default_registry()
    graph = load_workflow(ROOT / "workflows" / "txt2img.json", registry)
    executor = Executor(registry, runtime=Runtime("cpu"), folders=ModelFolders.from_environment())
    model = executor.run(graph, ["checkpoint"]).outputs["checkpoint"]["model"]
    latents = outputs["sampler"]["latent"]
    latents = latents["samples"] if isinstance(latents, dict) else latents
    image = outputs["decode"]["image"]
    decoded = torch.nn.functional.avg_pool2d(image.permute(0, 3, 1, 2), 8).permute(0, 2, 3, 1)

    def correlation(a: torch.Tensor) -> float:
        return float(np.corrcoef(a.numpy().ravel(), decoded.numpy().ravel())[0, 1])

    to_rgb = previews.run_preview_map(model)
    assert isinstance(to_rgb, RefittingLatentRGB)
    first = to_rgb(latents, exact=True)  # a real decode, pooled to one colour per latent cell
    assert torch.allclose(first, decoded.clamp(0, 1), atol=1e-4)
    between = to_rgb(latents)  # the linear map refitted on that decode
    assert to_rgb.current.source == "refitted"
    assert correlation(between) > 0.95 > correlation(previews.preview_map(model)(latents))


def test_the_last_preview_shows_what_the_sampler_returns_even_when_few_previews_came(tmp_path):
    # a long interval: only the first step and the last get a preview, so no refit has seen a late estimate
    outputs, events = _demo_run(tmp_path, interval=60.0, steps=10, batch=2)
    sent = [e for _, e in events if e.preview is not None]
    assert [e.step for e in sent] == [1, 10]
    image = outputs["decode"]["image"]
    expected = previews.grid(torch.nn.functional.avg_pool2d(image.permute(0, 3, 1, 2), 8).permute(0, 2, 3, 1))
    assert float(np.corrcoef(sent[-1].preview.ravel(), expected.ravel())[0, 1]) > 0.95
