"""Masked sampling (inpainting), the way diffusers' StableDiffusion(XL)InpaintPipeline does it.

A LATENT may carry a ``noise_mask`` (1 = repaint, 0 = keep; soft values blend). The sampler then does one of
two things, chosen by the model:

- an ordinary model (its input has as many channels as the latent) keeps the region outside the mask on the
  input image's own trajectory: after every scheduler step the latent becomes
  ``(1 - m) * noised(image, noise, next timestep) + m * latent``, with the very noise the run started from,
  and the clean image after the last step (diffusers' loop for 4-channel UNets);
- an inpainting model (9 input channels: latent + mask + masked-image latents, SD1.5 and SDXL inpainting
  checkpoints) sees the mask and the latents of the masked image concatenated to its input at every call
  and repaints on its own; nothing is blended, as in diffusers' loop for 9-channel UNets.

Either way a run that starts at the top of the schedule (denoise 1) starts from pure noise
(``noise * init_noise_sigma``, diffusers' ``is_strength_max``) rather than from the noised image.

Masks are resized to the latent's size with nearest-neighbour sampling, as diffusers' ``prepare_mask_latents``
does (``F.interpolate`` without a mode). diffusers also binarises the mask at 0.5 before that; we keep soft
values, which its loop blends the same way (a binary mask gives identical results; Threshold Mask binarises).

Where the masked-image latents come from, for inpainting models: the conditioning's ``concat_latent_image`` /
``concat_mask`` (Inpaint Conditioning, ComfyUI's InpaintModelConditioning), else the latent itself and its
noise mask (VAE Encode for Inpainting, whose latent is the image with the masked pixels filled grey).

A sampler that stops early and hands its latent on with leftover noise stores the clean image latents under
``SOURCE_KEY`` in its output, so the sampler that continues (add_noise off) brings the kept region back to the
image itself rather than to the noisy hand-over.

Other samplers (k-diffusion style, flow matching) reuse :func:`latent_mask`, :func:`noised` and
:meth:`Inpainting.blend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

INPAINT_EXTRA_CHANNELS = 5  # mask (1) + masked-image latents (4): SD1.5 / SDXL inpainting UNets take 9
# LATENT key: the clean latents of the kept region, on a sampler's output that still holds noise (KSampler
# Advanced with leftover noise), so that the sampler continuing it returns the kept region to the image
SOURCE_KEY = "source_samples"


class MaskError(ValueError):
    """A mask that cannot be used with this latent or model; ``field`` names the input to blame."""

    def __init__(self, message: str, field: str = "latent_image") -> None:
        super().__init__(message)
        self.field = field


def as_mask_batch(mask: torch.Tensor) -> torch.Tensor:
    """``[H, W]``, ``[B, H, W]`` or ``[B, 1, H, W]`` -> ``[B, 1, H, W]`` float32."""
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    elif mask.ndim != 4 or mask.shape[1] != 1:
        raise MaskError(f"a mask must be [H, W], [B, H, W] or [B, 1, H, W], found shape {list(mask.shape)}")
    return mask.to(torch.float32)


def same_aspect(mask_hw: tuple[int, int], target_hw: tuple[int, int]) -> bool:
    """True when a mask of ``mask_hw`` covers ``target_hw`` up to rounding (the sides' scalings differ by less
    than one target cell): masks for a latent may be at pixel size or at latent size, and an image trimmed to
    a multiple of 8 before encoding keeps a mask drawn on the untrimmed image usable."""
    (mh, mw), (th, tw) = mask_hw, target_hw
    return abs(mh * tw - mw * th) <= max(mh, mw)


def repeat_to_batch(tensor: torch.Tensor, batch: int, what: str) -> torch.Tensor:
    """Repeat a batch of 1 (or a divisor of ``batch``) up to ``batch`` rows, as diffusers does."""
    if tensor.shape[0] == batch:
        return tensor
    if tensor.shape[0] > batch or batch % tensor.shape[0]:
        raise MaskError(f"the {what} has a batch of {tensor.shape[0]}, which does not divide the latent batch of {batch}")
    return tensor.repeat(batch // tensor.shape[0], *([1] * (tensor.ndim - 1)))


def latent_mask(mask: torch.Tensor, latent_hw: tuple[int, int], batch: int) -> torch.Tensor:
    """A mask at any resolution -> ``[batch, 1, h, w]`` at the latent's size, values kept in 0..1.

    Nearest-neighbour resampling, as ``StableDiffusionInpaintPipeline.prepare_mask_latents`` does."""
    if not isinstance(mask, torch.Tensor):
        raise MaskError(f"the latent's noise mask must be a MASK tensor, found {type(mask).__name__}")
    m = as_mask_batch(mask.detach().to("cpu"))
    if not same_aspect(tuple(m.shape[-2:]), latent_hw):
        raise MaskError(
            f"the noise mask is {m.shape[-1]}x{m.shape[-2]}, which does not have the aspect ratio of the latent "
            f"({latent_hw[1]}x{latent_hw[0]} cells, {latent_hw[1] * 8}x{latent_hw[0] * 8} pixels): resize or crop "
            "the mask to the image it was drawn for"
        )
    if tuple(m.shape[-2:]) != tuple(latent_hw):
        m = F.interpolate(m, size=latent_hw)
    return repeat_to_batch(m.clamp(0.0, 1.0), batch, "noise mask")


def noised(scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``latents`` at the noise level of timestep(s) ``t``: ``add_noise`` for DDPM-type schedulers,
    ``scale_noise`` for flow-matching ones."""
    if hasattr(scheduler, "add_noise"):
        return scheduler.add_noise(latents, noise, t)
    if hasattr(scheduler, "scale_noise"):
        return scheduler.scale_noise(latents, t, noise)
    raise MaskError(f"the {type(scheduler).__name__} scheduler cannot noise an image to a timestep, so this sampler "
                    "cannot keep the unmasked region: use a DDPM-type or flow-matching scheduler")


