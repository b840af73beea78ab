"""Compositing nodes: Image Composite Masked, Pad Image for Outpainting, and Crop to Mask / Paste Crop Back, which
cut a small masked region out at a larger size (so it is repainted at the model's full resolution) and put the
result back where it came from.

Image Composite Masked guarantees what inpainting users rely on: wherever the mask is 0 (and outside the pasted
source), the output is the destination image exactly, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Choice, Int
from nodegraph.types import IMAGE, MASK, define_type

CROP_REGION = define_type("CROP_REGION", (200, 150, 90), "Where a crop came from, to paste a result back there.")


@dataclass(frozen=True)
class CropRegion:
    """A crop of an image: its box in the image (pixels) and the size the crop was scaled to."""

    x: int
    y: int
    width: int
    height: int
    image_width: int
    image_height: int
    scaled_width: int
    scaled_height: int


def composite(destination: Any, source: Any, x: int, y: int, mask: Any | None) -> Any:
    """``source`` over ``destination`` at (x, y), weighted by ``mask`` (source-sized, 1 = source). Where the
    mask is 0 the destination is copied, where it is 1 the source is: exactly, not through arithmetic."""
    import torch

    out = destination.clone()
    height, width = out.shape[1:3]
    sh, sw = min(source.shape[1], height - y), min(source.shape[2], width - x)
    if sh <= 0 or sw <= 0:
        return out
    src = source[:, :sh, :sw]
    region = out[:, y : y + sh, x : x + sw]
    if mask is None:
        out[:, y : y + sh, x : x + sw] = src
        return out
    m = mask[:, :sh, :sw, None].to(out.dtype)
    mixed = region * (1 - m) + src * m
    out[:, y : y + sh, x : x + sw] = torch.where(m <= 0, region, torch.where(m >= 1, src, mixed))
    return out


def _batch(tensor: Any, batch: int, field: str) -> Any:
    if tensor.shape[0] == batch:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(batch, *tensor.shape[1:])
    raise NodeInputError(f"the batch of {field!r} ({tensor.shape[0]}) does not match the destination's ({batch})", field)


@node(
    "core.ImageCompositeMasked", name="Image Composite Masked", category="image/composite",
    description=(
        "Pastes the source image over the destination at (x, y) where the mask is 1 (soft values blend). "
        "Where the mask is 0, and outside the source, the result is exactly the destination: after inpainting, "
        "composite the result over the original with the mask so nothing outside the mask changes at all."
    ),
    inputs=[
        Input("destination", IMAGE, help="The image pasted onto (usually the original)."),
        Input("source", IMAGE, help="The image pasted (usually the inpainted result)."),
        Input("mask", MASK, optional=True,
              help="Where the source shows (1): the source's size (resized to it if only its size differs), or the "
                   "destination's size (its part under the source is used). None: everywhere."),
    ],
    params=[
        Int("x", 0, min=0, max=16384, help="Left edge of the source in the destination."),
        Int("y", 0, min=0, max=16384, help="Top edge of the source in the destination."),
        Bool("resize_source", False, help="Scale the source to the destination's size first."),
    ],
    outputs=[Output("image", IMAGE)],
)
def image_composite_masked(
    ctx: NodeContext, destination: Any, source: Any, mask: Any, x: int, y: int, resize_source: bool
) -> Any:
    from nodes.image.convert import check_image
    from nodes.image.resize import resize_nchw
    from nodes.mask.ops import check_mask, fit_mask

    dest = check_image(destination, "destination")
    src = check_image(source, "source")
    if resize_source and tuple(src.shape[1:3]) != tuple(dest.shape[1:3]):
        src = resize_nchw(src.movedim(-1, 1), dest.shape[1], dest.shape[2], "bilinear").clamp(0, 1).movedim(1, -1)
    src = _batch(src, dest.shape[0], "source")
    masks = None
    if mask is not None:
        masks = check_mask(mask, "mask")
        if tuple(masks.shape[-2:]) == tuple(dest.shape[1:3]) and tuple(src.shape[1:3]) != tuple(dest.shape[1:3]):
            masks = masks[:, y : y + src.shape[1], x : x + src.shape[2]]  # drawn on the destination: its part under the source
        else:
            masks, note = fit_mask(masks, src.shape[1], src.shape[2])
            if note:
                ctx.log(note)
        masks = _batch(masks, dest.shape[0], "mask")
    if x >= dest.shape[2] or y >= dest.shape[1]:
        ctx.warn(f"the source at ({x}, {y}) lies outside the {dest.shape[2]}x{dest.shape[1]} destination: nothing pasted")
    return composite(dest, src, x, y, masks)


@node(
    "core.ImagePadForOutpaint", name="Pad Image for Outpainting", category="image/inpaint",
    description=(
        "Adds borders to extend the image, and a mask that is 1 on the new borders (what to paint) and 0 on the "
        "image, fading into the image over `feathering` pixels so the seam blends. Feed both to VAE Encode (for "
        "Inpainting) or Set Latent Noise Mask. A padded side that would not be a multiple of 8 pixels gets a few "
        "more (noted in the log), so the VAE does not trim the result."
    ),
    inputs=[Input("image", IMAGE)],
    params=[
        *[Int(side, 0, min=0, max=16384, step=8, help=f"Pixels to add on the {side}.")
          for side in ("left", "top", "right", "bottom")],
        Int("feathering", 40, min=0, max=16384,
            help="Width in pixels over which the mask fades from the new border into the image (0: a hard edge)."),
        Choice("fill", choices=("grey", "edge"), default="grey",
               help="What the new borders hold before painting: grey (as ComfyUI), or the image's edge pixels "
                    "stretched outwards (a better start when sampling with denoise below 1)."),
    ],
    outputs=[Output("image", IMAGE), Output("mask", MASK)],
)
def image_pad_for_outpaint(
    ctx: NodeContext, image: Any, left: int, top: int, right: int, bottom: int, feathering: int, fill: str
) -> dict:
    import torch
    import torch.nn.functional as F

    from nodes.image.convert import check_image

    images = check_image(image, "image")
    batch, height, width, _ = images.shape
    if not (left or top or right or bottom):
        ctx.warn("no padding on any side: the mask is empty and the image is unchanged")
    # the VAE trims sides to a multiple of 8 (centred), which would shift the result against the padded image:
    # pad a little more on a padded side instead
    (left, right), (top, bottom) = (_to_multiple(ctx, width, left, right, ("left", "right")),
                                    _to_multiple(ctx, height, top, bottom, ("top", "bottom")))
    x = images.movedim(-1, 1)
    if fill == "edge":
        padded = F.pad(x, (left, right, top, bottom), mode="replicate")
    else:
        padded = F.pad(x, (left, right, top, bottom), value=0.5)
    mask = torch.ones((batch, height + top + bottom, width + left + right), dtype=torch.float32)
    inner = torch.zeros((height, width), dtype=torch.float32)
    if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
        # distance of each image pixel to every side that was padded (ComfyUI's ramp: ((f - d) / f) ** 2)
        rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
        cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
        far = torch.full((height, width), float(max(height, width)))
        distance = torch.minimum(
            torch.minimum(rows if top else far, (height - rows) if bottom else far),
            torch.minimum(cols if left else far, (width - cols) if right else far),
        )
        ramp = ((feathering - distance) / feathering).clamp(min=0.0)
        inner = torch.where(distance < feathering, ramp * ramp, inner)
    elif feathering > 0:
        ctx.log(f"feathering {feathering} is more than half the image's side: no feathering")
    mask[:, top : top + height, left : left + width] = inner
    return {"image": padded.movedim(1, -1).contiguous(), "mask": mask}


def _to_multiple(ctx: NodeContext, size: int, before: int, after: int, names: tuple[str, str], factor: int = 8) -> tuple[int, int]:
    """Padding on one axis grown so that the padded side is a multiple of ``factor`` (the later side first)."""
    extra = -(size + before + after) % factor
    if not extra or not (before or after):
        return before, after
    if after:
        ctx.log(f"{names[1]} padding {after} -> {after + extra}, so the padded side is a multiple of {factor} (the VAE's)")
        return before, after + extra
    ctx.log(f"{names[0]} padding {before} -> {before + extra}, so the padded side is a multiple of {factor} (the VAE's)")
    return before + extra, after


@node(
    "core.InpaintCrop", name="Crop to Mask", category="image/inpaint",
    description=(
        "Cuts out the part of the image around the mask (with some context), scaled so its longer side is "
        "`target_size`: a small region is then repainted at the model's full resolution. Paste Crop Back puts "
        "the result back. An empty mask crops the whole image (with a warning)."
    ),
    inputs=[Input("image", IMAGE), Input("mask", MASK, help="1 = repaint; resized to the image if only its size differs.")],
    params=[
        Int("padding", 32, min=0, max=4096, help="Context around the mask's bounding box, in pixels of the image."),
        Int("target_size", 512, min=0, max=8192, step=8,
            help="Longer side of the scaled crop, in pixels (a multiple of 8; the model's native size). 0: no "
                 "scaling (the crop is only trimmed to a multiple of 8)."),
    ],
    outputs=[Output("image", IMAGE), Output("mask", MASK), Output("region", CROP_REGION)],
)
def inpaint_crop(ctx: NodeContext, image: Any, mask: Any, padding: int, target_size: int) -> dict:
    from nodes.image.convert import check_image
    from nodes.image.resize import resize_nchw
    from nodes.mask.ops import bounding_box, check_mask, fit_mask, match_batch

    images = check_image(image, "image")
    batch, height, width, _ = images.shape
    masks, note = fit_mask(check_mask(mask, "mask"), height, width)
    if note:
        ctx.log(note)
    masks = match_batch(masks, batch)
    box = bounding_box(masks)
    if box is None:
        ctx.warn("the mask is empty: cropping the whole image")
        box = (0, 0, width, height)
    left, top, right, bottom = box
    left, top = max(0, left - padding), max(0, top - padding)
    right, bottom = min(width, right + padding), min(height, bottom + padding)
    crop_w, crop_h = right - left, bottom - top
    if target_size:
        scale = target_size / max(crop_w, crop_h)
        out_w, out_h = (max(8, round(side * scale / 8) * 8) for side in (crop_w, crop_h))
    else:
        out_w, out_h = max(8, crop_w - crop_w % 8), max(8, crop_h - crop_h % 8)
    piece = images[:, top:bottom, left:right].movedim(-1, 1)
    mask_piece = masks[:, None, top:bottom, left:right]
    method = "bicubic" if out_w > crop_w else "area"
    scaled = resize_nchw(piece, out_h, out_w, method).clamp(0, 1).movedim(1, -1).contiguous()
    scaled_mask = resize_nchw(mask_piece, out_h, out_w, "bilinear").clamp(0, 1)[:, 0].contiguous()
    ctx.log(f"cropped {crop_w}x{crop_h} at ({left}, {top}), scaled to {out_w}x{out_h}")
    region = CropRegion(left, top, crop_w, crop_h, width, height, out_w, out_h)
    return {"image": scaled, "mask": scaled_mask, "region": region}


@node(
    "core.InpaintStitch", name="Paste Crop Back", category="image/inpaint",
    description=(
        "Scales a repainted crop back to the size it was cut at and pastes it into the original image where the "
        "mask is 1 (soft values blend). Where the mask is 0 the original stays exactly as it was."
    ),
    inputs=[
        Input("destination", IMAGE, help="The original image the crop was cut from."),
        Input("image", IMAGE, help="The repainted crop (any size; scaled back)."),
        Input("region", CROP_REGION, help="From Crop to Mask."),
        Input("mask", MASK, optional=True,
              help="Where to paste, at the crop's size (Crop to Mask's mask, perhaps feathered). None: the whole crop."),
    ],
    outputs=[Output("image", IMAGE)],
)
def inpaint_stitch(ctx: NodeContext, destination: Any, image: Any, region: Any, mask: Any) -> Any:
    from nodes.image.convert import check_image
    from nodes.image.resize import resize_nchw
    from nodes.mask.ops import check_mask

    if not isinstance(region, CropRegion):
        raise NodeInputError(f"'region' must come from Crop to Mask, found {type(region).__name__}", "region")
    dest = check_image(destination, "destination")
    if (dest.shape[2], dest.shape[1]) != (region.image_width, region.image_height):
        raise NodeInputError(
            f"the destination is {dest.shape[2]}x{dest.shape[1]} but the crop was cut from a "
            f"{region.image_width}x{region.image_height} image", "destination",
        )
    src = check_image(image, "image")
    method = "area" if src.shape[2] > region.width else "bicubic"
    back = resize_nchw(src.movedim(-1, 1), region.height, region.width, method).clamp(0, 1).movedim(1, -1)
    masks = None
    if mask is not None:
        m = check_mask(mask, "mask")
        masks = resize_nchw(m[:, None], region.height, region.width, "bilinear").clamp(0, 1)[:, 0]
        masks = _batch(masks, dest.shape[0], "mask")
    return composite(dest, _batch(back, dest.shape[0], "image"), region.x, region.y, masks)
