"""The shipped inpainting, outpainting and hires-fix workflows validate and run: the demo ones on the shipped demo
model and demo upscaler (with fewer steps), the SD1.5 ones pointed at tiny models and a tiny random upscaler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nodegraph.context import RunSettings
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import BUILTIN_ROOT, ModelFolders
from nodegraph.runtime import Runtime
from nodegraph.validation import validate
from nodegraph.workflow import parse_workflow
from tests.input_policy import tmp_run_settings
from tests.nodes.inpaint_helpers import CHECKPOINTS, shared_files
from tests.nodes.sd_workflow_helpers import shrink_workflow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ["demo_inpaint", "demo_outpaint", "demo_hires_fix", "demo_hires_fix_upscaler"]
SD15 = ["sd15_inpaint", "sd15_hires_fix", "sd15_hires_fix_upscaler"]


def load(name: str) -> dict:
    return json.loads((ROOT / "workflows" / f"{name}.json").read_text(encoding="utf-8"))


def run(doc: dict, folders: ModelFolders, output: Path, targets: list[str] | None = None, tmp_inputs: bool = False):
    """Run with the usual input folders (the demo images are found there), or reading the test's temporary files."""
    executor = Executor(default_registry(), runtime=Runtime(device="cpu", precision="fp32"), folders=folders)
    graph = parse_workflow(doc, executor.registry)
    settings = tmp_run_settings(output_dir=output) if tmp_inputs else RunSettings(output_dir=output)
    return executor.run(graph, targets, settings=settings).outputs


@pytest.mark.parametrize("name", DEMO + SD15)
def test_shipped_workflow_validates(name):
    assert validate(parse_workflow(load(name), default_registry()), default_registry()) == []


@pytest.fixture
def elsewhere(monkeypatch, tmp_path):
    """Run from another folder: the demo images are found in the shipped input folder, not beside the caller."""
    monkeypatch.chdir(tmp_path)


def demo(name: str) -> dict:
    doc = load(name)
    for node in doc["nodes"].values():
        if node["type"] == "core.KSampler":
            node["params"]["steps"] = 4
    return doc


def test_demo_inpaint_changes_only_the_masked_region(elsewhere, tmp_path):
    from PIL import Image

    outputs = run(demo("demo_inpaint"), ModelFolders([BUILTIN_ROOT]), tmp_path)
    saved = Path(outputs["save"]["paths"])
    result = np.asarray(Image.open(saved).convert("RGB"))
    source = np.asarray(Image.open(ROOT / "examples/images/demo_yellow_square.png").convert("RGB"))
    mask = np.asarray(Image.open(ROOT / "examples/images/demo_yellow_square_mask.png")) > 0
    assert np.array_equal(result[~mask], source[~mask])
    assert np.abs(result[mask].astype(int) - source[mask]).mean() > 10


def test_demo_outpaint_extends_the_picture_and_keeps_it(elsewhere, tmp_path):
    outputs = run(demo("demo_outpaint"), ModelFolders([BUILTIN_ROOT]), tmp_path, ["paste", "pad"])
    image = outputs["paste"]["image"]
    assert tuple(image.shape) == (1, 64, 96, 3)
    from PIL import Image

    from nodes.image.convert import pil_to_tensors

    source, _ = pil_to_tensors(Image.open(ROOT / "examples/images/demo_yellow_square.png"))
    mask = outputs["pad"]["mask"][0]
    kept = (mask == 0)[None, :, :, None].expand_as(image)
    assert torch.equal(image[kept], outputs["pad"]["image"][kept])
    assert torch.equal(outputs["pad"]["image"][0, :, :56], source[0, :, :56])  # the picture itself, before the seam


@pytest.mark.parametrize("name", ["demo_hires_fix", "demo_hires_fix_upscaler"])
def test_demo_hires_fix_doubles_the_size(elsewhere, tmp_path, name):
    outputs = run(demo(name), ModelFolders([BUILTIN_ROOT]), tmp_path, ["decode"])
    assert tuple(outputs["decode"]["image"].shape) == (1, 128, 128, 3)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    from safetensors.torch import save_file

    from tests.nodes.test_upscale import esrgan

    root = shared_files(tmp_path_factory)["models"]
    (root / "upscale_models").mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in esrgan(4).state_dict().items()}, str(root / "upscale_models" / "tiny_x2.safetensors"))
    return root


@pytest.mark.parametrize("name", SD15)
def test_sd15_workflow_runs_on_tiny_models(tiny_models, tmp_path, name):
    from PIL import Image

    image = tmp_path / "input.png"
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = 90
    rgba[..., 3] = 255
    rgba[8:24, 8:24, 3] = 0  # the transparent square is the mask
    Image.fromarray(rgba, "RGBA").save(image)
    names = {"v1-5-pruned-emaonly.safetensors": CHECKPOINTS[("sd15", 4)],
             "sd-v1-5-inpainting.safetensors": CHECKPOINTS[("sd15", 9)]}
    doc = shrink_workflow(load(name), image, names)
    for node in doc["nodes"].values():
        if node["type"] == "core.UpscaleModelLoader":
            node["params"]["model_name"] = "tiny_x2.safetensors"
        elif node["type"] == "core.ImageScale":
            node["params"].update(width=64, height=64)
    outputs = run(doc, ModelFolders([tiny_models]), tmp_path / "out", tmp_inputs=True)
    saved = Path(outputs["save"]["paths"])
    size = {"sd15_inpaint": (32, 32), "sd15_hires_fix": (64, 64), "sd15_hires_fix_upscaler": (64, 64)}[name]
    assert Image.open(saved).size == size


def test_the_inpainting_benchmark_runs_and_keeps_everything_outside_the_masks():
    """benchmarks/inpaint_quality.py on two cases and four steps: it runs through the nodes, and the composited
    results are the source pictures exactly outside the masks."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("inpaint_quality", ROOT / "benchmarks" / "inpaint_quality.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    results, cases = benchmark.evaluate(2, 4, routes=("noise_mask",))
    rows = results["noise_mask"]
    assert len(rows["hits"]) == len(cases) == 2 and rows["outside"] == [0.0, 0.0]
    assert "Set Latent Noise Mask | 2 |" in benchmark.table(results)[-1]
