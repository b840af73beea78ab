"""Parity with diffusers (issue 3's centre): workflows run through the Executor give the image diffusers'
pipelines give for the same checkpoint, prompt, seed, steps and scheduler.

Both sides start from the same files, as a user's would: tiny SD1.5 / SDXL / SDXL-refiner checkpoints written
as they are found in the wild (original layout, no metadata: our loader infers the architecture and takes the
scheduler from the configs it ships), and, for diffusers, ``from_single_file`` with a config folder laid out
as the real model repository is (``tests/fixtures/hub_configs``: the real scheduler config verbatim, the model
configs at tiny widths). A scheduler other than the folder's own is derived the diffusers way,
``SchedulerClass.from_config(pipe.scheduler.config)``, so every key the real config leaves out takes the
class's default (SD1.5's file has no ``timestep_spacing``: Euler and DPM++ run "linspace" there). Nothing on the
reference side comes from the configs this product ships.

diffusers loads its own copies of the weights, so the two sides compute with equal weights at other
addresses; MKL may then pick other kernels (notes/ml-stack.md). SD1.5 comes out bit-exact, SDXL within about
2e-6: the issue's tolerance (1e-5 on 0..1 images) is what is asserted.

Image-to-image: the workflow encodes with VAE Encode in "mode" (the distribution's mean); diffusers is given
latents from its own ``retrieve_latents(..., sample_mode="argmax")`` path, because with a raw image it
would draw the VAE sample from the same generator as the noise, which no node graph can mirror.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.fixtures.tiny_sd import tiny_configs, write_reference_folder, write_tiny_checkpoint
from tests.nodes.sd_workflow_helpers import make_executor, n, run_workflow

TOL = 1e-5
DIFFS: list[float] = []  # observed differences (see the module docstring)
PLAIN_PROMPT = "a red fox in the snow, highly detailed"
WILD = {"sd15": "wild_sd15.safetensors", "sdxl": "wild_sdxl.safetensors", "sdxl_refiner": "wild_refiner.safetensors"}
SEEDS = {"sd15": 0, "sdxl": 0, "sdxl_refiner": 1}

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module", autouse=True)
def report_differences():
    """Prints how many comparisons were bit-exact (shown with ``pytest -s``)."""
    yield
    if DIFFS:
        exact = sum(d == 0.0 for d in DIFFS)
        print(f"\nparity: {len(DIFFS)} images compared, {exact} bit-exact, largest difference {max(DIFFS):.3g}")


@pytest.fixture(scope="module")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (root / "checkpoints").mkdir()
    for family, name in WILD.items():
        write_tiny_checkpoint(root / "checkpoints" / name, family, SEEDS[family], wild=True)
    return root


@pytest.fixture(scope="module")
def executor(models_root):
    return make_executor(models_root)


REFERENCE_CLASSES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline",
                     "sdxl_refiner": "StableDiffusionXLImg2ImgPipeline"}


@pytest.fixture(scope="module")
def reference(models_root, tmp_path_factory):
    """diffusers' pipeline of each family, loaded by diffusers from the checkpoint file and a real-format folder."""
    folders = tmp_path_factory.mktemp("reference")
    pipes = {}

    def get(family: str):
        if family not in pipes:
            folder = write_reference_folder(folders, family, tiny_configs(family, wild=True))
            extra = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False} if (
                family == "sd15") else {}
            cls = getattr(diffusers, REFERENCE_CLASSES[family])
            pipe = cls.from_single_file(str(models_root / "checkpoints" / WILD[family]), config=str(folder),
                                        local_files_only=True, torch_dtype=torch.float32, **extra)
            pipes[family] = (pipe, pipe.scheduler.config)
        return pipes[family]

    return get


SCHEDULER_CLASSES = {"ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler",
                     "euler_ancestral": "EulerAncestralDiscreteScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler",
                     "unipc": "UniPCMultistepScheduler"}


def pipeline(reference, family: str, scheduler: str, cls_name: str | None = None):
    """The family's reference pipeline (or ``cls_name`` made from its components), sampling with
    ``scheduler`` derived from the folder's own scheduler config as diffusers users do."""
    pipe, folder_scheduler = reference(family)
    if cls_name is not None and type(pipe).__name__ != cls_name:
        pipe = getattr(diffusers, cls_name).from_pipe(pipe)
    pipe.scheduler = getattr(diffusers, SCHEDULER_CLASSES[scheduler]).from_config(folder_scheduler)
    return pipe


