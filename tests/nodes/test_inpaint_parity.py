"""Inpainting workflows run through the Executor give the images of diffusers' StableDiffusionInpaintPipeline and
StableDiffusionXLInpaintPipeline, for ordinary (4-channel) and inpainting (9-channel) UNets, at full strength and
below, with binary and soft masks.

The reference pipelines are loaded by diffusers itself from the files on disk (``from_single_file`` with a
config folder, ``from_pretrained`` for the folder written by ``save_pretrained``), not from our loader's
modules. As in the text-to-image parity tests, latents are handed to diffusers from its own deterministic
encoding (``retrieve_latents(..., sample_mode="argmax")``) because given raw pixels it draws the VAE sample from
the generator that later draws the noise, which no node graph can mirror; the workflows encode in "mode".

diffusers binarises masks at 0.5 before resizing them; for the soft-mask case its mask processor is built with
``do_binarize=False``, which is the blend our sampler does (its loop code is unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.nodes.inpaint_helpers import (
    CHECKPOINTS,
    FOLDER_9,
    SIZE,
    config_dir,
    shared_files,
)
from tests.nodes.sd_workflow_helpers import make_executor, n, run_workflow

diffusers = pytest.importorskip("diffusers")

TOL = 1e-5
PROMPT = "a red fox in the snow"
DIFFS: list[float] = []


@pytest.fixture(scope="module", autouse=True)
def report_differences():
    """Prints how many comparisons were bit-exact (shown with ``pytest -s``)."""
    yield
    if DIFFS:
        exact = sum(d == 0.0 for d in DIFFS)
        print(f"\ninpaint parity: {len(DIFFS)} images compared, {exact} bit-exact, largest difference {max(DIFFS):.3g}")


def assert_same(ours: np.ndarray, expected: np.ndarray) -> None:
    assert ours.shape == expected.shape
    difference = float(np.abs(ours - expected).max())
    assert difference <= TOL, f"max abs difference {difference} > {TOL}"
    DIFFS.append(difference)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return shared_files(tmp_path_factory)


@pytest.fixture(scope="module")
def executor(files):
    return make_executor(files["models"])


@pytest.fixture(scope="module")
def pipelines(files):
    """Reference pipelines by (family, channels, from_folder), loaded once from the files."""
    loaded: dict = {}

    def get(family: str, channels: int, scheduler: str, from_folder: bool = False):
        key = (family, channels, from_folder)
        if key not in loaded:
            loaded[key] = reference_pipeline(files, family, channels, from_folder)
        pipe = loaded[key]
        pipe.scheduler = scheduler_class(scheduler).from_config(pipe.scheduler.config)
        pipe.mask_processor = pipe.mask_processor.__class__(**BINARISING)
        return pipe

    return get


BINARISING = {"vae_scale_factor": 8, "do_normalize": False, "do_binarize": True, "do_convert_grayscale": True}


def workflow(ckpt: str, family: str, image, mask, route: str, *, steps: int, denoise: float, seed: int,
             scheduler: str, cfg: float) -> dict:
    """Load Image (with its mask file) -> inpainting route -> KSampler -> VAE Decode."""
    if family == "sdxl":
        text = lambda prompt: n("core.CLIPTextEncodeSDXL", {"text_g": prompt, "text_l": prompt}, clip=("ckpt", "clip"))  # noqa: E731
    else:
        text = lambda prompt: n("core.CLIPTextEncode", {"text": prompt}, clip=("ckpt", "clip"))  # noqa: E731
    nodes = {
        "ckpt": {"type": "core.CheckpointLoader", "version": 1, "params": {"ckpt_name": ckpt}},
        "pos": text(PROMPT),
        "neg": text("blurry"),
        "load": n("core.LoadImage", {"path": str(image), "mask_path": str(mask)}),
    }
    positive, negative = ("pos", "conditioning"), ("neg", "conditioning")
    if route == "noise_mask":
        nodes["encode"] = n("core.VAEEncode", {"mode": "mode"}, pixels=("load", "image"), vae=("ckpt", "vae"))
        nodes["masked"] = n("core.SetLatentNoiseMask", samples=("encode", "latent"), mask=("load", "mask"))
        latent = ("masked", "latent")
    elif route == "conditioning":
        nodes["inpaint"] = n("core.InpaintModelConditioning", {"noise_mask": True}, positive=positive,
                             negative=negative, vae=("ckpt", "vae"), pixels=("load", "image"), mask=("load", "mask"))
        positive, negative, latent = ("inpaint", "positive"), ("inpaint", "negative"), ("inpaint", "latent")
    else:  # VAE Encode (for Inpainting), mask not grown so that it is diffusers' mask
        nodes["encode"] = n("core.VAEEncodeForInpaint", {"grow_mask_by": 0}, pixels=("load", "image"),
                            vae=("ckpt", "vae"), mask=("load", "mask"))
        latent = ("encode", "latent")
    nodes["sampler"] = n(
        "core.KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": scheduler, "denoise": denoise},
        model=("ckpt", "model"), positive=positive, negative=negative, latent_image=latent,
    )
    nodes["decode"] = n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae"))
    return nodes


def scheduler_class(name: str):
    from tests.nodes.test_parity_sd import SCHEDULER_CLASSES

    return getattr(diffusers, SCHEDULER_CLASSES[name])


def reference_pipeline(files, family: str, channels: int, from_folder: bool = False):
    if family == "sd15":
        cls = diffusers.StableDiffusionInpaintPipeline
        extra = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    else:
        cls, extra = diffusers.StableDiffusionXLInpaintPipeline, {}
    if from_folder:
        pipe = cls.from_pretrained(files["models"] / "checkpoints" / FOLDER_9, local_files_only=True, **extra)
    else:
        path = files["models"] / "checkpoints" / CHECKPOINTS[(family, channels)]
        config = config_dir(files["root"], family, channels)
        pipe = cls.from_single_file(str(path), config=str(config), local_files_only=True, torch_dtype=torch.float32,
                                    **extra)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.in_channels == channels
    return pipe


def diffusers_latents(pipe, image_path, mask_path) -> tuple[torch.Tensor, torch.Tensor]:
    """The image's and the masked image's latents as diffusers makes them (deterministic: the mean)."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
    from PIL import Image

    pixels = pipe.image_processor.preprocess(Image.open(image_path).convert("RGB"), height=SIZE, width=SIZE)
    mask = pipe.mask_processor.preprocess(Image.open(mask_path), height=SIZE, width=SIZE)
    scale = pipe.vae.config.scaling_factor
    with torch.no_grad():
        image = retrieve_latents(pipe.vae.encode(pixels), sample_mode="argmax") * scale
        masked = retrieve_latents(pipe.vae.encode(pixels * (mask < 0.5)), sample_mode="argmax") * scale
    return image, masked


