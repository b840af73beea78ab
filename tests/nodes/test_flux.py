"""FLUX.1 through the product's nodes equals diffusers' FluxPipeline / FluxImg2ImgPipeline on tiny random models.

The folders are written by FluxPipeline.save_pretrained; the reference pipeline is loaded from the same folder by
FluxPipeline.from_pretrained (never from our loader's modules). Sizes are multiples of 16 pixels and not square, so
the packed 2x2 layout and the position ids are exercised; [dev]'s resolution-dependent shift makes the schedule
depend on the size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401
from tests.nodes.flow_fixtures import link

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("sentencepiece")


@pytest.fixture(scope="module")
def models(tmp_path_factory, flux_dev_folder, flux_schnell_folder):
    root = tmp_path_factory.mktemp("models")
    link(flux_dev_folder, root)
    link(flux_schnell_folder, root)
    return root


@pytest.fixture(scope="module")
def executor(models):
    return make_executor(models)


def reference(models, name: str, cls=None):
    cls = cls or diffusers.FluxPipeline
    return cls.from_pretrained(models / "checkpoints" / name, local_files_only=True)


def txt2img(name: str, *, width: int, height: int, steps: int, seed: int, cfg: float = 1.0, guidance: float = 3.5,
            negative: str = "", batch: int = 1) -> dict:
    return {
        "load": n("core.FlowCheckpointLoader", {"ckpt_name": name}),
        "pos": n("core.FluxTextEncode", {"text": PROMPT, "guidance": guidance}, clip=("load", "clip")),
        "neg": n("core.FluxTextEncode", {"text": negative, "guidance": guidance}, clip=("load", "clip")),
        "empty": n("core.EmptyLatentForModel", {"width": width, "height": height, "batch_size": batch},
                   model=("load", "model")),
        "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": "euler"},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }


def test_flux_dev_txt2img_batch_equals_flux_pipeline(models, executor):
    batch = 2
    result = run(executor, txt2img("tiny-flux-dev", width=48, height=32, steps=3, seed=7, guidance=4.0, batch=batch),
                 ["decode"])
    expected = reference(models, "tiny-flux-dev")(
        PROMPT, height=32, width=48, num_inference_steps=3, guidance_scale=4.0, num_images_per_prompt=batch,
        generator=torch.Generator("cpu").manual_seed(7), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_flux_dev_with_dpmpp_2m_on_flow_sigmas_equals_flux_pipeline(models, executor):
    nodes = txt2img("tiny-flux-dev", width=32, height=32, steps=3, seed=4)
    nodes["sampler"]["params"]["scheduler"] = "dpmpp_2m"
    result = run(executor, nodes, ["decode"])
    pipe = reference(models, "tiny-flux-dev")
    pipe.scheduler = diffusers.DPMSolverMultistepScheduler(
        use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=3.0, use_dynamic_shifting=True,
        algorithm_type="dpmsolver++", solver_order=2)
    expected = pipe(PROMPT, height=32, width=32, num_inference_steps=3, generator=torch.Generator("cpu").manual_seed(4),
                    output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_flux_schnell_txt2img_equals_flux_pipeline(models, executor):
    result = run(executor, txt2img("tiny-flux-schnell", width=32, height=32, steps=2, seed=3), ["decode", "load"])
    assert result.outputs["load"]["family"] == "FLUX.1 [schnell]"
    expected = reference(models, "tiny-flux-schnell")(
        PROMPT, height=32, width=32, num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(3),
        output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_flux_true_cfg_with_a_negative_prompt_equals_flux_pipeline(models, executor):
    nodes = txt2img("tiny-flux-dev", width=32, height=48, steps=2, seed=11, cfg=2.5, negative="blurry")
    result = run(executor, nodes, ["decode"])
    expected = reference(models, "tiny-flux-dev")(
        PROMPT, negative_prompt="blurry", true_cfg_scale=2.5, height=48, width=32, num_inference_steps=2,
        generator=torch.Generator("cpu").manual_seed(11), output_type="np",
    ).images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_flux_guidance_node_changes_the_distilled_guidance_as_the_pipeline_parameter(models, executor):
    nodes = txt2img("tiny-flux-dev", width=32, height=32, steps=2, seed=5)
    nodes["guided"] = n("core.FluxGuidance", {"guidance": 7.0}, conditioning=("pos", "conditioning"))
    nodes["sampler"]["inputs"]["positive"] = ["guided", "conditioning"]
    result = run(executor, nodes, ["decode"])
    pipe = reference(models, "tiny-flux-dev")
    kwargs = dict(height=32, width=32, num_inference_steps=2, output_type="np")
    expected = pipe(PROMPT, guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(5), **kwargs).images
    default = pipe(PROMPT, guidance_scale=3.5, generator=torch.Generator("cpu").manual_seed(5), **kwargs).images
    assert_same_image(result.outputs["decode"]["image"], expected)
    assert np.abs(expected - default).max() > 1e-4  # the guidance reaches the model


@pytest.fixture(scope="module")
def input_image(tmp_path_factory):
    from PIL import Image

    pixels = (np.random.default_rng(3).random((32, 48, 3)) * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("images") / "input.png"
    Image.fromarray(pixels).save(path)
    return path


def test_flux_img2img_equals_flux_img2img_pipeline(models, executor, input_image):
    steps, denoise = 4, 0.6  # FLUX's pipeline skips int(4 - 2.4) = 1 step here, the SD pipelines 4 - int(2.4) = 2
    from diffusers.pipelines.flux.pipeline_flux_img2img import retrieve_latents
    from PIL import Image

    nodes = {
        "load": n("core.FlowCheckpointLoader", {"ckpt_name": "tiny-flux-dev"}),
        "pos": n("core.FluxTextEncode", {"text": PROMPT}, clip=("load", "clip")),
        "image": n("core.LoadImage", {"path": str(input_image)}),
        "encode": n("core.VAEEncode", {"mode": "mode"}, pixels=("image", "image"), vae=("load", "vae")),
        "sampler": n("core.KSampler", {"seed": 21, "steps": steps, "cfg": 1.0, "scheduler": "euler", "denoise": denoise},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("pos", "conditioning"),
                     latent_image=("encode", "latent")),
        "decode": n("core.VAEDecode", samples=("sampler", "latent"), vae=("load", "vae")),
    }
    result = run(executor, nodes, ["decode"])
    pipe = reference(models, "tiny-flux-dev", diffusers.FluxImg2ImgPipeline)
    pixels = pipe.image_processor.preprocess(Image.open(input_image).convert("RGB"))
    with torch.no_grad():  # the pipeline samples the encoding with its generator; hand it the mode, as our node does
        latents = retrieve_latents(pipe.vae.encode(pixels), sample_mode="argmax")
    latents = (latents - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    expected = pipe(PROMPT, image=latents, strength=denoise, height=32, width=48, num_inference_steps=steps, guidance_scale=3.5,
                    generator=torch.Generator("cpu").manual_seed(21), output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)


def test_flux_latents_must_be_multiples_of_16_pixels(executor):
    from nodegraph.errors import NodeExecutionError

    nodes = txt2img("tiny-flux-dev", width=40, height=32, steps=1, seed=0)
    with pytest.raises(NodeExecutionError) as info:
        run(executor, nodes, ["empty"])
    assert info.value.node_id == "empty" and "width must be a multiple of 16" in info.value.message


def test_guidance_chain_links_act_on_flux_in_flow_space(executor):
    """Dynamic thresholding that mimics the CFG scale itself (percentile 1) must give back the unthresholded image:
    the link converts the velocity to x0 and back through the noise level; a wrong conversion would show here.
    A lower mimic scale must change it."""
    nodes = txt2img("tiny-flux-dev", width=32, height=32, steps=2, seed=6, cfg=3.0, negative="blurry")
    plain = run(executor, nodes, ["decode"]).outputs["decode"]["image"]
    images = {}
    for mimic in (3.0, 1.0):
        nodes["dyn"] = n("core.DynamicThresholding", {"mode": "latent", "percentile": 1.0, "mimic_scale": mimic},
                         model=("load", "model"))
        nodes["sampler"]["inputs"]["model"] = ["dyn", "model"]
        images[mimic] = run(executor, nodes, ["decode"]).outputs["decode"]["image"]
    assert (images[3.0] - plain).abs().max() < 1e-4
    assert (images[1.0] - plain).abs().max() > 1e-3


def test_flow_shift_node_equals_the_pipeline_with_that_scheduler_config(models, executor):
    nodes = txt2img("tiny-flux-dev", width=32, height=48, steps=3, seed=8)
    nodes["shift"] = n("core.FlowShift", {"mode": "resolution", "base_shift": 0.8, "max_shift": 2.0},
                       model=("load", "model"))
    nodes["empty"] = n("core.EmptyFlowLatent", {"width": 32, "height": 48})
    nodes["sampler"]["inputs"]["model"] = ["shift", "model"]
    result = run(executor, nodes, ["decode"])
    pipe = reference(models, "tiny-flux-dev")
    pipe.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, base_shift=0.8,
                                                                           max_shift=2.0)
    expected = pipe(PROMPT, height=48, width=32, num_inference_steps=3, generator=torch.Generator("cpu").manual_seed(8),
                    output_type="np").images
    assert_same_image(result.outputs["decode"]["image"], expected)
