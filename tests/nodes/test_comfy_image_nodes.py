"""ComfyUI's resize and conditioning nodes: sizes as ComfyUI computes them, torch's modes, bislerp and
Lanczos, combine and zero-out."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nodes.comfy import conditioning_nodes as cond
from nodes.comfy import image_nodes as img
from nodes.comfy.resize import bislerp, center_crop, common_upscale
from nodes.sd.conditioning import ConditioningEntry


class Ctx:
    def warn(self, message: str) -> None:
        self.warning = message


def latent(h: int = 8, w: int = 12) -> dict:
    return {"samples": torch.randn(1, 4, h, w, generator=torch.Generator().manual_seed(0)), "batch_index": [0]}


def test_latent_upscale_sizes_follow_comfyui():
    out = img.latent_upscale.fn(Ctx(), latent(), "nearest-exact", 0, 128, "disabled")["latent"]
    assert out["samples"].shape == (1, 4, 16, 24) and out["batch_index"] == [0]  # width from the aspect ratio
    small = img.latent_upscale.fn(Ctx(), latent(), "bilinear", 16, 16, "disabled")["latent"]["samples"]
    assert small.shape == (1, 4, 8, 8)  # sides are at least 64 pixels
    same = img.latent_upscale.fn(Ctx(), latent(), "bicubic", 0, 0, "disabled")["latent"]
    assert torch.equal(same["samples"], latent()["samples"])


def test_nearest_exact_is_torchs_nearest_exact():
    source = latent()["samples"]
    ours = img.latent_upscale_by.fn(Ctx(), {"samples": source}, "nearest-exact", 1.5)["latent"]["samples"]
    assert torch.equal(ours, torch.nn.functional.interpolate(source, size=(12, 18), mode="nearest-exact"))


def test_bislerp_keeps_lengths_and_directions_of_channel_vectors():
    source = latent()["samples"]
    same = bislerp(source, 12, 8)
    torch.testing.assert_close(same, source)  # no resize: every vector kept
    bigger = bislerp(source, 24, 16)
    norms = bigger.norm(dim=1)
    assert float(norms.min()) >= float(source.norm(dim=1).min()) * 0.5
    torch.testing.assert_close(bigger[..., ::2, ::2][..., :1, :1], source[..., :1, :1])


def test_center_crop_trims_to_the_target_aspect():
    x = torch.zeros(1, 3, 10, 20)
    assert center_crop(x, 10, 10).shape == (1, 3, 10, 10)
    assert common_upscale(x, 5, 5, "area", "center").shape == (1, 3, 5, 5)


def test_image_scale_and_lanczos():
    image = torch.rand(1, 20, 30, 3, generator=torch.Generator().manual_seed(1))
    scaled = img.image_scale.fn(Ctx(), image, "lanczos", 60, 0, "disabled")
    assert scaled.shape == (1, 40, 60, 3) and float(scaled.min()) >= 0.0
    by = img.image_scale_by.fn(Ctx(), image, "bilinear", 0.5)
    assert by.shape == (1, 10, 15, 3)
    from nodegraph.errors import NodeInputError

    with pytest.raises(NodeInputError, match="leaves no pixels"):
        img.image_scale_by.fn(Ctx(), image, "bilinear", 0.01)


def test_truncation_to_8_bit_levels_rounds_down():
    values = torch.tensor([[[[0.0, 0.999 / 255, 1.999 / 255], [0.5, 1.0, 1.2]]]])
    assert (img.truncate_to_8bit(values) * 255).round().tolist() == [[[[0.0, 0.0, 1.0], [127.0, 255.0, 255.0]]]]


def entry(value: float) -> ConditioningEntry:
    return ConditioningEntry(torch.full((1, 77, 8), value), torch.full((1, 4), value), {"strength": 1.0})


def test_combine_concatenates_and_zero_out_zeroes_embeddings():
    combined = cond.conditioning_combine.fn(Ctx(), (entry(1.0),), (entry(2.0),))
    assert [float(e.embeds[0, 0, 0]) for e in combined] == [1.0, 2.0]
    zeroed = cond.conditioning_zero_out.fn(Ctx(), combined)
    assert all(float(e.embeds.abs().sum()) == 0 and float(e.pooled.abs().sum()) == 0 for e in zeroed)
    assert float(combined[0].embeds.sum()) > 0  # the input is not changed


def test_old_apply_controlnet_acts_on_the_negative_side_too():
    source = object()
    positive = (dataclasses.replace(entry(1.0), extras={"residuals": (source,), cond.APPLY_TO_UNCOND: True}),)
    negative = (entry(0.0),)
    (shared,) = cond.with_uncond_control(positive, negative)
    assert shared.extras["residuals"] == (source,)
    own = (dataclasses.replace(entry(0.0), extras={"residuals": (object(),)}),)
    assert cond.with_uncond_control(positive, own) is own


def test_inpainting_models_get_the_rounded_mask_and_the_masked_image_as_comfyui_builds_them():
    from nodes.comfy.inpaint_concat import BLANK_LATENT, inpaint_concat

    samples = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    mask = torch.zeros(1, 32, 32)
    mask[:, :, 12:] = 0.6  # rounds to 1 on the right
    concat = inpaint_concat({"samples": samples, "noise_mask": mask}, (entry(1.0),), (entry(0.0),))
    assert concat.shape == (2, 5, 4, 4)
    assert set(concat[:, 0].unique().tolist()) == {0.0, 1.0} and torch.equal(concat[:, 1:], samples)
    conditioned = dataclasses.replace(entry(1.0), extras={"concat_latent_image": samples[:1] * 2, "concat_mask": mask})
    from_conditioning = inpaint_concat({"samples": samples}, (conditioned,), (entry(0.0),))
    assert torch.equal(from_conditioning[1, 1:], samples[0] * 2)
    blank = inpaint_concat({"samples": samples}, (entry(1.0),), (entry(0.0),))
    assert torch.equal(blank[:, 0], torch.ones(2, 4, 4)) and float(blank[0, 1, 0, 0]) == pytest.approx(BLANK_LATENT[0])


def test_the_inpainting_channels_ride_on_the_conditioning_batch_or_are_refused_clearly():
    from nodes.comfy.ksampler import ComfyDenoiser
    from nodes.sampling.denoiser import CondBatch
    from nodes.sampling.guidance import build_chain
    from nodes.sampling.loop import ConditioningMismatch
    from nodes.sampling.sigmas import DiscreteSigmas

    wrapper = ComfyDenoiser(object(), DiscreteSigmas(), (entry(1.0),), (entry(0.0),), 5.0, build_chain(5.0),
                            torch.tensor([1.0, 0.0]), (1, 4, 4, 4), "cpu", torch.float32)
    concat = torch.ones(1, 5, 4, 4)
    if "concat" in {f.name for f in dataclasses.fields(CondBatch)}:
        wrapper.add_concat(concat)
        assert all(cond.concat.shape == (len(group), 5, 4, 4) for group, cond in wrapper.groups)
    else:
        with pytest.raises(ConditioningMismatch, match="inpainting"):
            wrapper.add_concat(concat)
