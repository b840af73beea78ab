"""Pixels <-> latents through a diffusers AutoencoderKL, step for step as diffusers' pipelines do it, plus a
tiled variant for images too large to code in one piece.

Encoding follows ``StableDiffusion(XL)Img2ImgPipeline.prepare_latents``: pixels ``x`` in 0..1 become
``2 * x - 1`` (``VaeImageProcessor.normalize``), the encoder gives a diagonal Gaussian, its mode (or a sample)
is scaled into the sampler's latent space. Decoding follows the text-to-image pipelines: latents are
unscaled, decoded, mapped back with ``(x * 0.5 + 0.5).clamp(0, 1)`` in the VAE's dtype and only then made
float32 NHWC on the CPU (``VaeImageProcessor.postprocess``), so the result equals diffusers' ``output_type="np"``
bit for bit.

The tiled variant cannot use AutoencoderKL's own tiling: that is switched on and sized through attributes
of the module (``enable_tiling()``, ``tile_sample_min_size``), and the module is shared by every node that
holds the VAE handle (DESIGN contract 3: never mutate an input). It runs the module's encoder / decoder
on overlapping tiles instead and blends the overlaps with linear ramps, so no seam is visible.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch

Progress = Callable[[int, int], None]


def spatial_factor(vae: Any) -> int:
    """Pixels per latent cell along each side (8 for every SD VAE)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def compute_module(vae: Any) -> Any:
    """The module to run. An fp16 VAE whose config asks for it (SDXL's overflows in fp16) runs as an fp32
    copy, as diffusers' pipelines upcast it; the shared module itself is never changed."""
    if next(vae.parameters()).dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        return copy.deepcopy(vae).to(torch.float32)
    return vae


def _placement(vae: Any) -> tuple[torch.device, torch.dtype]:
    parameter = next(vae.parameters())
    return parameter.device, parameter.dtype


