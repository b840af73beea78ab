"""Inpainting nodes on tiny checkpoints: what each route hands the sampler, the notes and errors bad input gets,
and the guarantee that Image Composite Masked leaves everything outside the mask exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodegraph.errors import NodeExecutionError
from nodegraph.events import NodeLog
from tests.input_policy import tmp_run_settings
from tests.nodes.inpaint_helpers import CHECKPOINTS, SIZE, shared_files
from tests.nodes.sd_workflow_helpers import make_executor, n, run_workflow


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return shared_files(tmp_path_factory)


@pytest.fixture(scope="module")
def executor(files):
    return make_executor(files["models"])


def base(channels: int, image, mask="") -> dict:
    return {
        "ckpt": {"type": "core.CheckpointLoader", "params": {"ckpt_name": CHECKPOINTS[("sd15", channels)]}},
        "pos": n("core.CLIPTextEncode", {"text": "a cat"}, clip=("ckpt", "clip")),
        "neg": n("core.CLIPTextEncode", {"text": ""}, clip=("ckpt", "clip")),
        "load": n("core.LoadImage", {"path": str(image), "mask_path": str(mask)}),
    }


def sampler(latent: tuple[str, str], positive=("pos", "conditioning"), negative=("neg", "conditioning"), **params):
    return n("core.KSampler", {"seed": 3, "steps": 2, "cfg": 4.0, "scheduler": "euler", **params},
             model=("ckpt", "model"), positive=positive, negative=negative, latent_image=latent)


def logs(events: list) -> list[str]:
    return [e.message for e in events if isinstance(e, NodeLog)]


def test_after_image_composite_masked_everything_outside_the_mask_is_the_input_image(executor, files):
    nodes = base(4, files["image"], files["binary"])
    nodes["encode"] = n("core.VAEEncode", pixels=("load", "image"), vae=("ckpt", "vae"))
    nodes["masked"] = n("core.SetLatentNoiseMask", samples=("encode", "latent"), mask=("load", "mask"))
    nodes["sampler"] = sampler(("masked", "latent"))
    nodes["decode"] = n("core.VAEDecode", samples=("sampler", "latent"), vae=("ckpt", "vae"))
    nodes["paste"] = n("core.ImageCompositeMasked", destination=("load", "image"), source=("decode", "image"),
                       mask=("load", "mask"))
    result = run_workflow(executor, nodes, ["paste", "load", "decode"]).outputs
    image, mask = result["load"]["image"], result["load"]["mask"]
    out, decoded = result["paste"]["image"], result["decode"]["image"]
    outside = (mask == 0)[..., None].expand_as(image)
    inside = (mask == 1)[..., None].expand_as(image)
    assert outside.any() and inside.any()
    assert torch.equal(out[outside], image[outside])
    assert torch.equal(out[inside], decoded[inside])
    assert not torch.equal(decoded[outside], image[outside])  # the VAE alone would not have kept it exactly


def test_loader_says_a_checkpoint_is_an_inpainting_model(executor, files):
    events: list = []
    result = executor.run(*_graph(executor, {"ckpt": base(9, files["image"])["ckpt"]}), on_event=events.append,
                          settings=tmp_run_settings())
    assert result.outputs["ckpt"]["model"].unet.config.in_channels == 9
    assert any("inpainting model" in message for message in logs(events))


def _graph(executor, nodes: dict):
    from nodegraph.workflow import parse_workflow

    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
    return parse_workflow(doc, executor.registry), list(nodes)


def test_an_inpainting_model_without_a_mask_is_told_how_to_give_it_one(executor, files):
    nodes = base(9, files["image"])
    nodes["encode"] = n("core.VAEEncode", pixels=("load", "image"), vae=("ckpt", "vae"))
    nodes["sampler"] = sampler(("encode", "latent"))
    with pytest.raises(NodeExecutionError, match=r"inpainting model .* 'VAE Encode \(for Inpainting\)'") as info:
        run_workflow(executor, nodes, ["sampler"])
    assert info.value.node_id == "sampler"
    assert info.value.__cause__.field == "latent_image"


def test_inpaint_conditioning_on_an_ordinary_model_uses_the_noise_mask_with_a_note(executor, files):
    nodes = base(4, files["image"], files["binary"])
    nodes["inpaint"] = n("core.InpaintModelConditioning", positive=("pos", "conditioning"),
                         negative=("neg", "conditioning"), vae=("ckpt", "vae"), pixels=("load", "image"),
                         mask=("load", "mask"))
    nodes["sampler"] = sampler(("inpaint", "latent"), ("inpaint", "positive"), ("inpaint", "negative"))
    events: list = []
    executor.run(*_graph(executor, nodes), on_event=events.append, settings=tmp_run_settings())
    assert any("not an inpainting model" in message for message in logs(events))


def test_vae_encode_for_inpaint_fills_the_masked_pixels_grey_and_grows_the_noise_mask(executor, files):
    from nodes.mask.ops import dilate_square

    nodes = base(9, files["image"], files["binary"])
    nodes["encode"] = n("core.VAEEncodeForInpaint", {"grow_mask_by": 6}, pixels=("load", "image"),
                        vae=("ckpt", "vae"), mask=("load", "mask"))
    nodes["grey"] = n("core.ImageCompositeMasked", destination=("load", "image"), source=("solid", "image"),
                      mask=("load", "mask"))
    nodes["solid"] = n("core.MaskToImage", mask=("half", "mask"))
    nodes["half"] = {"type": "core.SolidMask", "params": {"value": 0.5, "width": SIZE, "height": SIZE}}
    nodes["reference"] = n("core.VAEEncode", pixels=("grey", "image"), vae=("ckpt", "vae"))
    result = run_workflow(executor, nodes, ["encode", "reference", "load"]).outputs
    latent = result["encode"]["latent"]
    assert torch.equal(latent["samples"], result["reference"]["latent"]["samples"])
    assert torch.equal(latent["noise_mask"][:, 0], dilate_square(result["load"]["mask"], 6))
    assert latent["noise_mask"].sum() > result["load"]["mask"].sum()


def test_mask_file_beside_the_image_replaces_its_alpha_and_is_resized_when_only_its_size_differs(executor, files, tmp_path):
    from PIL import Image

    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:8, :, 3] = 0  # the top rows transparent: repaint
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    half = np.zeros((SIZE // 2, SIZE // 2), np.uint8)
    half[:, : SIZE // 4] = 255
    Image.fromarray(half, "L").save(tmp_path / "half.png")
    events: list = []
    nodes = {
        "alpha": n("core.LoadImage", {"path": str(tmp_path / "alpha.png")}),
        "file": n("core.LoadImage", {"path": str(tmp_path / "alpha.png"), "mask_path": str(tmp_path / "half.png")}),
        "as_mask": n("core.LoadImageMask", {"path": str(tmp_path / "alpha.png"), "channel": "alpha"}),
    }
    outputs = executor.run(*_graph(executor, nodes), on_event=events.append, settings=tmp_run_settings()).outputs
    assert outputs["alpha"]["mask"][0, :8].min() == 1 and outputs["alpha"]["mask"][0, 8:].max() == 0
    assert torch.equal(outputs["as_mask"]["mask"], outputs["alpha"]["mask"])
    mask = outputs["file"]["mask"]
    assert mask.shape == (1, SIZE, SIZE) and mask[0, :, :6].min() == 1 and mask[0, :, 18:].max() == 0
    assert any("resized" in message for message in logs(events))


def test_a_mask_of_another_aspect_ratio_is_a_clear_error(executor, files, tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((SIZE, SIZE * 2), np.uint8), "L").save(tmp_path / "wide.png")
    nodes = {"load": n("core.LoadImage", {"path": str(files["image"]), "mask_path": str(tmp_path / "wide.png")})}
    with pytest.raises(NodeExecutionError, match="the mask is 64x32 but the image is 32x32") as info:
        run_workflow(executor, nodes, ["load"])
    assert info.value.__cause__.field == "mask_path"
    nodes = base(4, files["image"])
    nodes["wide"] = n("core.LoadImageMask", {"path": str(tmp_path / "wide.png"), "channel": "luminance"})
    nodes["encode"] = n("core.VAEEncode", pixels=("load", "image"), vae=("ckpt", "vae"))
    nodes["masked"] = n("core.SetLatentNoiseMask", samples=("encode", "latent"), mask=("wide", "mask"))
    with pytest.raises(NodeExecutionError, match="aspect") as info:
        run_workflow(executor, nodes, ["masked"])
    assert info.value.__cause__.field == "mask"


def test_empty_and_full_masks_are_documented_notes_not_errors(executor, files):
    nodes = base(4, files["image"])
    nodes["encode"] = n("core.VAEEncode", pixels=("load", "image"), vae=("ckpt", "vae"))
    for value, expected in ((0.0, "nothing is repainted"), (1.0, "everything is repainted")):
        nodes["solid"] = {"type": "core.SolidMask", "params": {"value": value, "width": SIZE, "height": SIZE}}
        nodes["masked"] = n("core.SetLatentNoiseMask", samples=("encode", "latent"), mask=("solid", "mask"))
        nodes["sampler"] = sampler(("masked", "latent"))
        events: list = []
        executor.run(*_graph(executor, nodes), on_event=events.append, settings=tmp_run_settings())
        assert any(expected in message for message in logs(events)), logs(events)


def test_two_samplers_hand_over_a_masked_latent_with_its_leftover_noise(executor, files):
    """KSampler (Advanced) halves: the first keeps the kept region at the next step's noise level, the second
    continues without new noise and lands on the clean image there."""
    nodes = base(4, files["image"], files["binary"])
    nodes["encode"] = n("core.VAEEncode", pixels=("load", "image"), vae=("ckpt", "vae"))
    nodes["masked"] = n("core.SetLatentNoiseMask", samples=("encode", "latent"), mask=("load", "mask"))
    common = {"seed": 3, "steps": 4, "cfg": 4.0, "scheduler": "euler"}
    nodes["first"] = n("core.KSamplerAdvanced", {**common, "end_at_step": 2, "return_with_leftover_noise": True},
                       model=("ckpt", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                       latent_image=("masked", "latent"))
    nodes["second"] = n("core.KSamplerAdvanced", {**common, "start_at_step": 2, "add_noise": False},
                        model=("ckpt", "model"), positive=("pos", "conditioning"), negative=("neg", "conditioning"),
                        latent_image=("first", "latent"))
    result = run_workflow(executor, nodes, ["first", "second", "encode"]).outputs
    image = result["encode"]["latent"]["samples"]
    first, second = result["first"]["latent"], result["second"]["latent"]
    assert "noise_mask" in first  # the mask travels with the latent
    kept = torch.nn.functional.interpolate(first["noise_mask"], size=image.shape[-2:]) == 0
    kept = kept.expand_as(image)
    assert not torch.equal(first["samples"][kept], image[kept])  # still noisy after the first half
    assert torch.equal(second["samples"][kept], image[kept])  # clean at the end
