"""What a 9-channel inpainting UNet gets besides the latent, built as ComfyUI builds it (``concat_cond``):
the mask (rounded to 0 or 1 at the latent's size) and the masked image's latents, from the conditioning
(Inpaint Model Conditioning) or else from the latent itself and its noise mask (VAE Encode for Inpainting);
with no mask at all, a mask of ones and the latents of a black image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

INPAINT_CHANNELS = 9
# the latents of an all-black image (pixel value 0) in the SD1.5/SDXL latent space, ComfyUI's constants
BLANK_LATENT = (0.8223, -0.6876, 0.6364, 0.1380)


def is_inpainting_unet(model: Any) -> bool:
    return getattr(getattr(getattr(model, "unet", None), "config", None), "in_channels", None) == INPAINT_CHANNELS


def _from_conditioning(entries: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    for entry in entries:
        extras = getattr(entry, "extras", {})
        if "concat_latent_image" in extras:
            return extras["concat_latent_image"], extras.get("concat_mask")
    return None


def _batch(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    if tensor.shape[0] >= batch:
        return tensor[:batch]
    return tensor.repeat([-(-batch // tensor.shape[0])] + [1] * (tensor.ndim - 1))[:batch]


def inpaint_concat(latent: dict, positive: Sequence[Any], negative: Sequence[Any]) -> torch.Tensor:
    """``[B, 5, h, w]``: mask, then masked-image latents."""
    from nodes.comfy.resize import common_upscale

    samples = latent["samples"].to(torch.float32)
    batch, _, h, w = samples.shape
    found = _from_conditioning(positive) or _from_conditioning(negative)
    image = found[0].to(torch.float32) if found is not None else samples
    mask = found[1] if found is not None and found[1] is not None else latent.get("noise_mask")
    if mask is None:
        ones = torch.ones((batch, 1, h, w))
        return torch.cat([ones, torch.tensor(BLANK_LATENT).view(1, 4, 1, 1).expand(batch, 4, h, w)], dim=1)
    mask = mask.to(torch.float32)
    mask = mask.reshape((-1, 1, *mask.shape[-2:]))
    if tuple(mask.shape[-2:]) != (h, w):
        mask = common_upscale(mask, w, h, "bilinear", "center")
    return torch.cat([_batch(mask.round(), batch), _batch(image, batch)], dim=1)
