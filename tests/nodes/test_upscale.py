"""Upscale models through spandrel: randomly initialised ESRGAN (RRDB) and SwinIR networks written as files the way
they are shared (a safetensors file; a .pth holding ``{"params": state_dict}`` as SwinIR's releases do), loaded by
Load Upscale Model and run by Upscale Image (using Model), tiled and untiled.

Tolerance stated for tiling: with an overlap of at least four times the network's reach (receptive radius), the
tiled result equals the untiled one within 1e-5 (float rounding of other convolution sizes). Memory: see
test_peak_memory_of_a_large_upscale_stays_within_the_stated_bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nodegraph.errors import NodeExecutionError
from nodegraph.events import NodeLog, NodeProgress
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.runtime import Runtime
from nodegraph.workflow import parse_workflow
from tests.input_policy import tmp_run_settings

TILE_TOLERANCE = 1e-5


def esrgan(seed: int = 0):
    from nodes.upscale.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    return ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=2)


def swinir(seed: int = 0):
    from nodes.upscale.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(seed)
    return SwinIR(img_size=16, patch_size=1, in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                  mlp_ratio=2.0, upscale=2, upsampler="pixelshuffledirect", resi_connection="1conv")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("models")
    folder = root / "upscale_models"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in esrgan().state_dict().items()}, str(folder / "esrgan_x2.safetensors"))
    torch.save({"params": swinir().state_dict()}, folder / "swinir_x2.pth")
    # not upscalers
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": torch.zeros(8, 4)},
              str(folder / "a_checkpoint.safetensors"))
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)},
              str(folder / "a_lora.safetensors"))
    torch.save({"params": swinir().state_dict(), "optimizer": Path("/")}, folder / "with_objects.pth")
    (folder / "text.pth").write_text("not a weights file")
    return root


def executor(models: Path) -> Executor:
    return Executor(default_registry(), runtime=Runtime(device="cpu", precision="fp32"), folders=ModelFolders([models]))


def run(models: Path, nodes: dict, targets: list[str], events: list | None = None):
    ex = executor(models)
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
    return ex.run(parse_workflow(doc, ex.registry), targets, settings=tmp_run_settings(),
                  on_event=events.append if events is not None else None).outputs


def upscale_nodes(model_name: str, image: torch.Tensor, tile: int, overlap: int) -> dict:
    return {
        "loader": {"type": "core.UpscaleModelLoader", "params": {"model_name": model_name}},
        "image": {"type": "test.Constant", "params": {}},
        "upscale": {"type": "core.ImageUpscaleWithModel", "params": {"tile_size": tile, "overlap": overlap},
                    "inputs": {"upscale_model": ["loader", "upscale_model"], "image": ["image", "image"]}},
    }


def upscale(models: Path, name: str, image: torch.Tensor, tile: int, overlap: int, events: list | None = None):
    from nodes.upscale.loading import load_upscale_model
    from nodes.upscale.tiling import upscale_image

    model = load_upscale_model(models / "upscale_models" / name)
    return upscale_image(model.descriptor, image, tile, overlap,
                         progress=(lambda i, n: events.append((i, n))) if events is not None else None)


def picture(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth shapes plus a little noise: like a photo, not like white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.stack([np.sin(6 * xx + c) * np.cos(5 * yy - c) for c in (0.0, 1.0, 2.0)], -1) * 0.4 + 0.5
    image += rng.normal(0, 0.03, image.shape)
    return torch.from_numpy(np.clip(image, 0, 1).astype(np.float32))[None]


@pytest.mark.parametrize(("name", "tile", "overlap"), [("esrgan_x2.safetensors", 192, 80), ("swinir_x2.pth", 112, 52)])
def test_tiled_upscale_equals_the_untiled_one_when_the_overlap_covers_the_networks_reach(models, name, tile, overlap):
    image = picture(200, 328)
    whole = upscale(models, name, image, 4096, 0)
    progress: list = []
    tiled = upscale(models, name, image, tile, overlap, progress)
    assert tiled.shape == whole.shape == (1, 400, 656, 3)
    assert len(progress) >= 6 and progress[-1][0] == progress[-1][1]  # several tiles, each reported
    assert float((tiled - whole).abs().max()) <= TILE_TOLERANCE


def test_small_overlaps_blend_the_seams_away(models):
    """With an overlap below the network's reach tiles differ at their edges; the ramps keep the seam small."""
    image = picture(128, 128, seed=1)
    whole = upscale(models, "esrgan_x2.safetensors", image, 4096, 0)
    plain = upscale(models, "esrgan_x2.safetensors", image, 64, 0)  # no overlap: hard seams
    blended = upscale(models, "esrgan_x2.safetensors", image, 64, 16)
    assert float((blended - whole).abs().max()) < float((plain - whole).abs().max())


