"""DeepFloyd IF (Imagen-style pixel cascade) through the product's nodes equals diffusers' IFPipeline and
IFSuperResolutionPipeline on tiny random models.

IF's scheduler configs ask for Imagen's dynamic thresholding inside DDPMScheduler.step; the loader moves it into
the guidance chain. The pipelines keep it in their scheduler, so equality shows the chain's thresholding equals
diffusers' scheduler thresholding with the same ratio and maximum. Learned variance (learned_range) reaches the
scheduler as in the pipelines; stage II's noise conditioning augmentation is drawn from the sampler's seed right
after the start noise, as the pipeline draws it.
"""

from __future__ import annotations

import pytest
import torch

from nodegraph.errors import NodeExecutionError
from tests.fixtures.tiny_dit import if_scheduler, write_if_stage_1, write_if_stage_2
from tests.nodes.dit_helpers import PROMPT, assert_same_image, make_executor, n, one_thread, run  # noqa: F401 (one_thread: autouse)

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_if_stage_1(root / "checkpoints" / "tiny-if-1")
    write_if_stage_2(root / "checkpoints" / "tiny-if-2")
    return make_executor(root)


def stage_1(*, size: int, steps: int, cfg: float, seed: int, thresholding: bool = True) -> dict:
    return {
        "load": n("core.DiffusersModelLoader", {"model_name": "tiny-if-1", "dynamic_thresholding": thresholding}),
        "pos": n("core.T5TextEncode", {"text": PROMPT}, clip=("load", "clip")),
        "neg": n("core.T5TextEncode", {"text": "blurry"}, clip=("load", "clip")),
        "empty": n("core.EmptyLatentForModel", {"width": size, "height": size}, model=("load", "model")),
        "sampler": n("core.KSampler", {"seed": seed, "steps": steps, "cfg": cfg, "scheduler": "ddpm"},
                     model=("load", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                     latent_image=("empty", "latent")),
        "image": n("core.PixelsToImage", samples=("sampler", "latent")),
    }


def stage_1_pipeline(outputs: dict, thresholding: bool = True, **scheduler_changes):
    clip, model = outputs["clip"], outputs["model"]
    scheduler = diffusers.DDPMScheduler.from_config(if_scheduler().config, thresholding=thresholding, **scheduler_changes)
    return diffusers.IFPipeline(
        tokenizer=clip.text_tokenizers[0], text_encoder=clip.text_encoders[0], unet=model.unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
    )


def to_image(pixels: torch.Tensor) -> torch.Tensor:
    """The pipelines' 'pt' output is the raw sample in -1..1; their 'np'/'pil' paths map it like this."""
    return (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1)


# cfg 20 drives x0 far out of [-1, 1], so the thresholding and its maximum (1.5) act
@pytest.mark.parametrize(("cfg", "thresholding"), [(20.0, True), (7.0, False), (1.0, True)])
def test_if_stage_1_equals_if_pipeline(executor, cfg, thresholding):
    result = run(executor, stage_1(size=16, steps=3, cfg=cfg, seed=3, thresholding=thresholding), ["load", "image"])
    expected = stage_1_pipeline(result.outputs["load"], thresholding)(
        PROMPT, negative_prompt="blurry", height=16, width=16, num_inference_steps=3, guidance_scale=cfg,
        generator=torch.Generator("cpu").manual_seed(3), output_type="pt", clean_caption=False,
    ).images
    assert_same_image(result.outputs["image"]["image"], to_image(expected))


def test_dynamic_thresholding_node_in_imagen_mode_equals_scheduler_thresholding(executor):
    """The guidance chain's Imagen link (core.DynamicThresholding, mode imagen) on IF with the folder's own
    thresholding off equals DDPMScheduler(thresholding=True) at the same ratio. That link has no maximum
    (s = max(1, quantile)), so the scheduler's sample_max_value is set where it never binds."""
    nodes = stage_1(size=16, steps=3, cfg=20.0, seed=4, thresholding=False)
    nodes["threshold"] = n("core.DynamicThresholding", {"mode": "imagen", "percentile": 0.9}, model=("load", "model"))
    nodes["sampler"]["inputs"]["model"] = ["threshold", "model"]
    result = run(executor, nodes, ["load", "image"])
    call = dict(prompt=PROMPT, negative_prompt="blurry", height=16, width=16, num_inference_steps=3, guidance_scale=20.0,
                output_type="pt", clean_caption=False)
    thresholded = stage_1_pipeline(result.outputs["load"], dynamic_thresholding_ratio=0.9, sample_max_value=1e4)(
        generator=torch.Generator("cpu").manual_seed(4), **call).images
    plain = stage_1_pipeline(result.outputs["load"], thresholding=False)(
        generator=torch.Generator("cpu").manual_seed(4), **call).images
    assert (to_image(thresholded) - to_image(plain)).abs().max() > 0.01  # the thresholding acts here
    assert_same_image(result.outputs["image"]["image"], to_image(thresholded))


def test_folder_thresholding_becomes_a_guidance_link_and_leaves_the_scheduler(executor):
    result = run(executor, {"load": n("core.DiffusersModelLoader", {"model_name": "tiny-if-1"})}, ["load"])
    model = result.outputs["load"]["model"]
    assert "thresholding" not in model.scheduler_config
    (link,) = model.guidance
    assert (link.ratio, link.max_value) == (0.95, 1.5)
    assert result.outputs["load"]["family"] == "DeepFloyd IF stage I"
    assert result.outputs["load"]["vae"] is None


def test_if_cascade_stage_2_equals_super_resolution_pipeline(executor):
    nodes = stage_1(size=16, steps=2, cfg=7.0, seed=3)
    nodes.update({
        "load2": n("core.DiffusersModelLoader", {"model_name": "tiny-if-2"}),
        "sr": n("core.IFSuperResolution", {"noise_level": 100, "scale": 2}, model=("load2", "model"), image=("image", "image")),
        "sampler2": n("core.KSampler", {"seed": 5, "steps": 3, "cfg": 4.0, "scheduler": "ddpm"},
                      model=("sr", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                      latent_image=("sr", "latent")),
        "image2": n("core.PixelsToImage", samples=("sampler2", "latent")),
    })
    result = run(executor, nodes, ["load", "load2", "image", "image2"])
    clip, model2 = result.outputs["load"]["clip"], result.outputs["load2"]["model"]
    assert result.outputs["load2"]["clip"] is None  # stage II folders ship without T5
    pipe = diffusers.IFSuperResolutionPipeline(
        tokenizer=clip.text_tokenizers[0], text_encoder=clip.text_encoders[0], unet=model2.unet,
        scheduler=if_scheduler(1.0), image_noising_scheduler=diffusers.DDPMScheduler.from_config(model2.noise_scheduler_config),
        safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
    )
    low_res = result.outputs["image"]["image"].permute(0, 3, 1, 2) * 2 - 1
    expected = pipe(
        PROMPT, image=low_res, negative_prompt="blurry", height=32, width=32, num_inference_steps=3, guidance_scale=4.0,
        noise_level=100, generator=torch.Generator("cpu").manual_seed(5), output_type="pt", clean_caption=False,
    ).images
    out = result.outputs["image2"]["image"]
    assert out.shape == (1, 32, 32, 3)
    assert_same_image(out, to_image(expected))


def test_noise_level_changes_stage_2_and_the_bound_model_leaves_the_loaded_one_alone(executor):
    nodes = stage_1(size=16, steps=1, cfg=1.0, seed=1)
    for level in (0, 500):
        nodes[f"sr{level}"] = n("core.IFSuperResolution", {"noise_level": level, "scale": 2},
                                model=("load2", "model"), image=("image", "image"))
        nodes[f"s{level}"] = n("core.KSampler", {"seed": 5, "steps": 1, "cfg": 1.0, "scheduler": "ddpm"},
                               model=(f"sr{level}", "model"), positive=("pos", "conditioning"),
                               negative=("neg", "conditioning"), latent_image=(f"sr{level}", "latent"))
    nodes["load2"] = n("core.DiffusersModelLoader", {"model_name": "tiny-if-2"})
    result = run(executor, nodes, ["load2", "s0", "s500"])
    assert not torch.equal(result.outputs["s0"]["latent"]["samples"], result.outputs["s500"]["latent"]["samples"])
    assert result.outputs["load2"]["model"].low_res is None


def test_super_resolution_refuses_a_stage_1_model(executor):
    nodes = stage_1(size=16, steps=1, cfg=1.0, seed=1)
    nodes["sr"] = n("core.IFSuperResolution", {}, model=("load", "model"), image=("image", "image"))
    with pytest.raises(NodeExecutionError, match=r"'sr'.*stage II model"):
        run(executor, nodes, ["sr"])


def test_t5_text_encode_explains_a_stage_2_folder_without_text_encoder(executor):
    nodes = {"load2": n("core.DiffusersModelLoader", {"model_name": "tiny-if-2"}),
             "pos": n("core.T5TextEncode", {"text": "x"}, clip=("load2", "clip"))}
    with pytest.raises(NodeExecutionError, match="stage I's"):
        run(executor, nodes, ["pos"])