def assert_same_image(ours: torch.Tensor, theirs: np.ndarray) -> None:
    ours_np = ours.numpy()
    assert ours_np.shape == theirs.shape
    diff = float(np.abs(ours_np - theirs).max())
    assert diff <= TOL, f"max abs difference {diff} > {TOL}"
    DIFFS.append(diff)


def checkpoint(family: str) -> dict:
    return n("core.CheckpointLoader", {"ckpt_name": WILD[family]})


def txt2img_nodes(executor, family: str, scheduler: str, *, size: int, steps: int, cfg: float, seed: int) -> dict:
    return {
        "ckpt": checkpoint(family),
        "pos": n("core.CLIPTextEncode", {"text": PLAIN_PROMPT}, clip=("ckpt", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": "blurry"}, clip=("ckpt", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": size, "height": size, "batch_size": 1}),
        "sampler": n(
            "core.KSampler",
            {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": scheduler},
            model=("ckpt", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
            latent_image=("empty", "latent"),
        ),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae")),
    }


@pytest.mark.parametrize("scheduler", ["ddim", "euler_ancestral", "dpmpp_2m"])
def test_sd15_txt2img_workflow_equals_stable_diffusion_pipeline(executor, reference, scheduler):
    nodes = txt2img_nodes(executor, "sd15", scheduler, size=32, steps=3, cfg=7.5, seed=1234)
    result = run_workflow(executor, nodes, ["decode"])
    pipe = pipeline(reference, "sd15", scheduler)
    expected = pipe(
        PLAIN_PROMPT, negative_prompt="blurry", height=32, width=32, num_inference_steps=3, guidance_scale=7.5,
        generator=torch.Generator("cpu").manual_seed(1234), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_sd15_guidance_rescale_equals_pipeline_guidance_rescale(executor, reference):
    nodes = txt2img_nodes(executor, "sd15", "euler", size=32, steps=2, cfg=9.0, seed=5)
    nodes["sampler"]["params"]["guidance_rescale"] = 0.7
    result = run_workflow(executor, nodes, ["decode"])
    pipe = pipeline(reference, "sd15", "euler")
    kwargs = dict(negative_prompt="blurry", height=32, width=32, num_inference_steps=2, guidance_scale=9.0, output_type="np")
    expected = pipe(PLAIN_PROMPT, guidance_rescale=0.7, generator=torch.Generator("cpu").manual_seed(5), **kwargs).images
    assert_same_image(result.outputs["decode"]["image"], expected)
    plain = pipe(PLAIN_PROMPT, generator=torch.Generator("cpu").manual_seed(5), **kwargs).images
    assert np.abs(plain - expected).max() > 0  # the rescale really changed something


def img2img_nodes(executor, family: str, image_path: str, scheduler: str, *, steps: int, denoise: float, seed: int,
                  encoder: str = "core.CLIPTextEncode") -> dict:
    return {
        "ckpt": checkpoint(family),
        "pos": n(encoder, {"text": PLAIN_PROMPT}, clip=("ckpt", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": ""}, clip=("ckpt", "clip")),
        "load": n("core.LoadImage", {"path": image_path}),
        "encode": n("core.VAEEncode", {"mode": "mode"}, pixels=("load", "image"), vae=("ckpt", "vae")),
        "sampler": n(
            "core.KSampler",
            {"seed": seed, "steps": steps, "cfg": 6.0, "scheduler": scheduler, "denoise": denoise},
            model=("ckpt", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
            latent_image=("encode", "latent"),
        ),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae")),
    }


@pytest.fixture(scope="module")
def input_image(tmp_path_factory):
    from PIL import Image

    rng = np.random.default_rng(3)
    pixels = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("images") / "input.png"
    Image.fromarray(pixels).save(path)
    return path


def diffusers_init_latents(pipe, path) -> torch.Tensor:
    """diffusers' own deterministic encoding of the input image (see the module docstring)."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
    from PIL import Image

    pixels = pipe.image_processor.preprocess(Image.open(path).convert("RGB"))
    with torch.no_grad():
        latents = retrieve_latents(pipe.vae.encode(pixels), sample_mode="argmax")
    return latents * pipe.vae.config.scaling_factor


@pytest.mark.parametrize("scheduler", ["ddim", "dpmpp_2m"])
def test_sd15_img2img_workflow_equals_img2img_pipeline(executor, reference, input_image, scheduler):
    nodes = img2img_nodes(executor, "sd15", str(input_image), scheduler, steps=4, denoise=0.5, seed=77)
    result = run_workflow(executor, nodes, ["decode"])
    pipe = pipeline(reference, "sd15", scheduler, "StableDiffusionImg2ImgPipeline")
    expected = pipe(
        PLAIN_PROMPT, negative_prompt="", image=diffusers_init_latents(pipe, input_image), strength=0.5,
        num_inference_steps=4, guidance_scale=6.0, generator=torch.Generator("cpu").manual_seed(77), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


@pytest.mark.parametrize("scheduler", ["ddim", "euler_ancestral", "dpmpp_2m"])
def test_sdxl_txt2img_workflow_equals_sdxl_pipeline(executor, reference, scheduler):
    nodes = txt2img_nodes(executor, "sdxl", scheduler, size=32, steps=3, cfg=5.0, seed=99)
    nodes["pos"] = n("core.CLIPTextEncodeSDXL", {"text_g": PLAIN_PROMPT, "text_l": PLAIN_PROMPT}, clip=("ckpt", "clip"))
    result = run_workflow(executor, nodes, ["decode"])
    pipe = pipeline(reference, "sdxl", scheduler)
    expected = pipe(
        PLAIN_PROMPT, negative_prompt="blurry", height=32, width=32, num_inference_steps=3, guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(99), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_sdxl_micro_conditioning_sizes_reach_the_unet_as_diffusers_passes_them(executor, reference):
    nodes = txt2img_nodes(executor, "sdxl", "euler", size=32, steps=2, cfg=5.0, seed=4)
    nodes["pos"] = n(
        "core.CLIPTextEncodeSDXL",
        {"text_g": PLAIN_PROMPT, "text_l": PLAIN_PROMPT, "original_width": 1024, "original_height": 768,
         "crop_top": 16, "crop_left": 8, "target_width": 512, "target_height": 384},
        clip=("ckpt", "clip"),
    )
    result = run_workflow(executor, nodes, ["decode"])
    pipe = pipeline(reference, "sdxl", "euler")
    expected = pipe(
        PLAIN_PROMPT, negative_prompt="blurry", height=32, width=32, num_inference_steps=2, guidance_scale=5.0,
        original_size=(768, 1024), crops_coords_top_left=(16, 8), target_size=(384, 512),
        negative_original_size=(32, 32), negative_target_size=(32, 32),
        generator=torch.Generator("cpu").manual_seed(4), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


@pytest.mark.parametrize("scheduler", ["euler_ancestral"])
def test_sdxl_img2img_workflow_equals_sdxl_img2img_pipeline(executor, reference, input_image, scheduler):
    nodes = img2img_nodes(executor, "sdxl", str(input_image), scheduler, steps=4, denoise=0.75, seed=11)
    result = run_workflow(executor, nodes, ["decode"])
    pipe = pipeline(reference, "sdxl", scheduler, "StableDiffusionXLImg2ImgPipeline")
    expected = pipe(
        PLAIN_PROMPT, negative_prompt="", image=diffusers_init_latents(pipe, input_image), strength=0.75,
        num_inference_steps=4, guidance_scale=6.0, generator=torch.Generator("cpu").manual_seed(11), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


@pytest.mark.parametrize("scheduler", ["euler_ancestral"])
def test_sdxl_base_to_refiner_hand_off_equals_diffusers_two_pipeline_recipe(executor, reference, scheduler):
    steps, switch, seed = 4, 0.5, 21
    nodes = {
        "base": checkpoint("sdxl"),
        "refiner": checkpoint("sdxl_refiner"),
        "pos": n("core.CLIPTextEncodeSDXL", {"text_g": PLAIN_PROMPT, "text_l": PLAIN_PROMPT}, clip=("base", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": ""}, clip=("base", "clip")),
        "rpos": n("core.CLIPTextEncodeSDXLRefiner", {"text": PLAIN_PROMPT, "aesthetic_score": 6.0}, clip=("refiner", "clip")),
        "rneg": n("core.CLIPTextEncodeSDXLRefiner", {"text": "", "aesthetic_score": 2.5}, clip=("refiner", "clip")),
        "empty": n("core.EmptyLatentImage", {"width": 32, "height": 32, "batch_size": 1}),
        "stage1": n(
            "core.KSamplerAdvanced",
            {"seed": seed, "steps": steps, "cfg": 5.0, "scheduler": scheduler, "add_noise": True,
             "start_at_step": 0, "end_at_step": 2, "return_with_leftover_noise": True},
            model=("base", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
            latent_image=("empty", "latent"),
        ),
        "stage2": n(
            "core.KSamplerAdvanced",
            {"seed": seed, "steps": steps, "cfg": 5.0, "scheduler": scheduler, "add_noise": False,
             "start_at_step": 2, "end_at_step": 10000, "return_with_leftover_noise": False},
            model=("refiner", "model"), positive=("rpos", "conditioning"), negative=("rneg", "conditioning"),
            latent_image=("stage1", "latent"),
        ),
        "decode": n("core.VAEDecode", samples=("stage2", "latent"), vae=("refiner", "vae")),
    }
    result = run_workflow(executor, nodes, ["decode"])
    base = pipeline(reference, "sdxl", scheduler)
    refiner = pipeline(reference, "sdxl_refiner", scheduler)
    # diffusers' recipe: the base stops at denoising_end and hands latents to the refiner's denoising_start
    latents = base(
        PLAIN_PROMPT, negative_prompt="", height=32, width=32, num_inference_steps=steps, guidance_scale=5.0,
        denoising_end=switch, generator=torch.Generator("cpu").manual_seed(seed), output_type="latent",
    ).images
    expected = refiner(
        PLAIN_PROMPT, negative_prompt="", image=latents, num_inference_steps=steps, guidance_scale=5.0,
        denoising_start=switch, generator=torch.Generator("cpu").manual_seed(seed), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_sd15_batch_of_two_equals_num_images_per_prompt_two(executor, reference):
    nodes = txt2img_nodes(executor, "sd15", "euler_ancestral", size=32, steps=2, cfg=7.0, seed=8)
    nodes["empty"]["params"]["batch_size"] = 2
    result = run_workflow(executor, nodes, ["decode"])
    pipe = pipeline(reference, "sd15", "euler_ancestral")
    expected = pipe(
        PLAIN_PROMPT, negative_prompt="blurry", height=32, width=32, num_inference_steps=2, guidance_scale=7.0,
        num_images_per_prompt=2, generator=torch.Generator("cpu").manual_seed(8), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)
    assert np.abs(expected[0] - expected[1]).max() > 0  # two different images from one seed


def test_sdxl_default_micro_conditioning_counts_pixels_with_the_models_vae_factor(models_root, tmp_path, input_image):
    """Original and target size left at 0 mean "the image's size": the latent's size times the VAE factor of the
    model's own VAE (here 2, not SD's 8), as diffusers' SDXL pipelines count it."""
    name = "wild_sdxl_vae2.safetensors"
    write_tiny_checkpoint(models_root / "checkpoints" / name, "sdxl", 3, wild=True, vae_factor=2)
    executor = make_executor(models_root)
    nodes = img2img_nodes(executor, "sdxl", str(input_image), "euler", steps=3, denoise=0.75, seed=5)
    nodes["ckpt"] = n("core.CheckpointLoader", {"ckpt_name": name})
    result = run_workflow(executor, nodes, ["encode", "decode"])
    assert result.outputs["encode"]["latent"]["samples"].shape[-1] == 16  # 32 px at 2 px per latent cell
    folder = write_reference_folder(tmp_path, "sdxl", tiny_configs("sdxl", wild=True, vae_factor=2))
    pipe = diffusers.StableDiffusionXLImg2ImgPipeline.from_single_file(
        str(models_root / "checkpoints" / name), config=str(folder), local_files_only=True, torch_dtype=torch.float32)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    expected = pipe(
        PLAIN_PROMPT, negative_prompt="", image=diffusers_init_latents(pipe, input_image), strength=0.75,
        num_inference_steps=3, guidance_scale=6.0, generator=torch.Generator("cpu").manual_seed(5), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)
