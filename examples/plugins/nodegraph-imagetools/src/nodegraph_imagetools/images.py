"""Tensor helpers shared by the nodes. Imported only inside node functions, so torch loads on first use."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nodegraph.errors import NodeInputError

# Rec. 709 luma weights: how bright each channel looks.
LUMA = (0.2126, 0.7152, 0.0722)


def check_image(value: Any, field: str = "image") -> torch.Tensor:
    """The IMAGE contract: float32 [B, H, W, 3] in 0..1. Anything else is the user's wiring mistake: say so."""
    if not isinstance(value, torch.Tensor) or value.ndim != 4 or value.shape[-1] != 3:
        shape = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise NodeInputError(f"expected an IMAGE tensor [B, H, W, 3], found {shape}", field)
    return value.float()


def luminance(images: torch.Tensor) -> torch.Tensor:
    """[B, H, W, 3] -> [B, H, W, 1]."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device)
    return (images * weights).sum(dim=-1, keepdim=True)


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A normalised 1-D Gaussian reaching three sigmas each side."""
    radius = max(1, int(3.0 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur one [H, W, 3] image (or a batch [B, H, W, 3]) with a separable Gaussian; edges are replicated."""
    if sigma <= 0:
        return image.clone()
    batched = image if image.ndim == 4 else image.unsqueeze(0)
    x = batched.permute(0, 3, 1, 2)  # -> [B, 3, H, W] for conv2d
    kernel = gaussian_kernel(sigma, x.dtype).to(x.device)
    radius = kernel.numel() // 2
    channels = x.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), horizontal, groups=channels)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), vertical, groups=channels)
    out = x.permute(0, 2, 3, 1).contiguous()
    return out if image.ndim == 4 else out[0]
