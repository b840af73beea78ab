"""ComfyUI's latent and image resizing nodes and its Save Image (8-bit truncation, not rounding)."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, Float, Int, String
from nodegraph.types import IMAGE, LATENT, STRING

MAX_SIZE = 16384
LATENT_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
IMAGE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
_CROP = Choice("crop", "disabled", choices=("disabled", "center"), help="center: trim to the target's aspect ratio first.")


def _latent(samples: Any) -> Any:
    import torch

    latents = samples.get("samples") if isinstance(samples, dict) else None
    if not isinstance(latents, torch.Tensor) or latents.ndim != 4:
        raise NodeInputError(f"expected a LATENT {{'samples': [B, C, h, w]}}, found {type(samples).__name__}", "samples")
    return latents


@node(
    "comfy.LatentUpscale", name="Upscale Latent (ComfyUI)", category="latent/comfyui",
    description=("ComfyUI's Upscale Latent: resizes latents to width x height pixels (a 0 side follows the aspect "
                 "ratio; sides are at least 64 and rounded down to a multiple of 8)."),
    inputs=[Input("samples", LATENT)],
    params=[
        Choice("upscale_method", "nearest-exact", choices=LATENT_METHODS, help="How new latent cells are computed."),
        Int("width", 512, min=0, max=MAX_SIZE, step=8, help="Target width in pixels (0: from the height)."),
        Int("height", 512, min=0, max=MAX_SIZE, step=8, help="Target height in pixels (0: from the width)."),
        _CROP,
    ],
    outputs=[Output("latent", LATENT)],
)
def latent_upscale(ctx: NodeContext, samples: Any, upscale_method: str, width: int, height: int, crop: str) -> dict:
    from nodes.comfy.resize import common_upscale

    latents = _latent(samples)
    if width == 0 and height == 0:
        return {"latent": dict(samples)}
    if width == 0:
        height = max(64, height)
        width = max(64, round(latents.shape[-1] * height / latents.shape[-2]))
    elif height == 0:
        width = max(64, width)
        height = max(64, round(latents.shape[-2] * width / latents.shape[-1]))
    else:
        width, height = max(64, width), max(64, height)
    return {"latent": {**samples, "samples": common_upscale(latents, width // 8, height // 8, upscale_method, crop)}}


@node(
    "comfy.LatentUpscaleBy", name="Upscale Latent By (ComfyUI)", category="latent/comfyui",
    description="ComfyUI's Upscale Latent By: resizes latents by a factor (sides rounded to whole latent cells).",
    inputs=[Input("samples", LATENT)],
    params=[
        Choice("upscale_method", "nearest-exact", choices=LATENT_METHODS, help="How new latent cells are computed."),
        Float("scale_by", 1.5, min=0.01, max=8.0, step=0.01, help="The factor."),
    ],
    outputs=[Output("latent", LATENT)],
)
def latent_upscale_by(ctx: NodeContext, samples: Any, upscale_method: str, scale_by: float) -> dict:
    from nodes.comfy.resize import common_upscale

    latents = _latent(samples)
    width, height = round(latents.shape[-1] * scale_by), round(latents.shape[-2] * scale_by)
    if width < 1 or height < 1:
        raise NodeInputError(f"scaling {latents.shape[-1]}x{latents.shape[-2]} latent cells by {scale_by} leaves none",
                             "scale_by")
    return {"latent": {**samples, "samples": common_upscale(latents, width, height, upscale_method, "disabled")}}


@node(
    "comfy.ImageScale", name="Upscale Image (ComfyUI)", category="image/comfyui",
    description="ComfyUI's Upscale Image: resizes images to width x height (a 0 side follows the aspect ratio).",
    inputs=[Input("image", IMAGE)],
    params=[
        Choice("upscale_method", "nearest-exact", choices=IMAGE_METHODS, help="How new pixels are computed."),
        Int("width", 512, min=0, max=MAX_SIZE, help="Target width in pixels (0: from the height)."),
        Int("height", 512, min=0, max=MAX_SIZE, help="Target height in pixels (0: from the width)."),
        _CROP,
    ],
    outputs=[Output("image", IMAGE)],
)
def image_scale(ctx: NodeContext, image: Any, upscale_method: str, width: int, height: int, crop: str) -> Any:
    from nodes.comfy.resize import common_upscale
    from nodes.image.convert import check_image

    image = check_image(image, "image")
    if width == 0 and height == 0:
        return image
    x = image.movedim(-1, 1)
    if width == 0:
        width = max(1, round(x.shape[3] * height / x.shape[2]))
    elif height == 0:
        height = max(1, round(x.shape[2] * width / x.shape[3]))
    return common_upscale(x, width, height, upscale_method, crop).movedim(1, -1)


@node(
    "comfy.ImageScaleBy", name="Upscale Image By (ComfyUI)", category="image/comfyui",
    description="ComfyUI's Upscale Image By: resizes images by a factor.",
    inputs=[Input("image", IMAGE)],
    params=[
        Choice("upscale_method", "nearest-exact", choices=IMAGE_METHODS, help="How new pixels are computed."),
        Float("scale_by", 1.0, min=0.01, max=8.0, step=0.01, help="The factor."),
    ],
    outputs=[Output("image", IMAGE)],
)
def image_scale_by(ctx: NodeContext, image: Any, upscale_method: str, scale_by: float) -> Any:
    from nodes.comfy.resize import common_upscale
    from nodes.image.convert import check_image

    image = check_image(image, "image")
    x = image.movedim(-1, 1)
    width, height = round(x.shape[3] * scale_by), round(x.shape[2] * scale_by)
    if width < 1 or height < 1:
        raise NodeInputError(f"scaling a {x.shape[3]}x{x.shape[2]} image by {scale_by} leaves no pixels", "scale_by")
    return common_upscale(x, width, height, upscale_method, "disabled").movedim(1, -1)


def truncate_to_8bit(images: Any) -> Any:
    """``floor(clip(255 * x, 0, 255)) / 255``: ComfyUI's 8-bit step, as exact levels that round-trip."""
    import torch

    levels = torch.clamp(images.detach().to("cpu", torch.float32) * 255.0, 0.0, 255.0).to(torch.uint8)
    return levels.to(torch.float32) / 255.0


@node(
    "comfy.SaveImage", name="Save Image (ComfyUI)", category="image/comfyui", output_node=True,
    description=(
        "ComfyUI's Save Image: 8-bit pixels by truncation (255 * x, rounded down) as ComfyUI writes them, so an "
        "imported workflow saves ComfyUI's exact PNG pixels. Files are named <prefix>_00001.png, ... in the "
        "output folder, never replacing one, and carry the workflow (and ComfyUI's API prompt, so ComfyUI "
        "opens them too)."
    ),
    inputs=[Input("images", IMAGE, help="The images to save.")],
    params=[String("filename_prefix", "ComfyUI", help="File name start, relative to the output folder.")],
    outputs=[Output("paths", STRING, help="The files written, one per line.")],
    fingerprint=lambda params, ctx: str(ctx.output_dir),
)
def save_image(ctx: NodeContext, images: Any, filename_prefix: str) -> str:
    from pathlib import Path

    from nodes.comfy.png_text import add_comfy_prompt
    from nodes.image.convert import check_image
    from nodes.image.io import save_image as core_save

    paths = core_save.fn(ctx, truncate_to_8bit(check_image(images, "images")), filename_prefix)
    add_comfy_prompt([Path(p) for p in paths.splitlines()], ctx.workflow, ctx.log)
    return paths
