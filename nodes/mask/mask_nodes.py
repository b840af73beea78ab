"""Mask nodes: load, invert, grow/shrink, feather, threshold, from colour, combine, and conversions.

Ids and field names follow ComfyUI's nodes of the same purpose where there is one (InvertMask, GrowMask,
FeatherMask, ThresholdMask, ImageColorToMask, MaskComposite, MaskToImage, ImageToMask, SolidMask,
LoadImageMask), so imported workflows mean the same thing.
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Choice, Float, ImageFile, Int
from nodegraph.types import IMAGE, MASK

_MASK_IN = [Input("mask", MASK, help="1 marks what to repaint, 0 what to keep.")]
_MASK_OUT = [Output("mask", MASK)]


def _mask(value: Any, field: str = "mask") -> Any:
    from nodes.mask.ops import check_mask

    return check_mask(value, field)


@node(
    "core.LoadImageMask", name="Load Mask", category="mask",
    description=(
        "Reads a mask from an image file. channel 'alpha': transparent = 1 (repaint), as Load Image's mask; "
        "'red'/'green'/'blue': that channel's brightness; 'luminance': the brightness (white = 1)."
    ),
    params=[
        ImageFile("path", "", help="The image file to read the mask from."),
        Choice("channel", choices=("alpha", "red", "green", "blue", "luminance"), default="alpha",
               help="Which channel holds the mask."),
    ],
    outputs=_MASK_OUT,
)
def load_image_mask(ctx: NodeContext, path: str, channel: str) -> Any:
    import numpy as np
    import torch
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path:
        raise NodeInputError("no mask file chosen", "path")
    try:
        with Image.open(path) as opened:
            opened.load()
            pil = ImageOps.exif_transpose(opened)
    except FileNotFoundError:
        raise NodeInputError(f"mask file not found: {path}", "path") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise NodeInputError(f"{path} could not be read as an image: {exc}", "path") from None
    if channel == "luminance":
        values = np.asarray(pil.convert("L"))
    else:
        rgba = np.asarray(pil.convert("RGBA"))
        values = rgba[..., {"red": 0, "green": 1, "blue": 2, "alpha": 3}[channel]]
    mask = torch.from_numpy(values.astype(np.float32) / 255.0)[None]
    return 1.0 - mask if channel == "alpha" else mask


@node(
    "core.InvertMask", name="Invert Mask", category="mask",
    description="1 - mask: what was kept is repainted and the other way round.",
    inputs=_MASK_IN, outputs=_MASK_OUT,
)
def invert_mask(ctx: NodeContext, mask: Any) -> Any:
    return 1.0 - _mask(mask)


@node(
    "core.GrowMask", name="Grow / Shrink Mask", category="mask",
    description="Grows the masked area by some pixels, or shrinks it with a negative value.",
    inputs=_MASK_IN,
    params=[
        Int("expand", 8, min=-4096, max=4096, help="Pixels to grow by (negative: shrink)."),
        Bool("tapered_corners", True, help="Round corners (a round brush); off: square corners."),
    ],
    outputs=_MASK_OUT,
)
def grow_mask(ctx: NodeContext, mask: Any, expand: int, tapered_corners: bool) -> Any:
    from nodes.mask.ops import grow

    return grow(_mask(mask), expand, round_shape=tapered_corners)


@node(
    "core.BlurMask", name="Feather Mask Edges", category="mask",
    description=(
        "Softens the mask's edges so a repainted region blends into what is kept (a Gaussian blur; "
        "A1111's 'mask blur'). Grow the mask first if the soft edge must not eat into the area to repaint."
    ),
    inputs=_MASK_IN,
    params=[Float("radius", 8.0, min=0.0, max=512.0, step=0.5, help="How far the softening reaches, in pixels.")],
    outputs=_MASK_OUT,
)
def blur_mask(ctx: NodeContext, mask: Any, radius: float) -> Any:
    from nodes.mask.ops import blur

    return blur(_mask(mask), radius)


@node(
    "core.FeatherMask", name="Feather Mask at Borders", category="mask",
    description="Fades the mask towards the image's borders over the given widths (ComfyUI's Feather Mask).",
    inputs=_MASK_IN,
    params=[Int(side, 0, min=0, max=16384, help=f"Fade width at the {side} border, in pixels.")
            for side in ("left", "top", "right", "bottom")],
    outputs=_MASK_OUT,
)
def feather_mask(ctx: NodeContext, mask: Any, left: int, top: int, right: int, bottom: int) -> Any:
    from nodes.mask.ops import feather_borders

    return feather_borders(_mask(mask), left, top, right, bottom)


@node(
    "core.ThresholdMask", name="Threshold Mask", category="mask",
    description="A hard mask: 1 where the mask is above the value, 0 elsewhere.",
    inputs=_MASK_IN,
    params=[Float("value", 0.5, min=0.0, max=1.0, step=0.01, slider=True, help="The cut-off.")],
    outputs=_MASK_OUT,
)
def threshold_mask(ctx: NodeContext, mask: Any, value: float) -> Any:
    return (_mask(mask) > value).float()


@node(
    "core.ImageColorToMask", name="Mask from Colour", category="mask",
    description="1 where the image has the given colour (within a tolerance per 8-bit channel), 0 elsewhere.",
    inputs=[Input("image", IMAGE)],
    params=[
        Int("color", 0xFFFFFF, min=0, max=0xFFFFFF, help="The colour as a number 0xRRGGBB (16777215 = white)."),
        Int("tolerance", 0, min=0, max=255, help="How far each channel (0..255) may be from the colour."),
    ],
    outputs=_MASK_OUT,
)
def image_color_to_mask(ctx: NodeContext, image: Any, color: int, tolerance: int) -> Any:
    from nodes.image.convert import check_image
    from nodes.mask.ops import from_color

    mask = from_color(check_image(image, "image"), color, tolerance)
    if not mask.any():
        ctx.warn(f"no pixel has the colour #{color:06x} (tolerance {tolerance}): the mask is empty")
    return mask


@node(
    "core.MaskComposite", name="Combine Masks", category="mask",
    description=(
        "Combines the source mask into the destination mask, the source's top-left corner at (x, y): "
        "multiply (intersection of soft masks), add, subtract, and / or / xor (of the masks cut at 0.5), max "
        "(union), min. Outside the source's footprint the destination is kept; results are clamped to 0..1."
    ),
    inputs=[Input("destination", MASK), Input("source", MASK)],
    params=[
        Int("x", 0, min=0, max=16384, help="Left edge of the source in the destination."),
        Int("y", 0, min=0, max=16384, help="Top edge of the source in the destination."),
        Choice("operation", choices=("multiply", "add", "subtract", "and", "or", "xor", "max", "min"),
               default="max", help="How the two masks combine."),
    ],
    outputs=[Output("mask", MASK)],
)
def mask_composite(ctx: NodeContext, destination: Any, source: Any, x: int, y: int, operation: str) -> Any:
    from nodes.mask.ops import combine

    dest = _mask(destination, "destination")
    src = _mask(source, "source")
    if src.shape[0] not in (1, dest.shape[0]):
        raise NodeInputError(f"the source batch ({src.shape[0]}) does not match the destination's ({dest.shape[0]})",
                             "source")
    return combine(dest, src, x, y, operation)


@node(
    "core.SolidMask", name="Solid Mask", category="mask",
    description="A mask of one value everywhere (1: repaint all, 0: keep all).",
    params=[
        Float("value", 1.0, min=0.0, max=1.0, step=0.01, slider=True, help="The mask's value."),
        Int("width", 512, min=1, max=16384, help="Width in pixels."),
        Int("height", 512, min=1, max=16384, help="Height in pixels."),
    ],
    outputs=_MASK_OUT,
)
def solid_mask(ctx: NodeContext, value: float, width: int, height: int) -> Any:
    import torch

    return torch.full((1, height, width), float(value), dtype=torch.float32)


@node(
    "core.MaskToImage", name="Mask to Image", category="mask",
    description="Shows a mask as a grey image (white = 1), to preview or save it.",
    inputs=_MASK_IN, outputs=[Output("image", IMAGE)],
)
def mask_to_image(ctx: NodeContext, mask: Any) -> Any:
    from nodes.image.convert import grey_to_image

    return grey_to_image(_mask(mask))


@node(
    "core.ImageToMask", name="Image to Mask", category="mask",
    description="A mask from one channel of an image (or its brightness).",
    inputs=[Input("image", IMAGE)],
    params=[Choice("channel", choices=("red", "green", "blue", "luminance"), default="red",
                   help="Which channel becomes the mask.")],
    outputs=_MASK_OUT,
)
def image_to_mask(ctx: NodeContext, image: Any, channel: str) -> Any:
    from nodes.image.convert import check_image, luminance

    image = check_image(image, "image")
    if channel == "luminance":
        return luminance(image).contiguous()
    return image[..., {"red": 0, "green": 1, "blue": 2}[channel]].contiguous()
