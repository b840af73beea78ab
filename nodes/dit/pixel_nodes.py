"""Nodes of the pixel-space cascade (DeepFloyd IF, Imagen-style): an empty sample in the model's own space,
pixel samples to IMAGE, and stage II super-resolution set-up with noise conditioning augmentation."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Int
from nodegraph.types import IMAGE, LATENT, MODEL


def _zeros(batch: int, channels: int, height: int, width: int) -> dict:
    import torch

    return {"samples": torch.zeros(batch, channels, height, width)}


@node(
    "core.EmptyLatentForModel", name="Empty Latent (model's space)", category="latent",
    description="An all-zero sample shaped for the model: 4 latent channels at 1/8 size for SD, PixArt, Hunyuan-DiT "
                "and DiT, 16 channels at 1/8 size for FLUX and SD3 (sides multiples of 16 pixels), 3 pixel channels "
                "at full size for IF. Zeros mean text-to-image: the sampler starts from pure noise.",
    inputs=[Input("model", MODEL)],
    params=[Int("width", 64, min=8, max=16384, step=8), Int("height", 64, min=8, max=16384, step=8),
            Int("batch_size", 1, min=1, max=64)],
    outputs=[Output("latent", LATENT)],
)
def empty_latent_for_model(ctx: NodeContext, model: Any, width: int, height: int, batch_size: int) -> dict:
    cell = int(getattr(model, "pixels_per_cell", 8))
    channels = getattr(model, "sample_channels", None) or model.unet.config.in_channels
    multiple = int(getattr(model, "pixels_multiple", cell))
    for name, value in (("width", width), ("height", height)):
        if value % multiple:
            low = value - value % multiple
            raise NodeInputError(f"{name} must be a multiple of {multiple} for this model, found {value} (nearest: "
                                 f"{low or multiple} or {low + multiple})", name)
    return {"latent": _zeros(batch_size, channels, height // cell, width // cell)}


@node(
    "core.PixelsToImage", name="Pixels to Image", category="image",
    description="Turns a pixel-space sample (IF's output, values -1..1) into an IMAGE (0..1), clamped as "
                "diffusers' IF pipelines do.",
    inputs=[Input("samples", LATENT, help="A pixel-space sample from a sampler driving an IF model.")],
    outputs=[Output("image", IMAGE)],
)
def pixels_to_image(ctx: NodeContext, samples: Any) -> dict:
    x = samples.get("samples") if isinstance(samples, dict) else None
    if x is None or x.ndim != 4 or x.shape[1] != 3:
        found = list(x.shape) if x is not None else type(samples).__name__
        raise NodeInputError(f"expected a pixel-space sample [B, 3, H, W] (from an IF model), found {found}: decode "
                             "latents with VAE Decode", "samples")
    return {"image": (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous().float()}


@node(
    "core.IFSuperResolution", name="IF Super-Resolution (stage II)", category="sampling",
    description="Binds a DeepFloyd IF stage II model to the low-resolution image it upscales, with noise "
                "conditioning augmentation: the image is upsampled to the output size, noised to noise_level "
                "(drawn from the sampler's seed) and the level is given to the model, as IFSuperResolutionPipeline "
                "does. Sample the returned model and empty sample with KSampler.",
    inputs=[Input("model", MODEL, help="An IF stage II model."), Input("image", IMAGE, help="The low-resolution image.")],
    params=[Int("noise_level", 250, min=0, max=999, help="Augmentation noise level (a DDPM timestep; 0 = none)."),
            Int("scale", 4, min=1, max=16, help="Output size / input size.")],
    outputs=[Output("model", MODEL), Output("latent", LATENT)],
)
def if_super_resolution(ctx: NodeContext, model: Any, image: Any, noise_level: int, scale: int) -> dict:
    from nodes.image.convert import check_image

    if getattr(model, "family", None) != "if_stage_2":
        raise NodeInputError(f"expected a DeepFloyd IF stage II model, found {getattr(model, 'family', type(model).__name__)}",
                             "model")
    pixels = check_image(image, "image")
    low_res = (pixels.permute(0, 3, 1, 2) * 2 - 1).contiguous()
    batch, _, height, width = low_res.shape
    bound = model.replace(low_res=low_res, noise_level=noise_level)
    return {"model": bound, "latent": _zeros(batch, model.sample_channels, height * scale, width * scale)}


@node(
    "core.SDx4Upscale", name="SD x4 Upscale (set-up)", category="sampling",
    description="Binds the SD x4 upscaler to the image it upscales 4x (the cascade's optional last stage): the "
                "image is noised to noise_level (drawn from the sampler's seed) and the level given to the model, as "
                "StableDiffusionUpscalePipeline does. Sample the returned model and latent with KSampler, then VAE "
                "Decode with the upscaler's VAE.",
    inputs=[Input("model", MODEL, help="The SD x4 upscaler."), Input("image", IMAGE, help="The image to upscale.")],
    params=[Int("noise_level", 20, min=0, max=350, help="Augmentation noise level (the pipeline's default is 20).")],
    outputs=[Output("model", MODEL), Output("latent", LATENT)],
)
def sd_x4_upscale(ctx: NodeContext, model: Any, image: Any, noise_level: int) -> dict:
    from nodes.image.convert import check_image

    if getattr(model, "family", None) != "sd_x4_upscaler":
        raise NodeInputError(f"expected the SD x4 upscaler, found {getattr(model, 'family', type(model).__name__)}",
                             "model")
    pixels = check_image(image, "image")
    low_res = (pixels.permute(0, 3, 1, 2) * 2 - 1).contiguous()
    batch, _, height, width = low_res.shape
    bound = model.replace(low_res=low_res, noise_level=noise_level)
    return {"model": bound, "latent": _zeros(batch, model.sample_channels, height, width)}
