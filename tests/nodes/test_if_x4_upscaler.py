"""The cascade's optional last stage, the SD x4 upscaler, through the product's nodes equals diffusers'
StableDiffusionUpscalePipeline on a tiny random model: its CLIP encodes with CLIP Text Encode, the image is
noised with the run's seed before the start noise (as the pipeline draws it), v-prediction with DDIM."""

from __future__ import annotations

import pytest
import torch

from nodegraph.errors import NodeExecutionError
from tests.fixtures.tiny_dit import write_sd_x4_upscaler
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401 (one_thread: autouse)

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_sd_x4_upscaler(root / "checkpoints" / "tiny-x4")
    return make_executor(root)


@pytest.fixture(scope="module")
def low_res():
    return torch.rand(1, 8, 12, 3, generator=torch.Generator().manual_seed(0))


def upscale_nodes(image_source: tuple[str, str], *, cfg: float, noise_level: int, seed: int) -> dict:
    return {
        "load": n("core.DiffusersModelLoader", {"model_name": "tiny-x4"}),
        "pos": n("core.CLIPTextEncode", {"text": PROMPT}, clip=("load", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": "blurry"}, clip=("load", "clip")),
        "bind": n("core.SDx4Upscale", {"noise_level": noise_level}, model=("load", "model"), image=image_source),
        "sampler": n("core.KSampler", {"seed": seed, "steps": 3, "cfg": cfg, "scheduler": "ddim"},
                     model=("bind", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("bind", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }


def test_x4_upscale_equals_stable_diffusion_upscale_pipeline(executor, low_res):
    from nodegraph.node import Output, node
    from nodegraph.types import IMAGE

    @node("test.FixedImage", name="fixed image", category="test", outputs=[Output("image", IMAGE)])
    def fixed_image(ctx):
        return low_res

    executor.registry.register(fixed_image, source="tests")
    nodes = {"image": n("test.FixedImage"), **upscale_nodes(("image", "image"), cfg=6.0, noise_level=30, seed=9)}
    result = run(executor, nodes, ["load", "decode"])
    model, clip, vae = (result.outputs["load"][k] for k in ("model", "clip", "vae"))
    assert result.outputs["load"]["family"] == "SD x4 upscaler"
    pipe = diffusers.StableDiffusionUpscalePipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
        low_res_scheduler=diffusers.DDPMScheduler.from_config(model.noise_scheduler_config),
        scheduler=diffusers.DDIMScheduler.from_config(model.scheduler_config), max_noise_level=350,
    )
    expected = pipe(
        PROMPT, image=low_res.permute(0, 3, 1, 2) * 2 - 1, negative_prompt="blurry", num_inference_steps=3,
        guidance_scale=6.0, noise_level=30, generator=torch.Generator("cpu").manual_seed(9), output_type="np",
    ).images
    out = result.outputs["decode"]["image"]
    assert out.shape == (1, 32, 48, 3)  # 4x the 12x8 input
    assert_same_image(out, expected)


def test_sampling_the_upscaler_without_an_image_is_explained(executor):
    nodes = upscale_nodes(("x", "image"), cfg=1.0, noise_level=20, seed=0)
    nodes["empty"] = n("core.EmptyLatentImage", {"width": 64, "height": 64, "batch_size": 1})
    nodes["sampler"]["inputs"].update(model=["load", "model"], latent_image=["empty", "latent"])
    del nodes["bind"]
    with pytest.raises(NodeExecutionError, match="SD x4 Upscale"):
        run(executor, nodes, ["sampler"])