def test_upscale_workflow_with_progress_and_a_note_when_one_tile_covers_the_image(models):
    events: list = []
    nodes = {
        "loader": {"type": "core.UpscaleModelLoader", "params": {"model_name": "swinir_x2.pth"}},
        "load": {"type": "core.SolidMask", "params": {"value": 0.5, "width": 40, "height": 24}},
        "image": {"type": "core.MaskToImage", "inputs": {"mask": ["load", "mask"]}},
        "upscale": {"type": "core.ImageUpscaleWithModel", "params": {"tile_size": 512, "overlap": 32},
                    "inputs": {"upscale_model": ["loader", "upscale_model"], "image": ["image", "image"]}},
    }
    out = run(models, nodes, ["upscale"], events)["upscale"]["image"]
    assert out.shape == (1, 48, 80, 3) and out.min() >= 0 and out.max() <= 1
    messages = [e.message for e in events if isinstance(e, NodeLog)]
    assert any("SwinIR x2" in m for m in messages) and any("in one piece" in m for m in messages)
    assert any(isinstance(e, NodeProgress) and e.node == "upscale" for e in events)


@pytest.mark.parametrize(("name", "message"), [
    ("a_checkpoint.safetensors", "not an upscale model .* a Stable Diffusion checkpoint"),
    ("a_lora.safetensors", "not an upscale model .* a LoRA"),
    ("with_objects.pth", "holds Python objects besides tensors, which are not loaded"),
    ("text.pth", "not a readable PyTorch weights file"),
])
def test_files_that_are_not_upscale_models_get_a_clear_error(models, name, message):
    nodes = {"loader": {"type": "core.UpscaleModelLoader", "params": {"model_name": name}}}
    with pytest.raises(NodeExecutionError, match=message) as info:
        run(models, nodes, ["loader"])
    assert info.value.__cause__.field == "model_name"


def test_an_overlap_of_half_the_tile_is_refused_before_any_work(models):
    nodes = {
        "loader": {"type": "core.UpscaleModelLoader", "params": {"model_name": "esrgan_x2.safetensors"}},
        "mask": {"type": "core.SolidMask", "params": {"width": 8, "height": 8}},
        "image": {"type": "core.MaskToImage", "inputs": {"mask": ["mask", "mask"]}},
        "upscale": {"type": "core.ImageUpscaleWithModel", "params": {"tile_size": 64, "overlap": 32},
                    "inputs": {"upscale_model": ["loader", "upscale_model"], "image": ["image", "image"]}},
    }
    with pytest.raises(NodeExecutionError, match="less than half the tile size") as info:
        run(models, nodes, ["upscale"])
    assert info.value.__cause__.field == "overlap"


MEMORY_SCRIPT = r"""
import json, sys, threading, time, torch
torch.set_num_threads(1)
from pathlib import Path
from nodes.upscale.loading import load_upscale_model
from nodes.upscale.tiling import upscale_image
def anonymous():  # resident anonymous memory: what allocations hold (file pages of libraries excluded)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))
model = load_upscale_model(Path(sys.argv[1])).descriptor
image = torch.rand(1, int(sys.argv[2]), int(sys.argv[2]), 3)
upscale_image(model, image[:, :320, :320], int(sys.argv[3]), 16)  # warm up with the same tile shapes
before, peak, running = anonymous(), 0, True
def sample():
    global peak
    while running:
        peak = max(peak, anonymous())
        time.sleep(0.002)
sampler = threading.Thread(target=sample)
sampler.start()
out = upscale_image(model, image, int(sys.argv[3]), 16)
running = False
sampler.join()
print(json.dumps({"before": before, "peak": max(peak, anonymous()), "output": out.numel() * 4}))
"""


def test_peak_memory_of_a_large_upscale_stays_within_the_stated_bound(tmp_path):
    """Upscaling a 1024x1024 image x2 in 128-pixel tiles with a Real-ESRGAN compact network (SRVGGNetCompact, 16
    features): the peak of resident anonymous memory (RSS less library code, sampled every 2 ms) grows by at most 2.5x the output's float32 size (the result, one accumulator and its
    weights) plus 64 MB for one tile's activations, however large the image; the activations of an untiled run
    grow with the image instead (here 16 channels at 1024x1024: 64 MB per feature map)."""
    from safetensors.torch import save_file

    from nodes.upscale.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(2)
    network = Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2)
    path = tmp_path / "compact.safetensors"
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path), "1024", "128"], capture_output=True,
                          text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    growth = figures["peak"] - figures["before"]
    bound = 2.5 * figures["output"] + 64 * 2**20
    assert growth <= bound, f"peak RSS grew by {growth / 2**20:.0f} MB, bound {bound / 2**20:.0f} MB: {figures}"
