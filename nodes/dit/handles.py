"""The MODEL handle of the DiT and pixel-space families.

It is an SD :class:`~nodes.sd.handles.ModelHandle` (so every node that accepts a MODEL accepts it) whose
network, under the handle's ``unet`` name that the sampler reads, is a PixArt or Hunyuan transformer or an IF
UNet. What differs per family lives here rather than in the sampler: :meth:`DiffusionModelHandle.make_denoiser`
builds the family's :class:`~nodes.sampling.denoiser.Denoiser`, and ``sample_channels`` / ``pixels_per_cell``
say what the sampled tensor looks like (4 latent channels at 1/8 size, or 3 pixel channels at full size).

This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nodes.sd.handles import ModelHandle, _module_nbytes, _patches_nbytes

FAMILY_LABELS = {
    "pixart_alpha": "PixArt-alpha",
    "pixart_sigma": "PixArt-sigma",
    "hunyuan_dit": "Hunyuan-DiT",
    "if_stage_1": "DeepFloyd IF stage I",
    "if_stage_2": "DeepFloyd IF stage II (super-resolution)",
    "sd_x4_upscaler": "SD x4 upscaler",
    "dit_class": "DiT (class-conditional)",
}
PIXEL_FAMILIES = frozenset({"if_stage_1", "if_stage_2"})


@dataclass(frozen=True, eq=False)
class DiffusionModelHandle(ModelHandle):
    """Socket MODEL for a DiT (PixArt, Hunyuan-DiT) or an IF stage.

    ``low_res`` and ``noise_level`` are set only on a super-resolution handle (IF stage II, SD x4 upscaler)
    bound to the image it upscales (by the IF Super-Resolution / SD x4 Upscale nodes): the low-resolution image
    [B, 3, h, w] in -1..1 and the noise conditioning augmentation level (a DDPM timestep of
    ``noise_scheduler_config``).
    """

    sample_channels: int = 4
    pixels_per_cell: int = 8
    noise_scheduler_config: dict | None = None
    low_res: Any = None
    noise_level: int = 0
    id2label: dict | None = None  # class-conditional DiT: class id -> names, from the folder

    owns_network: bool = True  # False on handles derived with replace(): they share the loader's network

    def replace(self, **changes: Any) -> DiffusionModelHandle:
        return dataclasses.replace(self, **{"owns_network": False, **changes})

    def cache_nbytes(self) -> int:
        # The loader's handle owns its network (even with IF's thresholding link already in its guidance chain);
        # derived handles (a bound image, added guidance or patches) count only what they add.
        own = _module_nbytes(self.unet) if self.owns_network else _patches_nbytes(self.patches)
        if self.low_res is not None:
            own += self.low_res.numel() * self.low_res.element_size()
        return own

    def make_denoiser(self, network: Any, autocast: Any = None) -> Any:
        """The family's denoiser around ``network`` (this handle's module, made resident by the sampler)."""
        from nodes.dit.denoisers import HunyuanDenoiser, IFDenoiser, PixArtDenoiser, UpscalerDenoiser

        if self.family in ("pixart_alpha", "pixart_sigma"):
            return PixArtDenoiser(network, self.prediction_type, self.pixels_per_cell, autocast)
        if self.family == "hunyuan_dit":
            return HunyuanDenoiser(network, self.prediction_type, self.pixels_per_cell, autocast)
        if self.family in PIXEL_FAMILIES:
            return IFDenoiser(network, self.prediction_type, autocast, low_res=self.low_res,
                              noise_level=self.noise_level, noise_scheduler_config=self.noise_scheduler_config)
        if self.family == "sd_x4_upscaler":
            if self.low_res is None:
                raise ValueError("the SD x4 upscaler samples only with an image to upscale: bind one with SD x4 Upscale")
            return UpscalerDenoiser(network, self.prediction_type, autocast, low_res=self.low_res,
                                    noise_level=self.noise_level, noise_scheduler_config=self.noise_scheduler_config)
        if self.family == "dit_class":
            from nodes.class_dit.denoiser import ClassDiTDenoiser

            return ClassDiTDenoiser(network, self.prediction_type, autocast)
        raise ValueError(f"no denoiser for model family {self.family!r}")


@dataclass(frozen=True, eq=False)
class TextEncodersHandle:
    """Socket CLIP for the T5 / mT5 / BERT text encoders of these families, with the tokenizers read from the
    model folder: PixArt and IF (one T5), Hunyuan-DiT (BERT CLIP-style encoder, then mT5). ``max_lengths`` are
    the padded lengths the family's pipeline tokenizes to, per encoder.

    The fields are not named like an SD :class:`~nodes.sd.handles.ClipHandle`'s, so the SD text nodes refuse
    this handle with their "expected a CLIP" error instead of feeding a T5 to CLIP code."""

    family: str
    text_tokenizers: tuple
    text_encoders: tuple
    max_lengths: tuple[int, ...]

    def cache_nbytes(self) -> int:
        total = 0
        for encoder in self.text_encoders:
            total += sum(p.numel() * p.element_size() for p in encoder.parameters())
        return total