def check_scheduler(inpainting: Inpainting | None, scheduler: Any) -> None:
    """Before sampling: a scheduler that cannot noise the image cannot keep the unmasked region."""
    if inpainting is not None and inpainting.blend and not (hasattr(scheduler, "add_noise") or hasattr(scheduler, "scale_noise")):
        raise MaskError(f"the {type(scheduler).__name__} scheduler cannot noise an image to a timestep, so this "
                        "sampler cannot keep the unmasked region: use a DDPM-type or flow-matching scheduler",
                        "scheduler")


def model_channels(model: Any) -> int | None:
    """Input channels of the model's network (None when it does not say)."""
    config = getattr(getattr(model, "unet", None), "config", None)
    return getattr(config, "in_channels", None)


def is_inpainting_model(model: Any) -> bool:
    """An SD1.5 / SDXL inpainting UNet: the latent's channels plus a mask channel plus masked-image latents."""
    if getattr(model, "sample_channels", None) is not None:  # DiT / pixel families declare their own input
        return False
    return model_channels(model) == 4 + INPAINT_EXTRA_CHANNELS


@dataclass(frozen=True)
class Inpainting:
    """What the sampler needs to sample under a mask (see the module docstring).

    ``mask``: ``[B, 1, h, w]`` at the latent's size, 1 = repaint (None for an inpainting model without a
    noise mask). ``image``: the input latents, whose unmasked part is kept. ``blend``: keep the unmasked region
    on the image's trajectory (ordinary models). ``concat``: ``[B, 5, h, w]`` (mask and masked-image latents)
    appended to the model's input (inpainting models), else None.
    """

    mask: torch.Tensor | None
    image: torch.Tensor
    blend: bool
    concat: torch.Tensor | None = None

    def to(self, device: Any, dtype: torch.dtype) -> Inpainting:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device=device, dtype=dtype)

        return Inpainting(move(self.mask), move(self.image), self.blend, move(self.concat))

    def keep_known(self, x: torch.Tensor, noise: torch.Tensor, scheduler: Any, next_t: torch.Tensor | None) -> torch.Tensor:
        """After a scheduler step: the unmasked region back on the image's trajectory, at ``next_t``'s noise
        level, or the clean image when ``next_t`` is None (after the last step)."""
        if not self.blend or self.mask is None:
            return x
        known = self.image if next_t is None else noised(scheduler, self.image, noise, next_t)
        return self.blend_with(x, known)

    def blend_with(self, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """``(1 - m) * known + m * x``, written as diffusers writes it (so results are bit-identical)."""
        assert self.mask is not None
        return (1 - self.mask) * known + self.mask * x


def _conditioning_concat(entries: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor] | None:
    for entry in entries:
        extras = getattr(entry, "extras", {})
        if "concat_latent_image" in extras:
            return extras["concat_latent_image"], extras["concat_mask"]
    return None


def prepare(
    latent: dict[str, Any], model: Any, positive: Sequence[Any], negative: Sequence[Any]
) -> tuple[Inpainting | None, list[str]]:
    """The :class:`Inpainting` for a LATENT dict and a MODEL, or None when nothing is masked; plus notes
    for the user. Raises :class:`MaskError` for masks that cannot be used."""
    samples: torch.Tensor = latent["samples"]
    batch, _, h, w = samples.shape
    notes: list[str] = []
    # A latent handed on with leftover noise carries the clean latents its kept region returns to
    source = latent.get(SOURCE_KEY)
    known = source if isinstance(source, torch.Tensor) and source.shape == samples.shape else samples
    noise_mask = latent.get("noise_mask")
    mask = latent_mask(noise_mask, (h, w), batch) if noise_mask is not None else None
    concat_source = _conditioning_concat(positive) or _conditioning_concat(negative)
    if not is_inpainting_model(model):
        if concat_source is not None:
            notes.append("this is not an inpainting model: the conditioning's masked image is not used, only the "
                         "latent's noise mask")
        if mask is None:
            return None, notes
        return Inpainting(mask, known, blend=True), notes
    if concat_source is not None:
        image_latents, pixel_mask = concat_source
        image_latents = image_latents.to("cpu", torch.float32)
        if tuple(image_latents.shape[-2:]) != (h, w):
            raise MaskError(
                f"the inpainting image from the conditioning is {image_latents.shape[-1] * 8}x{image_latents.shape[-2] * 8} "
                f"pixels but the latent is {w * 8}x{h * 8}: encode both from the same image", "positive"
            )
        concat_mask = latent_mask(pixel_mask, (h, w), batch)
        masked = repeat_to_batch(image_latents, batch, "inpainting image")
    elif mask is not None:
        # VAE Encode for Inpainting: the latent is the masked image, its noise mask the mask
        concat_mask, masked = mask, samples
    else:
        raise MaskError(
            "this is an inpainting model (9 input channels): it needs a mask and the masked image. Encode the image "
            "with 'VAE Encode (for Inpainting)', or give the prompts to 'Inpaint Conditioning'"
        )
    return Inpainting(mask, known, blend=False, concat=torch.cat([concat_mask, masked], dim=1)), notes


def describe_coverage(inpainting: Inpainting) -> str | None:
    """A note for masks that repaint nothing or everything (documented behaviour, not an error)."""
    mask = inpainting.mask
    if mask is None:
        return None
    if not torch.any(mask > 0):
        return "the noise mask is empty: nothing is repainted (the result is the input latent)"
    if torch.all(mask >= 1):
        return "the noise mask covers the whole image: everything is repainted"
    return None
