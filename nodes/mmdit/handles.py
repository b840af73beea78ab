"""The MODEL and CLIP handles of FLUX.1 and SD3 / 3.5.

:class:`FlowModelHandle` is a DiT-family MODEL handle (so every node that accepts a MODEL accepts it, and the one
sampler drives it): 16 latent channels at 1/8 size, flow prediction, the SD3 / FLUX img2img rounding of the denoise
strength, and a denoiser built per family. :class:`FlowTextEncoders` is the CLIP socket's value: CLIP-L and T5 for
FLUX, CLIP-L, CLIP-G and an optional T5 for SD3, with the tokenizers and the lengths their pipelines pad to.

This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nodes.dit.handles import DiffusionModelHandle
from nodes.sd.handles import _module_nbytes, _patches_nbytes

FLOW_LABELS = {"flux": "FLUX.1", "sd3": "Stable Diffusion 3"}
TEXT_NODES = {"flux": "FLUX Text Encode", "sd3": "SD3 Text Encode"}


@dataclass(frozen=True, eq=False)
class FlowModelHandle(DiffusionModelHandle):
    """Socket MODEL for a FLUX.1 or SD3 transformer. ``variant`` names the release the weights look like
    ("FLUX.1 [dev]", "SD3.5 Large", ...; informative only)."""

    sample_channels: int = 16
    pixels_per_cell: int = 8
    strength_rule: str = "flow"
    variant: str = ""

    @property
    def pixels_multiple(self) -> int:
        """Image sides must be multiples of this: FLUX packs 2x2 latent cells, SD3 cuts 2x2 patches."""
        return self.pixels_per_cell * int(getattr(self.unet.config, "patch_size", 1) if self.family == "sd3" else 2)

    def make_denoiser(self, network: Any, autocast: Any = None) -> Any:
        if self.family == "flux":
            from nodes.flux.denoiser import FluxDenoiser

            return FluxDenoiser(network, autocast)
        if self.family == "sd3":
            from nodes.sd3.denoiser import SD3Denoiser

            return SD3Denoiser(network, autocast)
        raise ValueError(f"no denoiser for model family {self.family!r}")


@dataclass(frozen=True, eq=False)
class FlowTextEncoders:
    """Socket CLIP for FLUX (CLIP-L, T5) and SD3 (CLIP-L, CLIP-G, T5 or None). ``max_lengths``: tokens per encoder
    as the pipelines pad them (CLIP 77; T5 512 for FLUX, 256 for SD3). ``patches``: LoRA patches, applied only while
    encoding. Its fields are not an SD ClipHandle's, so the SD text nodes refuse it with their "expected a CLIP"
    error instead of feeding it to CLIP code."""

    family: str
    text_tokenizers: tuple
    text_encoders: tuple
    max_lengths: tuple[int, ...]
    patches: tuple = ()
    joint_width: int = 4096  # SD3 without T5: the width of the zeros that stand in for its tokens (the MMDiT's)

    def replace(self, **changes: Any) -> FlowTextEncoders:
        return dataclasses.replace(self, **changes)

    @property
    def has_t5(self) -> bool:
        return self.text_encoders[-1] is not None

    def cache_nbytes(self) -> int:
        if self.patches:
            return _patches_nbytes(self.patches)
        return sum(_module_nbytes(e) for e in self.text_encoders if e is not None)
