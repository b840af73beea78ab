"""The shipped DreamBooth demo LoRA on the shipped demo model: "a red sks on a blue background" draws a ring with
it and not without it (measured as benchmarks/dreambooth.py measures, on fewer images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.model_folders import BUILTIN_ROOT, ModelFolders
from nodegraph.runtime import Runtime
from nodegraph.workflow import parse_workflow

CHECKPOINT = BUILTIN_ROOT / "checkpoints" / "demo_shapes.safetensors"
LORA = BUILTIN_ROOT / "loras" / "demo_sks_ring.safetensors"
pytestmark = pytest.mark.skipif(not (CHECKPOINT.is_file() and LORA.is_file()), reason="demo model or LoRA not shipped")


def test_shipped_lora_draws_the_ring_the_base_model_does_not():
    pytest.importorskip("nodes.demo.measure")
    from nodes.training.subjects import is_ring

    def n(kind, params=None, **inputs):
        return {"type": kind, "version": 1, "params": params or {}, "inputs": {k: list(v) for k, v in inputs.items()}}

    nodes = {
        "ckpt": n("core.CheckpointLoader", {"ckpt_name": CHECKPOINT.name}),
        "lora": n("core.LoraLoader", {"lora_name": LORA.name}, model=("ckpt", "model"), clip=("ckpt", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 8}),
    }
    for source in ("ckpt", "lora"):
        nodes[f"pos_{source}"] = n("core.CLIPTextEncode", {"text": "a red sks on a blue background"}, clip=(source, "clip"))
        nodes[f"neg_{source}"] = n("core.CLIPTextEncode", {"text": ""}, clip=(source, "clip"))
        nodes[f"sample_{source}"] = n("core.KSampler", {"seed": 7, "steps": 20, "cfg": 3.0, "scheduler": "ddim"},
                                      model=(source, "model"), positive=(f"pos_{source}", "conditioning"),
                                      negative=(f"neg_{source}", "conditioning"), latent_image=("empty", "latent"))
        nodes[f"decode_{source}"] = n("core.VAEDecode", samples=(f"sample_{source}", "latent"), vae=("ckpt", "vae"))
    executor = Executor(default_registry(), runtime=Runtime("cpu", "fp32"), folders=ModelFolders([BUILTIN_ROOT]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
        result = executor.run(parse_workflow(doc, executor.registry), ["decode_ckpt", "decode_lora"])
    finally:
        torch.set_num_threads(threads)
    rings = {s: np.mean([is_ring(img) for img in result.outputs[f"decode_{s}"]["image"].numpy()]) for s in ("ckpt", "lora")}
    assert rings["ckpt"] <= 0.25
    assert rings["lora"] >= 0.5
