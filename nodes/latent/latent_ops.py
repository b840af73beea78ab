"""Empty Latent Image and Latent Upscale."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, Float, Int
from nodegraph.types import LATENT

# SD1.5 and SDXL latents: 4 channels at 1/8 of the image size (the VAE factor the node's description states).
# ComfyUI's node has no VAE input either.
LATENT_CHANNELS = 4
LATENT_FACTOR = 8


def _check_multiple(value: int, field: str) -> None:
    if value % LATENT_FACTOR:
        low = value - value % LATENT_FACTOR
        raise NodeInputError(
            f"{field} must be a multiple of {LATENT_FACTOR}, found {value} (nearest: {low} or {low + LATENT_FACTOR})", field
        )


@node(
    "core.EmptyLatentImage", name="Empty Latent Image", category="latent",
    description=(
        f"A batch of all-zero latents for text-to-image, sized for the SD1.5 / SDXL VAE: {LATENT_CHANNELS} channels, one "
        f"latent cell per {LATENT_FACTOR}x{LATENT_FACTOR} pixels (the VAE factor {LATENT_FACTOR}), so 512x512 pixels "
        f"give a {512 // LATENT_FACTOR}x{512 // LATENT_FACTOR} latent."
    ),
    params=[
        Int("width", 512, min=8, max=16384, step=8,
            help=f"Image width in pixels (a multiple of {LATENT_FACTOR}: the latent is width / {LATENT_FACTOR} cells wide)."),
        Int("height", 512, min=8, max=16384, step=8,
            help=f"Image height in pixels (a multiple of {LATENT_FACTOR}: the latent is height / {LATENT_FACTOR} cells high)."),
        Int("batch_size", 1, min=1, max=4096, help="How many images to generate at once."),
    ],
    outputs=[Output("latent", LATENT)],
)
def empty_latent_image(ctx: NodeContext, width: int, height: int, batch_size: int) -> dict:
    import torch

    from nodes.image.ops import check_batch_size

    _check_multiple(width, "width")
    _check_multiple(height, "height")
    check_batch_size(batch_size, width, height)  # 16384x16384 x 4096 would be valid, and 4 TB
    shape = (batch_size, LATENT_CHANNELS, height // LATENT_FACTOR, width // LATENT_FACTOR)
    return {"latent": {"samples": torch.zeros(shape, dtype=torch.float32)}}  # by output name: a bare dict would be read as outputs


@node(
    "core.LatentUpscale", name="Upscale Latent", category="latent/transform",
    description=(
        "Resizes latents, e.g. for a second 'hires fix' pass. Give a width and/or height in pixels (a 0 side "
        "keeps the aspect ratio), or leave both 0 and give a scale factor."
    ),
    inputs=[Input("samples", LATENT)],
    params=[
        Choice("method", choices=("nearest", "bilinear", "bicubic", "area"), default="nearest",
               help="How new latent cells are computed."),
        Int("width", 0, min=0, max=16384, step=8, help="Target width in pixels (0: from height or scale)."),
        Int("height", 0, min=0, max=16384, step=8, help="Target height in pixels (0: from width or scale)."),
        Float("scale_by", 1.5, min=0.01, max=8.0, step=0.05, help="Used when width and height are both 0."),
        Choice("crop", choices=("disabled", "center"), help="center: trim to the target's aspect ratio first."),
    ],
    outputs=[Output("latent", LATENT)],
)
def latent_upscale(
    ctx: NodeContext, samples: Any, method: str, width: int, height: int, scale_by: float, crop: str
) -> dict:
    import torch

    from nodes.image.resize import center_crop_to_aspect, resize_nchw, target_size

    latents = samples.get("samples") if isinstance(samples, dict) else None
    if not isinstance(latents, torch.Tensor) or latents.ndim != 4:
        raise NodeInputError(f"'samples' must be a LATENT {{'samples': [B, C, h, w]}}, found {type(samples).__name__}", "samples")
    src_h, src_w = latents.shape[-2:]
    if width == 0 and height == 0:
        out_h, out_w = max(1, round(src_h * scale_by)), max(1, round(src_w * scale_by))
    else:
        _check_multiple(width, "width")
        _check_multiple(height, "height")
        out_h, out_w = target_size(src_h, src_w, height // LATENT_FACTOR, width // LATENT_FACTOR)
    from nodes.image.ops import check_batch_size

    check_batch_size(latents.shape[0], out_w * LATENT_FACTOR, out_h * LATENT_FACTOR)
    x = center_crop_to_aspect(latents, out_h, out_w) if crop == "center" else latents
    result = dict(samples)  # other keys (noise_mask, batch_index) travel along untouched
    result["samples"] = resize_nchw(x, out_h, out_w, method).contiguous()
    return {"latent": result}  # by output name: a bare dict would be read as outputs