CASES = [
    # family, unet channels, route, scheduler, steps, strength, mask
    pytest.param("sd15", 4, "noise_mask", "ddim", 3, 1.0, "binary", id="sd15-ordinary-full"),
    pytest.param("sd15", 4, "noise_mask", "euler_ancestral", 4, 0.6, "soft", id="sd15-ordinary-strength-soft"),
    pytest.param("sd15", 9, "conditioning", "euler", 3, 1.0, "binary", id="sd15-inpainting-full"),
    pytest.param("sd15", 9, "conditioning", "dpmpp_2m", 4, 0.7, "soft", id="sd15-inpainting-strength-soft"),
    pytest.param("sd15", 9, "encode_for_inpaint", "ddim", 3, 1.0, "binary", id="sd15-inpainting-vae-encode"),
    pytest.param("sdxl", 4, "noise_mask", "euler", 4, 0.75, "soft", id="sdxl-ordinary-strength-soft"),
    pytest.param("sdxl", 9, "conditioning", "euler_ancestral", 3, 1.0, "binary", id="sdxl-inpainting-full"),
    pytest.param("sdxl", 9, "conditioning", "ddim", 4, 0.5, "binary", id="sdxl-inpainting-strength"),
]


def _run_both(executor, pipelines, files, family, channels, route, scheduler, steps, strength, mask,
              from_folder=False):
    ckpt = FOLDER_9 if from_folder else CHECKPOINTS[(family, channels)]
    cfg = 6.0
    nodes = workflow(ckpt, family, files["image"], files[mask], route, steps=steps, denoise=strength, seed=21,
                     scheduler=scheduler, cfg=cfg)
    result = run_workflow(executor, nodes, ["decode", "load"])
    pipe = pipelines(family, channels, scheduler, from_folder)
    if mask == "soft":  # the blend of diffusers' loop, without binarising the mask first
        pipe.mask_processor = pipe.mask_processor.__class__(**{**BINARISING, "do_binarize": False})
    from PIL import Image

    image_latents, masked_latents = diffusers_latents(pipe, files["image"], files[mask])
    expected = pipe(
        PROMPT, negative_prompt="blurry", image=image_latents, masked_image_latents=masked_latents,
        mask_image=Image.open(files[mask]), height=SIZE, width=SIZE, strength=strength, num_inference_steps=steps,
        guidance_scale=cfg, generator=torch.Generator("cpu").manual_seed(21), output_type="np",
    ).images
    return result, expected


@pytest.mark.parametrize(("family", "channels", "route", "scheduler", "steps", "strength", "mask"), CASES)
def test_inpainting_workflow_equals_diffusers_inpaint_pipeline(executor, pipelines, files, family, channels, route,
                                                               scheduler, steps, strength, mask):
    result, expected = _run_both(executor, pipelines, files, family, channels, route, scheduler, steps, strength, mask)
    assert_same(result.outputs["decode"]["image"].numpy(), expected)


def test_inpainting_folder_checkpoint_equals_diffusers_from_pretrained(executor, pipelines, files):
    result, expected = _run_both(executor, pipelines, files, "sd15", 9, "conditioning", "euler", 3, 1.0, "binary",
                                 from_folder=True)
    assert_same(result.outputs["decode"]["image"].numpy(), expected)


def test_unmasked_region_of_an_ordinary_model_stays_the_decoded_input(executor, files):
    """With an empty mask (after binarising: none) the sampler returns the input latent unchanged."""
    nodes = workflow(CHECKPOINTS[("sd15", 4)], "sd15", files["image"], files["binary"], "noise_mask", steps=2,
                     denoise=1.0, seed=1, scheduler="euler", cfg=5.0)
    nodes["empty"] = n("core.SolidMask", {"value": 0.0, "width": SIZE, "height": SIZE})
    nodes["masked"]["inputs"]["mask"] = ["empty", "mask"]
    result = run_workflow(executor, nodes, ["sampler", "encode"])
    assert torch.equal(result.outputs["sampler"]["latent"]["samples"], result.outputs["encode"]["latent"]["samples"])
