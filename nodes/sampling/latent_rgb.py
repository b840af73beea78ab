"""Latent -> RGB in one matrix product: the cheap approximation of a VAE decode that live previews use.

A :class:`LatentRGB` is an affine map from a latent's C channels to RGB in -1..1, applied per latent cell
(so a 64x64 latent gives a 64x64 preview, with no network run). Two sources:

- **Published factors** for the released SD1.5, SDXL, SD3 and FLUX.1 VAEs (:data:`PUBLISHED`), the numbers
  ComfyUI's previews use (``comfy/latent_formats.py``). They hold for every model that uses one of those VAEs:
  PixArt-alpha uses SD1.5's, Hunyuan-DiT and PixArt-sigma use SDXL's.
- **Fitted** for any other VAE (:func:`fit_latent_rgb`): sixteen small random latents go through the VAE's own
  decoder, and a least-squares fit maps each latent cell to the mean colour of the pixels it decodes to (the
  decoder's linear behaviour near the origin). It costs one decode of sixteen 8x8 latents, once per VAE.

To add a latent format: add its factors to :data:`PUBLISHED` and its (channels, scaling) to
:data:`STANDARD_LATENTS`, or do nothing at all: any VAE the loader hands to
:func:`nodes.sampling.previews.remember_vae` is fitted, whatever its channel count.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch

# rows: latent channels; columns: R, G, B (output in -1..1); then the bias of each colour. ComfyUI's numbers
# (comfy/latent_formats.py), for latents in the sampler's space (after the VAE's scaling and shift).
PUBLISHED: dict[str, tuple[tuple[tuple[float, float, float], ...], tuple[float, float, float]]] = {
    "sd15": (
        ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177)),
        (0.0, 0.0, 0.0),
    ),
    "sdxl": (
        ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188)),
        (0.1084, -0.0175, -0.0011),
    ),
    "sd3": (
        ((-0.0922, -0.0175, 0.0749), (0.0311, 0.0633, 0.0954), (0.1994, 0.0927, 0.0458), (0.0856, 0.0339, 0.0902),
         (0.0587, 0.0272, -0.0496), (-0.0006, 0.1104, 0.0309), (0.0978, 0.0306, 0.0427), (-0.0042, 0.1038, 0.1358),
         (-0.0194, 0.0020, 0.0669), (-0.0488, 0.0130, -0.0268), (0.0922, 0.0988, 0.0951), (-0.0278, 0.0524, -0.0542),
         (0.0332, 0.0456, 0.0895), (-0.0069, -0.0030, -0.0810), (-0.0596, -0.0465, -0.0293), (-0.1448, -0.1463, -0.1189)),
        (0.2394, 0.2135, 0.1925),
    ),
    "flux": (
        ((-0.0346, 0.0244, 0.0681), (0.0034, 0.0210, 0.0687), (0.0275, -0.0668, -0.0433), (-0.0174, 0.0160, 0.0617),
         (0.0859, 0.0721, 0.0329), (0.0004, 0.0383, 0.0115), (0.0405, 0.0861, 0.0915), (-0.0236, -0.0185, -0.0259),
         (-0.0245, 0.0250, 0.1180), (0.1008, 0.0755, -0.0421), (-0.0515, 0.0201, 0.0011), (0.0428, -0.0012, -0.0036),
         (0.0817, 0.0765, 0.0749), (-0.1264, -0.0522, -0.1103), (-0.0280, -0.0881, -0.0499), (-0.1262, -0.0982, -0.0778)),
        (-0.0329, -0.0718, -0.0851),
    ),
}
# The released VAEs these factors belong to share one architecture; latent channels and scaling tell them apart.
STANDARD_VAE = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2}
STANDARD_LATENTS = {(4, 0.18215): "sd15", (4, 0.13025): "sdxl", (16, 1.5305): "sd3", (16, 0.3611): "flux"}
# The fit decodes FIT_LATENTS random latents of 8x8 cells drawn around the origin with this spread (in the
# sampler's scaled space): the decoder's linear behaviour there. Measured on the first demo model: spreads of
# 0.25, 0.5 and 0.7 give preview/image correlations of 0.90, 0.83 and 0.76 on its generated images; latents
# encoded from colour images instead give 0.15 (its VAE knows few colours, so its encoder maps others off its
# manifold). The retrained demo VAE is less linear still (0.28 at any spread): runs refit this map on their own
# estimates (nodes/sampling/refit_preview.py).
FIT_SPREAD = 0.25
FIT_LATENTS = 16
FIT_CELLS = 8


@dataclass(frozen=True)
class LatentRGB:
    """``rgb = latent_cell @ factors + bias`` (in -1..1), for every cell of a latent ``[B, C, h, w]``."""

    factors: torch.Tensor  # [C, 3]
    bias: torch.Tensor  # [3]
    source: str  # "published sd15", "fitted", ...

    @classmethod
    def published(cls, kind: str) -> LatentRGB:
        factors, bias = PUBLISHED[kind]
        return cls(torch.tensor(factors, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32), f"published {kind}")

    @property
    def channels(self) -> int:
        return int(self.factors.shape[0])

    def __call__(self, latents: torch.Tensor) -> torch.Tensor:
        """``[B, C, h, w]`` -> RGB ``[B, h, w, 3]`` in 0..1, float32 on the CPU."""
        x = latents.detach()
        factors = self.factors.to(device=x.device, dtype=torch.float32)
        bias = self.bias.to(device=x.device, dtype=torch.float32)
        rgb = torch.einsum("bchw,cd->bhwd", x.float(), factors) + bias
        return ((rgb + 1.0) * 0.5).clamp(0.0, 1.0).cpu()


def pixels_to_rgb(samples: torch.Tensor) -> torch.Tensor:
    """Pixel-space samples (DeepFloyd IF) ``[B, 3, H, W]`` in -1..1 -> ``[B, H, W, 3]`` in 0..1: already an image."""
    return ((samples.detach()[:, :3].float() + 1.0) * 0.5).clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu()


def standard_vae_kind(config: Any) -> str | None:
    """"sd15", "sdxl", "sd3" or "flux" if ``config`` (a VAE's) is that release's VAE, by architecture, latent
    channels and scaling (None for any other VAE: it gets a fitted map)."""
    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    for key, value in STANDARD_VAE.items():  # (getattr on a FrozenDict config: a missing key gives the default)
        found = get(key)
        if (list(found) if isinstance(found, (list, tuple)) else found) != value:
            return None
    # configs written before these keys existed (SD1.5's, diffusers 0.6) mean AutoencoderKL's defaults
    channels, scaling = get("latent_channels", 4), get("scaling_factor", 0.18215)
    for (wanted_channels, wanted_scaling), kind in STANDARD_LATENTS.items():
        if channels == wanted_channels and scaling is not None and math.isclose(scaling, wanted_scaling, rel_tol=1e-4):
            return kind
    return None


@torch.no_grad()
def fit_latent_rgb(vae: Any, scaling_factor: float, shift_factor: float = 0.0) -> LatentRGB:
    """Fit the affine latent -> RGB map of ``vae`` (an AutoencoderKL-like module) from its own decoder: decode a
    few small random latents and fit each cell's mean decoded colour by least squares."""
    from nodes.latent.codec import decode, spatial_factor

    module = vae
    parameter = next(module.parameters())
    if parameter.device.type == "cpu" and parameter.dtype != torch.float32:
        module = copy.deepcopy(module).float()  # half precision convolutions are slow or missing on CPUs
    factor = spatial_factor(module)
    generator = torch.Generator("cpu").manual_seed(0)  # the same map every time for the same VAE
    shape = (FIT_LATENTS, int(module.config.latent_channels), FIT_CELLS, FIT_CELLS)
    latents = torch.randn(shape, generator=generator) * FIT_SPREAD
    decoded = decode(module, latents, scaling_factor, shift_factor)  # [N, H, W, 3] in 0..1
    target = torch.nn.functional.avg_pool2d(decoded.permute(0, 3, 1, 2), factor)  # each latent cell's colour
    return fit_affine(latents, target.permute(0, 2, 3, 1), "fitted")


def fit_affine(latents: torch.Tensor, cells: torch.Tensor, source: str, prior: LatentRGB | None = None,
               ridge: float = 0.0) -> LatentRGB:
    """Least squares from latent cells ``[B, C, h, w]`` to their colours ``[B, h, w, 3]`` (0..1); with ``prior`` and
    ``ridge`` > 0, pulled towards that map by ``ridge`` per cell (so a nearly flat estimate cannot make it wild)."""
    x = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).double()
    y = (cells.reshape(-1, 3) * 2.0 - 1.0).double()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    if prior is None or ridge <= 0:
        solution = torch.linalg.lstsq(design, y).solution  # [C + 1, 3]
    else:
        penalty = ridge * len(x)
        target = torch.cat([prior.factors, prior.bias[None]], dim=0).double()
        gram = design.T @ design + penalty * torch.eye(design.shape[1], dtype=x.dtype)
        solution = torch.linalg.solve(gram, design.T @ y + penalty * target)
    return LatentRGB(solution[:-1].float(), solution[-1].float(), source)
