"""T2I-Adapter nodes on the tiny SD1.5 model: parity with StableDiffusionAdapterPipeline (one adapter, and two
combined by weights through MultiAdapter), one adapter run per generation, both file layouts, errors.

The adapters are diffusers ``T2IAdapter``s sized for the tiny UNet, written as a diffusers folder and in the
original TencentARC layout. The pipeline returns numpy whatever ``output_type`` says (notes/ml-stack.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodegraph.errors import NodeExecutionError
from tests.fixtures.tiny_sd import reference_scheduler
from tests.nodes.control_files import make_adapter, write_adapter_original
from tests.nodes.sd_workflow_helpers import checkpoint, make_executor, make_models_root, n, run_workflow
from tests.nodes.test_controlnet import save_image

diffusers = pytest.importorskip("diffusers")

PROMPT = "a bridge over a river"
STEPS = 3
CFG = 5.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = make_models_root(tmp_path_factory.mktemp("models"))
    executor = make_executor(root)
    make_adapter(seed=1).save_pretrained(str(root / "t2i_adapter" / "folder"))
    write_adapter_original(root / "t2i_adapter" / "original.safetensors", make_adapter(seed=2))
    images = tmp_path_factory.mktemp("images")
    return root, executor, {"a": save_image(images / "a.png", 32, 3), "b": save_image(images / "b.png", 32, 4)}


def adapter_nodes(executor, adapters: list[dict], family: str = "sd15") -> dict:
    nodes = {
        "ckpt": checkpoint(executor, family),
        "pos": n("core.CLIPTextEncode", {"text": PROMPT}, clip=("ckpt", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": ""}, clip=("ckpt", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": 32, "height": 32, "batch_size": 1}),
    }
    pos, neg = ("pos", "conditioning"), ("neg", "conditioning")
    for i, spec in enumerate(adapters):
        nodes[f"ad{i}"] = n("core.T2IAdapterLoader", {"t2i_adapter_name": spec["name"]})
        nodes[f"img{i}"] = n("core.LoadImage", {"path": spec["image"]})
        nodes[f"apply{i}"] = n(
            "core.T2IAdapterApply", {"weight": spec["weight"]}, positive=pos, negative=neg,
            t2i_adapter=(f"ad{i}", "t2i_adapter"), image=(f"img{i}", "image"),
        )
        pos, neg = (f"apply{i}", "positive"), (f"apply{i}", "negative")
    nodes["sampler"] = n(
        "core.KSampler", {"seed": 5, "steps": STEPS, "cfg": CFG, "scheduler": "euler"},
        model=("ckpt", "model"), positive=pos, negative=neg, latent_image=("empty", "latent"),
    )
    nodes["decode"] = n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae"))
    return nodes


def pipeline_image(result, adapters: list[dict], output_type: str = "np") -> np.ndarray:
    out = result.outputs
    model, clip, vae = out["ckpt"]["model"], out["ckpt"]["clip"], out["ckpt"]["vae"]
    modules = [out[f"ad{i}"]["t2i_adapter"].adapter for i in range(len(adapters))]
    images = [out[f"img{i}"]["image"].permute(0, 3, 1, 2) for i in range(len(adapters))]
    weights = [spec["weight"] for spec in adapters]
    single = len(adapters) == 1
    pipe = diffusers.StableDiffusionAdapterPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
        adapter=modules[0] if single else diffusers.MultiAdapter(modules),
        scheduler=reference_scheduler(model.family, "EulerDiscreteScheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    return pipe(
        PROMPT, negative_prompt="", image=images[0] if single else images, height=32, width=32,
        num_inference_steps=STEPS, guidance_scale=CFG, generator=torch.Generator("cpu").manual_seed(5),
        adapter_conditioning_scale=weights[0] if single else weights, output_type=output_type,
    ).images


def assert_same(result, adapters: list[dict]) -> None:
    """Latents bit-exact; the image within the issue's 1e-5 (this pipeline decodes with its own older
    ``decode_latents`` arithmetic, a last-bit difference from the VAE Decode node's)."""
    latents = result.outputs["sampler"]["latent"]["samples"]
    assert torch.equal(latents, pipeline_image(result, adapters, "latent"))
    image = result.outputs["decode"]["image"].numpy()
    assert np.abs(image - pipeline_image(result, adapters)).max() <= 1e-5


def test_one_adapter_with_a_weight_equals_adapter_pipeline_and_runs_once_per_generation(setup):
    _, executor, images = setup
    adapters = [{"name": "folder", "image": images["a"], "weight": 0.8}]
    result = run_workflow(executor, adapter_nodes(executor, adapters), ["ckpt", "ad0", "img0", "apply0", "sampler", "decode"])
    assert_same(result, adapters)
    ours = result.outputs["decode"]["image"].numpy()
    base = run_workflow(executor, adapter_nodes(executor, []), ["decode"]).outputs["decode"]["image"].numpy()
    assert np.abs(ours - base).max() > 1e-3  # the adapter really steers
    (source,) = result.outputs["apply0"]["positive"][0].extras["residuals"]
    assert source.runs == 1  # three steps, one adapter run


def test_two_adapters_combine_by_weighted_sum_as_multiadapter(setup):
    _, executor, images = setup
    adapters = [
        {"name": "folder", "image": images["a"], "weight": 0.7},
        {"name": "original.safetensors", "image": images["b"], "weight": 0.4},
    ]
    result = run_workflow(executor, adapter_nodes(executor, adapters), ["ckpt", "ad0", "ad1", "img0", "img1", "sampler", "decode"])
    assert_same(result, adapters)


def test_original_layout_loads_the_same_weights_as_the_diffusers_folder(setup, tmp_path):
    from nodes.adapters.t2i_adapter import load_adapter

    root, _, _ = setup
    folder = load_adapter(root / "t2i_adapter" / "folder")
    write_adapter_original(tmp_path / "twin.safetensors", folder.adapter)
    twin = load_adapter(tmp_path / "twin.safetensors")
    assert (twin.kind, twin.family, twin.in_channels) == ("full_adapter", "sd15", 3)
    theirs = folder.adapter.state_dict()
    for key, tensor in twin.adapter.state_dict().items():
        assert torch.equal(tensor, theirs[key]), key


def test_adapter_for_sd15_on_an_sdxl_model_is_refused_by_the_sampler(setup):
    _, executor, images = setup
    nodes = adapter_nodes(executor, [{"name": "folder", "image": images["a"], "weight": 1.0}], family="sdxl")
    with pytest.raises(NodeExecutionError, match=r"sampler.*T2I-Adapter folder is for SD1.5 but the model is SDXL"):
        run_workflow(executor, nodes, ["decode"])


def test_a_file_that_is_no_adapter_is_refused(setup):
    from safetensors.torch import save_file

    root, executor, images = setup
    save_file({"something.weight": torch.zeros(2)}, str(root / "t2i_adapter" / "junk.safetensors"))
    nodes = adapter_nodes(executor, [{"name": "junk.safetensors", "image": images["a"], "weight": 1.0}])
    with pytest.raises(NodeExecutionError, match=r"ad0.*no T2I-Adapter weights"):
        run_workflow(executor, nodes, ["ad0"])
