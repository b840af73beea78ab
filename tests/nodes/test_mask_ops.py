"""Mask operations and the mask, outpaint, composite and crop nodes, run through the Executor on small tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nodegraph.errors import NodeInputError, WorkflowError
from nodegraph.executor import Executor
from nodegraph.installed import default_registry
from nodegraph.runtime import Runtime
from nodegraph.workflow import parse_workflow
from tests.input_policy import tmp_run_settings


def run(nodes: dict, targets: list[str], events: list | None = None):
    executor = Executor(default_registry(), runtime=Runtime(device="cpu", precision="fp32"))
    doc = {"format": "nodegraph.workflow", "version": 1, "nodes": nodes}
    return executor.run(parse_workflow(doc, executor.registry), targets, settings=tmp_run_settings(),
                        on_event=events.append if events is not None else None).outputs


def call(node_type: str, **kwargs):
    """Call a node function directly with a context that records logs."""
    from nodegraph.context import CancelToken, NodeContext

    definition = default_registry().get(node_type)
    params = {**definition.default_params(), **{k: v for k, v in kwargs.items() if definition.param(k)}}
    inputs = {k: v for k, v in kwargs.items() if definition.input(k)}
    for item in definition.inputs:
        inputs.setdefault(item.name, None)
    messages: list = []
    ctx = NodeContext("n", node_type, messages.append, CancelToken(), None, Runtime(device="cpu", precision="fp32"), None,
                      params)
    return definition.normalise_result(definition.fn(ctx, **inputs, **params)), messages


def square_mask(size: int = 32, box=(8, 8, 20, 24)) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    left, top, right, bottom = box
    mask[:, top:bottom, left:right] = 1.0
    return mask


# ----------------------------------------------------------------------------------------------- mask ops


def test_dilate_square_equals_comfyui_convolution_of_the_rounded_mask():
    from nodes.mask.ops import dilate_square

    rng = np.random.default_rng(0)
    mask = torch.from_numpy((rng.random((2, 23, 31)) > 0.93).astype(np.float32))
    for size in (1, 2, 5, 6):
        kernel = torch.ones(1, 1, size, size)
        padding = math.ceil((size - 1) / 2)
        reference = torch.clamp(torch.nn.functional.conv2d(mask[:, None], kernel, padding=padding), 0, 1)
        assert torch.equal(dilate_square(mask, size), reference[:, 0, :23, :31])


def test_grow_and_shrink_move_the_edge_by_the_given_pixels():
    from nodes.mask.ops import grow

    mask = square_mask(40, (10, 10, 30, 30))
    grown = grow(mask, 3, round_shape=False)
    assert grown[0, 7:33, 7:33].min() == 1 and grown.sum() == 26 * 26
    shrunk = grow(mask, -4, round_shape=False)
    assert shrunk.sum() == 12 * 12 and shrunk[0, 14:26, 14:26].min() == 1
    round_grown = grow(mask, 3, round_shape=True)
    assert round_grown[0, 7, 7] == 0 and round_grown[0, 7, 20] == 1  # corners rounded, sides grown
    assert torch.equal(mask, square_mask(40, (10, 10, 30, 30)))  # input untouched


def test_feather_edges_soften_only_near_the_edge():
    from nodes.mask.ops import blur

    mask = square_mask(64, (16, 16, 48, 48))
    soft = blur(mask, 4.0)
    assert soft[0, 32, 32] == pytest.approx(1.0, abs=1e-4) and soft[0, 2, 2] == pytest.approx(0.0, abs=1e-4)
    assert 0.3 < soft[0, 32, 16] < 0.7  # on the edge: half way
    assert 0.0 < soft[0, 32, 13] < soft[0, 32, 16] < soft[0, 32, 19] < 1.0


def test_feather_borders_ramps_towards_the_image_edges_only_on_the_given_sides():
    from nodes.mask.ops import feather_borders

    mask = torch.ones(1, 10, 20)
    out = feather_borders(mask, 4, 0, 0, 2)
    assert out[0, 5, :5].tolist() == pytest.approx([1 / 5, 2 / 5, 3 / 5, 4 / 5, 1.0])
    assert out[0, -2:, 10].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert out[0, 0, 10] == 1 and out[0, 5, -1] == 1


def test_mask_from_colour_with_tolerance():
    from nodes.mask.ops import from_color

    image = torch.zeros(1, 2, 3, 3)
    image[0, 0, 0] = torch.tensor([1.0, 0.0, 0.0])
    image[0, 0, 1] = torch.tensor([250 / 255, 4 / 255, 0.0])
    assert from_color(image, 0xFF0000).tolist() == [[[1, 0, 0], [0, 0, 0]]]
    assert from_color(image, 0xFF0000, tolerance=5).tolist() == [[[1, 1, 0], [0, 0, 0]]]


@pytest.mark.parametrize(("operation", "expected"), [
    ("multiply", 0.36), ("add", 1.0), ("subtract", 0.0), ("max", 0.6), ("min", 0.6), ("and", 1.0), ("or", 1.0),
    ("xor", 0.0),
])
def test_combine_masks_at_an_offset(operation, expected):
    from nodes.mask.ops import combine

    destination = torch.full((1, 4, 4), 0.6)
    source = torch.full((1, 2, 2), 0.6)
    out = combine(destination, source, 1, 2, operation)
    assert out[0, 2, 1].item() == pytest.approx(expected)
    assert out[0, 0, 0].item() == pytest.approx(0.6) and out[0, 2, 3].item() == pytest.approx(0.6)  # outside: kept


def test_fit_mask_resizes_same_aspect_and_refuses_another_aspect():
    from nodes.mask.ops import fit_mask

    mask, note = fit_mask(torch.ones(1, 16, 32), 32, 64)
    assert mask.shape == (1, 32, 64) and "resized" in note
    with pytest.raises(NodeInputError, match="aspect ratios differ") as info:
        fit_mask(torch.ones(1, 32, 32), 32, 64)
    assert info.value.field == "mask"


# ------------------------------------------------------------------------------------------------ nodes


def test_image_composite_masked_keeps_the_destination_exactly_where_the_mask_is_zero():
    rng = np.random.default_rng(1)
    destination = torch.from_numpy(rng.random((2, 24, 24, 3)).astype(np.float32))
    source = torch.from_numpy(rng.random((2, 24, 24, 3)).astype(np.float32))
    mask = torch.from_numpy(rng.random((2, 24, 24)).astype(np.float32))
    mask[mask < 0.4] = 0.0
    mask[mask > 0.9] = 1.0
    out, _ = call("core.ImageCompositeMasked", destination=destination, source=source, mask=mask)
    image = out["image"]
    keep = (mask == 0)[..., None].expand_as(image)
    take = (mask == 1)[..., None].expand_as(image)
    assert torch.equal(image[keep], destination[keep]) and torch.equal(image[take], source[take])
    soft = (mask > 0) & (mask < 1)
    expected = destination * (1 - mask[..., None]) + source * mask[..., None]
    assert torch.allclose(image[soft], expected[soft])


def test_image_composite_masked_pastes_at_an_offset_and_clips_at_the_border():
    destination = torch.zeros(1, 10, 10, 3)
    source = torch.ones(1, 4, 6, 3)
    out, _ = call("core.ImageCompositeMasked", destination=destination, source=source, x=7, y=8)
    image = out["image"]
    assert image[0, 8:, 7:].min() == 1 and image.sum() == 2 * 3 * 3


def test_pad_for_outpainting_pads_each_side_and_feathers_the_seam():
    image = torch.rand(1, 40, 48, 3)
    out, _ = call("core.ImagePadForOutpaint", image=image, left=8, top=0, right=16, bottom=8, feathering=10)
    padded, mask = out["image"], out["mask"]
    assert padded.shape == (1, 48, 72, 3) and mask.shape == (1, 48, 72)
    assert torch.equal(padded[:, 0:40, 8:56], image)
    assert torch.all(padded[:, :, :8] == 0.5) and torch.all(padded[:, 40:] == 0.5)
    assert torch.all(mask[:, :, :8] == 1) and torch.all(mask[:, :, 56:] == 1) and torch.all(mask[:, 40:] == 1)
    # inside: ((f - d) / f) ** 2 with d the distance to the nearest padded side (top is not padded)
    for row, col in ((20, 8), (20, 11), (20, 55), (39, 30), (0, 30), (20, 30)):
        i, j = row, col - 8
        d = min(40 - i, j, 48 - j)
        expected = ((10 - d) / 10) ** 2 if d < 10 else 0.0
        assert mask[0, row, col].item() == pytest.approx(expected), (row, col)


def test_pad_with_edge_fill_repeats_the_border_pixels():
    image = torch.rand(1, 8, 8, 3)
    out, _ = call("core.ImagePadForOutpaint", image=image, left=0, top=0, right=8, bottom=0, feathering=0, fill="edge")
    assert torch.equal(out["image"][:, :, 8:], image[:, :, 7:8].expand(1, 8, 8, 3))
    assert torch.all(out["mask"][:, :, :8] == 0)


def test_crop_to_mask_scales_the_region_up_and_paste_back_changes_only_the_masked_pixels():
    rng = np.random.default_rng(2)
    image = torch.from_numpy(rng.random((1, 96, 128, 3)).astype(np.float32))
    mask = square_mask(96, (40, 30, 60, 46))
    mask = torch.nn.functional.pad(mask, (0, 32))  # 96 x 128
    out, _ = call("core.InpaintCrop", image=image, mask=mask, padding=4, target_size=64)
    region = out["region"]
    assert (region.x, region.y, region.width, region.height) == (36, 26, 28, 24)
    assert (region.scaled_width, region.scaled_height) == (64, 56)
    assert out["image"].shape == (1, 56, 64, 3) and out["mask"].shape == (1, 56, 64)
    repainted = torch.zeros_like(out["image"])
    stitched, _ = call("core.InpaintStitch", destination=image, image=repainted, region=region, mask=out["mask"])
    changed = (stitched["image"] != image).any(dim=-1)[0]
    assert changed[30:46, 40:60].all()  # under the mask
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert rows.min() >= 26 and rows.max() < 50 and cols.min() >= 36 and cols.max() < 64  # inside the region
    assert changed.sum() < (mask[0] > 0).sum() + 2 * (20 + 16) * 2  # at most a blended rim of 2 pixels


def test_crop_to_mask_with_an_empty_mask_takes_the_whole_image_and_warns():
    out, messages = call("core.InpaintCrop", image=torch.rand(1, 20, 30, 3), mask=torch.zeros(1, 20, 30),
                         padding=0, target_size=0)
    assert out["image"].shape == (1, 16, 24, 3)
    assert any("empty" in m.message for m in messages)


def test_paste_back_refuses_a_destination_of_another_size():
    out, _ = call("core.InpaintCrop", image=torch.rand(1, 32, 32, 3), mask=square_mask(), padding=0, target_size=0)
    with pytest.raises(NodeInputError, match="crop was cut from a 32x32 image") as info:
        call("core.InpaintStitch", destination=torch.rand(1, 40, 40, 3), image=out["image"], region=out["region"])
    assert info.value.field == "destination"


def test_mask_nodes_through_the_executor():
    outputs = run({
        "solid": {"type": "core.SolidMask", "params": {"value": 1.0, "width": 16, "height": 8}},
        "invert": {"type": "core.InvertMask", "inputs": {"mask": ["solid", "mask"]}},
        "frame": {"type": "core.FeatherMask", "params": {"left": 1}, "inputs": {"mask": ["solid", "mask"]}},
        "grow": {"type": "core.GrowMask", "params": {"expand": -2, "tapered_corners": False},
                 "inputs": {"mask": ["frame", "mask"]}},
        "threshold": {"type": "core.ThresholdMask", "params": {"value": 0.5}, "inputs": {"mask": ["grow", "mask"]}},
        "image": {"type": "core.MaskToImage", "inputs": {"mask": ["threshold", "mask"]}},
        "back": {"type": "core.ImageToMask", "params": {"channel": "green"}, "inputs": {"image": ["image", "image"]}},
    }, ["invert", "back"])
    assert outputs["invert"]["mask"].sum() == 0
    back = outputs["back"]["mask"]
    assert back.shape == (1, 8, 16) and back.sum() == 8 * 13  # the faded first column shrinks by 2 more


def test_a_mask_where_an_image_is_expected_is_a_clear_error():
    with pytest.raises(WorkflowError, match="expected IMAGE, found MASK"):
        run({
            "solid": {"type": "core.SolidMask", "params": {"width": 8, "height": 8}},
            "image": {"type": "core.ImageColorToMask", "inputs": {"image": ["solid", "mask"]}},
        }, ["image"])
    with pytest.raises(NodeInputError, match=r"must be a MASK .* found an IMAGE") as info:
        call("core.InvertMask", mask=torch.zeros(1, 8, 8, 3))
    assert info.value.field == "mask"


def test_padding_is_grown_to_a_multiple_of_eight_on_a_padded_side():
    out, messages = call("core.ImagePadForOutpaint", image=torch.rand(1, 64, 64, 3), left=0, top=0, right=30,
                         bottom=0, feathering=0)
    assert out["image"].shape == (1, 64, 96, 3) and any("right padding 30 -> 32" in m.message for m in messages)
    out, _ = call("core.ImagePadForOutpaint", image=torch.rand(1, 60, 64, 3), left=0, top=0, right=8, bottom=0,
                  feathering=0)
    assert out["image"].shape == (1, 60, 72, 3)  # an unpadded side is left as the image has it


def test_a_mask_of_the_destinations_size_is_cut_to_the_part_under_the_source():
    destination = torch.zeros(1, 10, 12, 3)
    mask = torch.zeros(1, 10, 12)
    mask[:, 4:6, 6:8] = 1
    out, _ = call("core.ImageCompositeMasked", destination=destination, source=torch.ones(1, 4, 4, 3), x=4, y=3,
                  mask=mask)
    changed = out["image"][0, :, :, 0] > 0
    assert changed.sum() == 4 and changed[4:6, 6:8].all()