def _latent_stats(vae: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    mean = getattr(vae.config, "latents_mean", None)
    std = getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None
    shape = (1, len(mean), 1, 1)
    return like.new_tensor(mean).view(shape), like.new_tensor(std).view(shape)


def images_to_vae_input(images: torch.Tensor) -> torch.Tensor:
    """``[B, H, W, 3]`` in 0..1 -> ``[B, 3, H, W]`` in -1..1, float32 on the CPU, as diffusers preprocesses.

    The result stays a permuted view of NHWC memory (channels-last strides), exactly as
    ``VaeImageProcessor.numpy_to_pt`` leaves it: convolution kernels pick their algorithm by memory layout,
    and a contiguous copy would change the encoder's output in the last bits.
    """
    x = images.detach().to("cpu", torch.float32).contiguous().permute(0, 3, 1, 2)
    return 2.0 * x - 1.0


def vae_output_to_images(decoded: torch.Tensor) -> torch.Tensor:
    """Decoder output ``[B, 3, H, W]`` -> IMAGE ``[B, H, W, 3]`` float32 on the CPU in 0..1."""
    image = (decoded * 0.5 + 0.5).clamp(0, 1)
    return image.cpu().permute(0, 2, 3, 1).float().contiguous()


def scale_latents(vae: Any, z: torch.Tensor, scaling_factor: float, shift_factor: float) -> torch.Tensor:
    """Raw encoder latents -> the sampler's latent space."""
    stats = _latent_stats(vae, z)
    if stats is not None:
        mean, std = stats
        return (z - mean) * scaling_factor / std
    if shift_factor:
        z = z - shift_factor
    return scaling_factor * z


def unscale_latents(vae: Any, latents: torch.Tensor, scaling_factor: float, shift_factor: float) -> torch.Tensor:
    """The sampler's latents -> what the decoder expects (inverse of :func:`scale_latents`)."""
    stats = _latent_stats(vae, latents)
    if stats is not None:
        mean, std = stats
        return latents * std / scaling_factor + mean
    latents = latents / scaling_factor
    return latents + shift_factor if shift_factor else latents


def _moments_to_latents(moments: torch.Tensor, sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    dist = DiagonalGaussianDistribution(moments)
    return dist.sample(generator) if sample else dist.mode()


@torch.no_grad()
def encode(
    vae: Any,
    images: torch.Tensor,
    scaling_factor: float,
    shift_factor: float = 0.0,
    sample: bool = False,
    generator: torch.Generator | None = None,
    tile: int | None = None,
    overlap: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """IMAGE -> latents in the sampler's space, on the CPU in float32. ``tile``/``overlap`` in pixels."""
    module = compute_module(vae)
    device, dtype = _placement(module)
    x = images_to_vae_input(images).to(device=device, dtype=dtype)
    if tile is None or (x.shape[-1] <= tile and x.shape[-2] <= tile):
        dist = module.encode(x).latent_dist
        z = dist.sample(generator) if sample else dist.mode()
        if progress:
            progress(1, 1)
    else:

        def encode_tile(piece: torch.Tensor) -> torch.Tensor:
            moments = module.encoder(piece)
            return module.quant_conv(moments) if module.quant_conv is not None else moments

        factor = spatial_factor(module)
        moments = tiled_map(x, encode_tile, tile, overlap, 1 / factor, progress, align=factor)
        z = _moments_to_latents(moments, sample, generator)
    return scale_latents(module, z, scaling_factor, shift_factor).to("cpu", torch.float32)


@torch.no_grad()
def decode(
    vae: Any,
    latents: torch.Tensor,
    scaling_factor: float,
    shift_factor: float = 0.0,
    tile: int | None = None,
    overlap: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Latents in the sampler's space -> IMAGE. ``tile``/``overlap`` in latent cells."""
    module = compute_module(vae)
    device, dtype = _placement(module)
    z = unscale_latents(module, latents.to(device=device, dtype=dtype), scaling_factor, shift_factor)
    if tile is None or (z.shape[-1] <= tile and z.shape[-2] <= tile):
        decoded = module.decode(z, return_dict=False)[0]
        if progress:
            progress(1, 1)
    else:

        def decode_tile(piece: torch.Tensor) -> torch.Tensor:
            if module.post_quant_conv is not None:
                piece = module.post_quant_conv(piece)
            return module.decoder(piece)

        decoded = tiled_map(z, decode_tile, tile, overlap, spatial_factor(module), progress)
    return vae_output_to_images(decoded)


def tile_starts(size: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of the fewest tiles of length ``tile`` that cover ``size`` with neighbours overlapping by
    at least ``overlap``, spread evenly (so every seam gets the same overlap) and multiples of ``align``."""
    if size <= tile:
        return [0]
    units, tile_units, overlap_units = size // align, tile // align, overlap // align
    count = math.ceil((units - overlap_units) / max(1, tile_units - overlap_units))
    span = units - tile_units
    return [round(i * span / (count - 1)) * align for i in range(count)]


def _side_weights(starts: list[int], index: int, tile: int, length: int, scale: float, device: torch.device) -> torch.Tensor:
    """Weights along one side of tile ``index``: rising across its overlap with the previous tile, falling
    across its overlap with the next, 1 elsewhere (image borders keep full weight). Where two tiles overlap,
    one fades out as the other fades in."""
    lead = round((starts[index - 1] + tile - starts[index]) * scale) if index > 0 else 0
    trail = round((starts[index] + tile - starts[index + 1]) * scale) if index + 1 < len(starts) else 0
    if lead + trail > length:  # overlaps beyond half a tile: shrink both ramps to fit
        lead, trail = lead * length // (lead + trail), trail * length // (lead + trail)
    weights = torch.ones(length, device=device)
    if lead:
        weights[:lead] = torch.arange(1, lead + 1, device=device) / (lead + 1)
    if trail:
        weights[length - trail :] = torch.arange(trail, 0, -1, device=device) / (trail + 1)
    return weights


def tiled_map(
    x: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    tile: int,
    overlap: int,
    scale: float,
    progress: Progress | None = None,
    align: int = 1,
) -> torch.Tensor:
    """Apply ``fn`` (which maps a tile ``h x w`` to ``h*scale x w*scale``) to overlapping tiles of ``x`` and
    blend the results: each output pixel is the weighted mean of the tiles covering it, weights ramping
    linearly across each overlap. Tile offsets are multiples of ``align`` (the VAE factor when encoding, so
    that tiles map onto whole latent cells)."""
    height, width = x.shape[-2:]
    rows, cols = tile_starts(height, tile, overlap, align), tile_starts(width, tile, overlap, align)
    total = len(rows) * len(cols)
    out = weight = None
    done = 0
    for i, top in enumerate(rows):
        for j, left in enumerate(cols):
            piece = fn(x[..., top : top + tile, left : left + tile])
            if out is None:
                shape = (*piece.shape[:2], round(height * scale), round(width * scale))
                out = torch.zeros(shape, device=piece.device, dtype=torch.float32)
                weight = torch.zeros(shape[-2:], device=piece.device, dtype=torch.float32)
                result_dtype = piece.dtype
            ph, pw = piece.shape[-2:]
            oy, ox = round(top * scale), round(left * scale)
            wy = _side_weights(rows, i, tile, ph, scale, piece.device)
            wx = _side_weights(cols, j, tile, pw, scale, piece.device)
            w = wy[:, None] * wx[None, :]
            out[..., oy : oy + ph, ox : ox + pw] += piece.float() * w
            weight[oy : oy + ph, ox : ox + pw] += w
            done += 1
            if progress:
                progress(done, total)
    assert out is not None and weight is not None
    return (out / weight).to(result_dtype)
