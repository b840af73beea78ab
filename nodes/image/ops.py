"""Image operations: scale and invert."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, Int
from nodegraph.types import IMAGE

_METHODS = ("nearest", "bilinear", "bicubic", "lanczos", "area")


def check_batch_size(batch: int, width: int, height: int, field: str = "width") -> None:
    """What a node is about to make fits the image_pixels and batch_pixels limits (an error naming them)."""
    from nodegraph.limits import LimitExceeded, check

    try:
        check(f"one {width}x{height} image", "image_pixels", width * height)
        check(f"{batch} images of {width}x{height}", "batch_pixels", batch * width * height)
    except LimitExceeded as exc:
        raise NodeInputError(str(exc), field) from None


@node(
    "core.ImageScale", name="Scale Image", category="image/transform",
    description=(
        "Resizes images. A width or height of 0 follows from the other side and the aspect ratio. With crop "
        "'center' the images are first trimmed to the target's aspect ratio, so nothing is stretched."
    ),
    inputs=[Input("images", IMAGE)],
    params=[
        Choice("method", choices=_METHODS, default="bilinear",
               help="nearest: blocky, exact copies; bilinear / bicubic: smooth; lanczos: sharpest (Pillow); "
                    "area: averages, best for shrinking."),
        Int("width", 512, min=0, max=16384, help="Target width in pixels (0: keep the aspect ratio)."),
        Int("height", 512, min=0, max=16384, help="Target height in pixels (0: keep the aspect ratio)."),
        Choice("crop", choices=("disabled", "center"), help="center: trim to the target's aspect ratio first."),
    ],
    outputs=[Output("images", IMAGE)],
)
def image_scale(ctx: NodeContext, images: Any, method: str, width: int, height: int, crop: str) -> Any:
    from nodes.image.convert import check_image
    from nodes.image.resize import center_crop_to_aspect, resize_nchw, target_size

    images = check_image(images, "images")
    height, width = target_size(images.shape[1], images.shape[2], height, width)
    check_batch_size(images.shape[0], width, height)
    x = images.movedim(-1, 1)
    if crop == "center":
        x = center_crop_to_aspect(x, height, width)
    if tuple(x.shape[-2:]) == (height, width):
        return x.movedim(1, -1).clone()
    return resize_nchw(x, height, width, method).clamp(0.0, 1.0).movedim(1, -1).contiguous()


@node(
    "core.ImageInvert", name="Invert Image", category="image/color",
    description="Turns each value v into 1 - v (black becomes white).",
    inputs=[Input("images", IMAGE)],
    outputs=[Output("images", IMAGE)],
)
def image_invert(ctx: NodeContext, images: Any) -> Any:
    from nodes.image.convert import check_image

    return 1.0 - check_image(images, "images")
