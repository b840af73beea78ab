"""PixArt-alpha through the product's nodes equals diffusers' PixArtAlphaPipeline on a tiny random model.

The folder is written by ``save_pretrained`` and loaded by Load DiT / IF Model; the pipeline is built from the
very modules the loader returned (see the alignment trap in notes/ml-stack.md). The tiny transformer is shaped
like the 1024-px model (sample_size 128), so the resolution and aspect-ratio conditioning is exercised; a
non-square size makes that conditioning matter.
"""

from __future__ import annotations

import pytest
import torch

from tests.fixtures.tiny_dit import write_pixart
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401 (one_thread: autouse)

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_pixart(root / "checkpoints" / "tiny-pixart")
    return make_executor(root)


def txt2img(*, width: int, height: int, steps: int, cfg: float, seed: int, scheduler: str, negative: str = "",
            batch: int = 1) -> dict:
    return {
        "load": n("core.DiffusersModelLoader", {"model_name": "tiny-pixart"}),
        "pos": n("core.T5TextEncode", {"text": PROMPT}, clip=("load", "clip")),
        "neg": n("core.T5TextEncode", {"text": negative}, clip=("load", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": width, "height": height, "batch_size": batch}),
        "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": scheduler},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }


def pipeline(outputs: dict, scheduler_cls):
    model, clip, vae = outputs["model"], outputs["clip"], outputs["vae"]
    return diffusers.PixArtAlphaPipeline(
        tokenizer=clip.text_tokenizers[0], text_encoder=clip.text_encoders[0], vae=vae.vae, transformer=model.unet,
        scheduler=scheduler_cls.from_config(model.scheduler_config),
    )


@pytest.mark.parametrize(("scheduler", "cls", "batch"),
                         [("dpmpp_2m", "DPMSolverMultistepScheduler", 1), ("ddim", "DDIMScheduler", 2)])
def test_pixart_txt2img_equals_pixart_alpha_pipeline(executor, scheduler, cls, batch):
    nodes = txt2img(width=64, height=48, steps=3, cfg=4.5, seed=11, scheduler=scheduler, negative="blurry", batch=batch)
    result = run(executor, nodes, ["load", "decode"])
    expected = pipeline(result.outputs["load"], getattr(diffusers, cls))(
        PROMPT, negative_prompt="blurry", height=48, width=64, num_inference_steps=3, guidance_scale=4.5,
        num_images_per_prompt=batch,
        generator=torch.Generator("cpu").manual_seed(11), output_type="np", use_resolution_binning=False,
        clean_caption=False,
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_pixart_family_is_detected_and_shown(executor):
    result = run(executor, {"load": n("core.DiffusersModelLoader", {"model_name": "tiny-pixart"})}, ["load"])
    assert result.outputs["load"]["family"] == "PixArt-alpha"
    assert result.outputs["load"]["model"].family == "pixart_alpha"
    assert result.outputs["load"]["clip"].max_lengths == (120,)

