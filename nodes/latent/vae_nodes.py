"""VAE Encode / Decode and their tiled variants."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, Int, Seed
from nodegraph.types import IMAGE, LATENT, VAE

_ENCODE_HELP = (
    "mode: the centre of the encoder's distribution, deterministic (a workflow gives the same latent every "
    "time). sample: a draw from it with the seed below, as diffusers' img2img pipelines do (they draw it from "
    "the generator that later draws the noise, so that pipeline's exact output needs the same latent handed in)."
)


def _vae_module(ctx: NodeContext, vae: Any) -> Any:
    module = getattr(vae, "vae", None)
    if module is None or not hasattr(module, "decoder"):
        raise NodeInputError(f"'vae' must be a VAE handle (from a checkpoint or VAE loader), found {type(vae).__name__}", "vae")
    ctx.runtime.residency.load(module)
    return module


def _check_latent(latent: Any) -> Any:
    import torch

    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4:
        found = list(samples.shape) if isinstance(samples, torch.Tensor) else type(latent).__name__
        raise NodeInputError(f"'samples' must be a LATENT {{'samples': [B, C, h, w]}}, found {found}", "samples")
    return samples


def _check_channels(latents: Any, module: Any) -> None:
    """A latent made for another VAE (16-channel FLUX / SD3 latents, 4-channel SD ones) cannot be decoded by this one."""
    wanted = module.config.latent_channels
    if latents.shape[1] != wanted:
        raise NodeInputError(f"the latent has {latents.shape[1]} channels but this VAE decodes {wanted}: use the VAE of "
                             "the model that made the latent (FLUX and SD3 latents need their 16-channel VAE)", "vae")


def _crop_to_factor(ctx: NodeContext, images: Any, factor: int) -> Any:
    """The VAE needs sides divisible by its factor: trim the excess evenly from both sides, as ComfyUI does."""
    height, width = images.shape[1:3]
    new_h, new_w = height - height % factor, width - width % factor
    if new_h == 0 or new_w == 0:
        raise NodeInputError(f"the image ({width}x{height}) is smaller than one latent cell ({factor}x{factor} pixels)", "pixels")
    if (new_h, new_w) == (height, width):
        return images
    ctx.log(f"cropped the image from {width}x{height} to {new_w}x{new_h} (a multiple of {factor})")
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return images[:, top : top + new_h, left : left + new_w, :]


def _encode(ctx: NodeContext, pixels: Any, vae: Any, mode: str, seed: int, tile: int | None, overlap: int) -> dict:
    import torch

    from nodes.image.convert import check_image
    from nodes.latent.codec import encode, spatial_factor

    module = _vae_module(ctx, vae)
    images = _crop_to_factor(ctx, check_image(pixels, "pixels"), spatial_factor(module))
    # Drawn on the CPU so that a seed gives the same latent on every device.
    generator = torch.Generator("cpu").manual_seed(seed) if mode == "sample" else None
    samples = encode(
        module, images, vae.scaling_factor, getattr(vae, "shift_factor", 0.0),
        sample=mode == "sample", generator=generator, tile=tile, overlap=overlap, progress=ctx.progress,
    )
    return {"latent": {"samples": samples}}  # by output name: a bare dict would be read as outputs


@node(
    "core.VAEEncode", name="VAE Encode", category="latent",
    description="Encodes images into latents for image-to-image. Sides are trimmed to a multiple of 8.",
    inputs=[Input("pixels", IMAGE), Input("vae", VAE)],
    params=[Choice("mode", choices=("mode", "sample"), help=_ENCODE_HELP), Seed("seed", 0, help="Used by mode 'sample'.")],
    outputs=[Output("latent", LATENT)],
)
def vae_encode(ctx: NodeContext, pixels: Any, vae: Any, mode: str, seed: int) -> dict:
    return _encode(ctx, pixels, vae, mode, seed, None, 0)


@node(
    "core.VAEDecode", name="VAE Decode", category="latent",
    description="Decodes latents into images (exactly what diffusers' pipelines return before quantising).",
    inputs=[Input("samples", LATENT), Input("vae", VAE)],
    outputs=[Output("image", IMAGE)],
)
def vae_decode(ctx: NodeContext, samples: Any, vae: Any) -> Any:
    from nodes.latent.codec import decode

    latents = _check_latent(samples)
    module = _vae_module(ctx, vae)
    _check_channels(latents, module)
    return decode(module, latents, vae.scaling_factor, getattr(vae, "shift_factor", 0.0), progress=ctx.progress)


def _check_tiling(tile_size: int, overlap: int, factor: int) -> None:
    if overlap >= tile_size // 2:
        raise NodeInputError(f"the overlap ({overlap}) must be less than half the tile size ({tile_size})", "overlap")
    if tile_size % factor:
        raise NodeInputError(f"the tile size ({tile_size}) must be a multiple of {factor}", "tile_size")


_TILE_PARAMS = [
    Int("tile_size", 512, min=16, max=4096, step=8, help="Tile side in pixels; smaller uses less memory."),
    Int("overlap", 64, min=0, max=2048, step=8,
        help="Pixels shared by neighbouring tiles, blended smoothly so no seam shows."),
]


@node(
    "core.VAEDecodeTiled", name="VAE Decode (Tiled)", category="latent",
    description=(
        "Decodes latents tile by tile, for images too large to decode at once. Overlaps are blended with "
        "linear ramps; the result is close to, not identical with, a whole decode."
    ),
    inputs=[Input("samples", LATENT), Input("vae", VAE)],
    params=_TILE_PARAMS,
    outputs=[Output("image", IMAGE)],
)
def vae_decode_tiled(ctx: NodeContext, samples: Any, vae: Any, tile_size: int, overlap: int) -> Any:
    from nodes.latent.codec import decode, spatial_factor

    latents = _check_latent(samples)
    module = _vae_module(ctx, vae)
    _check_channels(latents, module)
    factor = spatial_factor(module)
    _check_tiling(tile_size, overlap, factor)
    return decode(
        module, latents, vae.scaling_factor, getattr(vae, "shift_factor", 0.0),
        tile=tile_size // factor, overlap=overlap // factor, progress=ctx.progress,
    )


@node(
    "core.VAEEncodeTiled", name="VAE Encode (Tiled)", category="latent",
    description="Encodes images tile by tile, for images too large to encode at once; overlaps are blended.",
    inputs=[Input("pixels", IMAGE), Input("vae", VAE)],
    params=[*_TILE_PARAMS, Choice("mode", choices=("mode", "sample"), help=_ENCODE_HELP), Seed("seed", 0)],
    outputs=[Output("latent", LATENT)],
)
def vae_encode_tiled(ctx: NodeContext, pixels: Any, vae: Any, tile_size: int, overlap: int, mode: str, seed: int) -> dict:
    from nodes.latent.codec import spatial_factor

    factor = spatial_factor(_vae_module(ctx, vae))
    _check_tiling(tile_size, overlap, factor)
    return _encode(ctx, pixels, vae, mode, seed, tile_size, overlap - overlap % factor)
