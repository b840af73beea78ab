"""Scale, invert and the control-image preprocessors (Canny, threshold, line art)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nodegraph.errors import NodeInputError
from nodes.image.ops import image_invert, image_scale
from nodes.image.preprocess import canny_edges, image_threshold, line_art
from tests.nodes.image_fixtures import call, make_ctx


def _run(definition, tmp_path: Path, **kwargs):
    return call(definition, make_ctx(tmp_path), **kwargs)


@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic", "lanczos", "area"])
def test_scale_gives_the_asked_size_within_range(tmp_path: Path, method: str) -> None:
    images = torch.rand(2, 20, 30, 3)
    out = _run(image_scale, tmp_path, images=images, method=method, width=45, height=16)["images"]
    assert out.shape == (2, 16, 45, 3) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_scale_lanczos_matches_pillow_on_smooth_8bit_images(tmp_path: Path) -> None:
    # Smooth content: Pillow's 8-bit path clips between its two passes, which only matters where Lanczos
    # overshoots (noise, hard edges); the float path here does not clip in between.
    yy, xx = np.mgrid[0:24, 0:32]
    smooth = 0.5 + 0.3 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] * np.array([1.0, 0.6, -0.8])
    pixels = (smooth * 255).round().astype(np.uint8)
    images = torch.from_numpy(pixels).float()[None] / 255
    out = _run(image_scale, tmp_path, images=images, method="lanczos", width=20, height=15)["images"]
    expected = np.asarray(Image.fromarray(pixels).resize((20, 15), Image.Resampling.LANCZOS)).astype(np.float32) / 255
    assert np.abs(out[0].numpy() - expected).max() <= 1 / 255 + 1e-6


def test_scale_with_a_zero_side_keeps_aspect_ratio(tmp_path: Path) -> None:
    images = torch.rand(1, 20, 40, 3)
    assert _run(image_scale, tmp_path, images=images, width=0, height=10)["images"].shape == (1, 10, 20, 3)
    assert _run(image_scale, tmp_path, images=images, width=80, height=0)["images"].shape == (1, 40, 80, 3)


def test_scale_center_crop_trims_the_sides_instead_of_stretching(tmp_path: Path) -> None:
    images = torch.zeros(1, 10, 30, 3)
    images[:, :, 10:20] = 1.0  # white centre square, black wings
    out = _run(image_scale, tmp_path, images=images, method="nearest", width=20, height=20, crop="center")["images"]
    assert out.shape == (1, 20, 20, 3) and torch.all(out == 1.0)
    stretched = _run(image_scale, tmp_path, images=images, method="nearest", width=20, height=20)["images"]
    assert not torch.all(stretched == 1.0)


def test_scale_same_size_is_a_copy_not_the_input(tmp_path: Path) -> None:
    images = torch.rand(1, 8, 8, 3)
    out = _run(image_scale, tmp_path, images=images, width=8, height=8)["images"]
    assert torch.equal(out, images) and out.data_ptr() != images.data_ptr()


def test_invert(tmp_path: Path) -> None:
    images = torch.rand(1, 4, 4, 3)
    assert torch.equal(_run(image_invert, tmp_path, images=images)["images"], 1.0 - images)


def _square(size: int = 64, lo: int = 16, hi: int = 48) -> torch.Tensor:
    images = torch.zeros(1, size, size, 3)
    images[:, lo:hi, lo:hi] = 1.0
    return images


def test_canny_finds_the_outline_of_a_square(tmp_path: Path) -> None:
    edges = _run(canny_edges, tmp_path, images=_square())["images"]
    assert edges.shape == (1, 64, 64, 3) and torch.equal(edges[..., 0], edges[..., 2])
    on = edges[0, ..., 0] > 0.5
    ys, xs = torch.nonzero(on, as_tuple=True)
    assert on.sum() > 4 * 28  # nearly every point of the 4 sides
    # every edge pixel lies on the square's border (within a pixel), none inside or far outside
    near_border = (torch.minimum((ys - 16).abs(), (ys - 47).abs()) <= 1) | (torch.minimum((xs - 16).abs(), (xs - 47).abs()) <= 1)
    assert torch.all(near_border)
    assert not on[20:44, 20:44].any() and not on[:12].any()
    for row in (24, 32, 40):  # each side is crossed exactly once by one thin line
        left = on[row, :32].nonzero().flatten()
        assert len(left) == 1 and abs(int(left[0]) - 16) <= 1


def test_canny_high_threshold_above_the_contrast_finds_nothing(tmp_path: Path) -> None:
    faint = _square() * 0.02 + 0.5  # a 5-level step: far below the thresholds
    assert not _run(canny_edges, tmp_path, images=faint)["images"].any()


def test_canny_refuses_low_above_high(tmp_path: Path) -> None:
    with pytest.raises(NodeInputError, match="low threshold") as info:
        _run(canny_edges, tmp_path, images=_square(), low_threshold=200, high_threshold=100)
    assert info.value.field == "low_threshold"


def test_threshold_splits_by_luma_and_inverts(tmp_path: Path) -> None:
    images = torch.tensor([[[[0.2, 0.2, 0.2], [0.8, 0.8, 0.8], [1.0, 0.0, 0.0]]]])  # luma of red: 0.299
    out = _run(image_threshold, tmp_path, images=images, threshold=0.5)
    assert out["mask"].tolist() == [[[0.0, 1.0, 0.0]]]
    assert torch.equal(out["images"][..., 1], out["mask"])
    inverted = _run(image_threshold, tmp_path, images=images, threshold=0.5, invert=True)
    assert inverted["mask"].tolist() == [[[1.0, 0.0, 1.0]]]


def test_line_art_extracts_a_dark_stroke_on_white(tmp_path: Path) -> None:
    images = torch.ones(1, 48, 48, 3)
    images[:, 10:38, 23:25] = 0.0  # a vertical pen stroke
    lines = _run(line_art, tmp_path, images=images)["images"][0, ..., 0]
    assert lines[12:36, 23:25].all()  # the stroke is a white line
    assert not lines[:, :18].any() and not lines[:, 30:].any()  # blank paper stays black
    inverted = _run(line_art, tmp_path, images=1.0 - images)["images"]
    assert not inverted[0, 12:36, 23:25, 0].any()  # a light stroke on dark is not a pen line
