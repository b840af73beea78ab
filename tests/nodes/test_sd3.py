"""Stable Diffusion 3 / 3.5 through the product's nodes equals diffusers' StableDiffusion3Pipeline and
StableDiffusion3Img2ImgPipeline on tiny random models (folders written by save_pretrained, the reference loaded from
the same folder by from_pretrained). Three layouts: SD3 Medium (64-wide heads), SD3.5 Medium (q/k norms, dual
attention), SD3.5 Large (q/k norms); and a folder without T5, which diffusers runs on CLIP alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.fixtures.tiny_flow import write_sd3
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_sd3(root / "checkpoints" / "tiny-sd35-large", "sd35_large")
    write_sd3(root / "checkpoints" / "tiny-sd3-medium", "sd3", seed=4)
    return root


@pytest.fixture(scope="module")
def executor(models):
    return make_executor(models)


def reference(models, name: str, cls=None, **components):
    cls = cls or diffusers.StableDiffusion3Pipeline
    return cls.from_pretrained(models / "checkpoints" / name, local_files_only=True, **components)


def txt2img(name: str, *, width: int, height: int, steps: int, seed: int, cfg: float, negative: str = "",
            batch: int = 1) -> dict:
    return {
        "load": n("core.FlowCheckpointLoader", {"ckpt_name": name}),
        "pos": n("core.SD3TextEncode", {"text": PROMPT}, clip=("load", "clip")),
        "neg": n("core.SD3TextEncode", {"text": negative}, clip=("load", "clip")),
        "empty": n("core.EmptyLatentForModel", {"width": width, "height": height, "batch_size": batch},
                   model=("load", "model")),
        "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": "euler"},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }


# SD3.5 Medium (dual attention): test_sd3_files.py
@pytest.mark.parametrize(("name", "label"), [("tiny-sd35-large", "SD3.5 Large"), ("tiny-sd3-medium", "SD3 Medium")])
def test_sd3_txt2img_equals_sd3_pipeline(models, executor, name, label):
    result = run(executor, txt2img(name, width=48, height=32, steps=2, seed=9, cfg=5.0, negative="blurry"),
                 ["decode", "load"])
    assert result.outputs["load"]["family"] == label
    expected = reference(models, name)(
        PROMPT, negative_prompt="blurry", height=32, width=48, num_inference_steps=2, guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(9), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_sd3_batch_without_cfg_equals_sd3_pipeline(models, executor):
    result = run(executor, txt2img("tiny-sd35-large", width=32, height=32, steps=2, seed=2, cfg=1.0, batch=2),
                 ["decode"])
    expected = reference(models, "tiny-sd35-large")(
        PROMPT, height=32, width=32, num_inference_steps=2, guidance_scale=1.0, num_images_per_prompt=2,
        generator=torch.Generator("cpu").manual_seed(2), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_sd3_without_t5_equals_the_pipeline_without_text_encoder_3(models, executor):
    name = "tiny-sd35-large"
    nodes = txt2img(name, width=32, height=32, steps=2, seed=4, cfg=4.0)
    nodes["load"]["params"]["load_t5"] = False
    result = run(executor, nodes, ["decode", "load"])
    assert not result.outputs["load"]["clip"].has_t5
    pipe = reference(models, name, text_encoder_3=None, tokenizer_3=None)
    expected = pipe(PROMPT, negative_prompt="", height=32, width=32, num_inference_steps=2, guidance_scale=4.0,
                    generator=torch.Generator("cpu").manual_seed(4), output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)


@pytest.fixture(scope="module")
def input_image(tmp_path_factory):
    from PIL import Image

    pixels = (np.random.default_rng(5).random((32, 48, 3)) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("images") / "input.png"
    Image.fromarray(pixels).save(path)
    return path


def test_sd3_img2img_equals_sd3_img2img_pipeline(models, executor, input_image):
    from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3_img2img import retrieve_latents
    from PIL import Image

    nodes = txt2img("tiny-sd35-large", width=48, height=32, steps=5, seed=13, cfg=4.5)
    nodes["image"] = n("core.LoadImage", {"path": str(input_image)})
    nodes["encode"] = n("core.VAEEncode", {"mode": "mode"}, pixels=("image", "image"), vae=("load", "vae"))
    nodes["sampler"]["params"]["denoise"] = 0.7
    nodes["sampler"]["inputs"]["latent_image"] = ["encode", "latent"]
    result = run(executor, nodes, ["decode"])
    pipe = reference(models, "tiny-sd35-large", diffusers.StableDiffusion3Img2ImgPipeline)
    pixels = pipe.image_processor.preprocess(Image.open(input_image).convert("RGB"))
    with torch.no_grad():  # the pipeline samples the encoding with its generator; hand it the mode, as our node does
        latents = retrieve_latents(pipe.vae.encode(pixels), sample_mode="argmax")
    latents = (latents - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    expected = pipe(PROMPT, negative_prompt="", image=latents, strength=0.7, height=32, width=48,
                    num_inference_steps=5, guidance_scale=4.5, generator=torch.Generator("cpu").manual_seed(13),
                    output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)
