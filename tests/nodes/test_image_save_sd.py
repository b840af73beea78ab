"""Save Image at the end of a real (tiny) SD1.5 text-to-image workflow: the PNG holds exactly the decoded
pixels, reopens as the workflow, and its A1111 text is read off the real loader, encoder and sampler nodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nodegraph.context import RunSettings
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.png_meta import png_text_chunks
from nodegraph.runtime import Runtime
from nodegraph.workflow import load_workflow, parse_workflow
from nodes.image.io import A1111_KEY, PARAMS_KEY
from tests.fixtures.tiny_sd import write_tiny_checkpoint


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    write_tiny_checkpoint(root / "checkpoints" / "tiny-sd15.safetensors", "sd15")
    return root


def _txt2img(prompt: str) -> dict:
    return {
        "format": "nodegraph.workflow", "version": 1,
        "nodes": {
            "ckpt": {"type": "core.CheckpointLoader", "params": {"ckpt_name": "tiny-sd15.safetensors"}},
            "pos": {"type": "core.CLIPTextEncode", "params": {"text": prompt}, "inputs": {"clip": ["ckpt", "clip"]}},
            "neg": {"type": "core.CLIPTextEncode", "params": {"text": "lowres"}, "inputs": {"clip": ["ckpt", "clip"]}},
            "empty": {"type": "core.EmptyLatentImage", "params": {"width": 64, "height": 48}},
            "seed": {"type": "core.Int", "params": {"value": 77}},
            "sample": {"type": "core.KSampler",
                       "params": {"steps": 2, "cfg": 5.0, "scheduler": "euler_ancestral"},
                       "inputs": {"model": ["ckpt", "model"], "positive": ["pos", "conditioning"],
                                  "negative": ["neg", "conditioning"], "latent_image": ["empty", "latent"],
                                  "seed": ["seed", "value"]}},
            "decode": {"type": "core.VAEDecode", "inputs": {"samples": ["sample", "latent"], "vae": ["ckpt", "vae"]}},
            "save": {"type": "core.SaveImage", "params": {"filename_prefix": "txt2img/tiny"},
                     "inputs": {"images": ["decode", "image"]}},
        },
    }


def test_sd15_workflow_png_holds_decoded_pixels_workflow_and_parameters(tmp_path: Path, models: Path) -> None:
    doc = _txt2img("a lighthouse at dusk")
    registry = default_registry()
    executor = Executor(registry, runtime=Runtime("cpu"), folders=ModelFolders([models]))
    result = executor.run(parse_workflow(doc, registry), ["save", "decode"],
                          settings=RunSettings(output_dir=tmp_path, workflow=doc))
    [path] = result.outputs["save"]["paths"].splitlines()
    decoded = result.outputs["decode"]["image"]
    assert decoded.shape == (1, 48, 64, 3)
    assert np.array_equal(np.asarray(Image.open(path)), (decoded[0].numpy() * 255).round().astype(np.uint8))

    assert set(load_workflow(path, registry).nodes) == set(doc["nodes"])
    chunks = png_text_chunks(Path(path).read_bytes())
    assert chunks[A1111_KEY] == (
        "a lighthouse at dusk\nNegative prompt: lowres\n"
        "Steps: 2, Sampler: Euler a, CFG scale: 5, Seed: 77, Size: 64x48, Model: tiny-sd15"
    )
    params = json.loads(chunks[PARAMS_KEY])
    assert params["sample"]["seed"] == 77 and params["sample"]["denoise"] == 1.0
    assert params["empty"] == {"width": 64, "height": 48, "batch_size": 1}
