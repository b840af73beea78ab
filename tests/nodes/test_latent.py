"""Empty Latent Image and Latent Upscale."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nodegraph.errors import NodeInputError
from nodes.latent.latent_ops import empty_latent_image, latent_upscale
from tests.nodes.image_fixtures import call, make_ctx


def test_empty_latent_has_four_channels_at_an_eighth_of_the_size(tmp_path: Path) -> None:
    latent = call(empty_latent_image, make_ctx(tmp_path), width=768, height=512, batch_size=3)["latent"]
    assert latent["samples"].shape == (3, 4, 64, 96)
    assert latent["samples"].dtype == torch.float32 and not latent["samples"].any()


@pytest.mark.parametrize(("field", "value"), [("width", 500), ("height", 333)])
def test_empty_latent_refuses_sizes_not_divisible_by_eight(tmp_path: Path, field: str, value: int) -> None:
    with pytest.raises(NodeInputError, match="multiple of 8") as info:
        call(empty_latent_image, make_ctx(tmp_path), **{field: value})
    assert info.value.field == field and str(value - value % 8) in str(info.value)


def _upscale(tmp_path: Path, latent: dict, **params) -> dict:
    return call(latent_upscale, make_ctx(tmp_path), samples=latent, **params)["latent"]


@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic", "area"])
def test_latent_upscale_to_width_and_height(tmp_path: Path, method: str) -> None:
    latent = {"samples": torch.randn(2, 4, 8, 12)}
    out = _upscale(tmp_path, latent, method=method, width=192, height=128)
    assert out["samples"].shape == (2, 4, 16, 24)


def test_latent_upscale_by_factor_and_by_one_side(tmp_path: Path) -> None:
    latent = {"samples": torch.randn(1, 4, 8, 12)}
    assert _upscale(tmp_path, latent, scale_by=1.5)["samples"].shape == (1, 4, 12, 18)
    assert _upscale(tmp_path, latent, scale_by=0.5)["samples"].shape == (1, 4, 4, 6)
    assert _upscale(tmp_path, latent, width=192)["samples"].shape == (1, 4, 16, 24)  # height from the aspect


def test_latent_upscale_nearest_by_two_repeats_cells(tmp_path: Path) -> None:
    samples = torch.randn(1, 4, 5, 7)
    out = _upscale(tmp_path, {"samples": samples}, method="nearest", scale_by=2.0)["samples"]
    assert torch.equal(out, samples.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2))


def test_latent_upscale_center_crop_keeps_the_middle(tmp_path: Path) -> None:
    samples = torch.zeros(1, 4, 8, 16)
    samples[..., 4:12] = 1.0  # the centred square
    out = _upscale(tmp_path, {"samples": samples}, method="nearest", width=64, height=64, crop="center")["samples"]
    assert out.shape == (1, 4, 8, 8) and torch.all(out == 1.0)


def test_latent_upscale_keeps_other_keys_and_leaves_input_alone(tmp_path: Path) -> None:
    samples = torch.randn(1, 4, 8, 8)
    mask = torch.ones(1, 64, 64)
    latent = {"samples": samples, "noise_mask": mask, "batch_index": [0]}
    copy = samples.clone()
    out = _upscale(tmp_path, latent, scale_by=2.0)
    assert out["noise_mask"] is mask and out["batch_index"] == [0]
    assert latent["samples"] is samples and torch.equal(samples, copy)


def test_latent_upscale_refuses_what_is_not_a_latent(tmp_path: Path) -> None:
    with pytest.raises(NodeInputError, match="LATENT"):
        _upscale(tmp_path, torch.zeros(1, 4, 8, 8))  # type: ignore[arg-type]
