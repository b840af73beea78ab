"""The values that travel on MODEL, CLIP and VAE sockets.

A handle is a frozen description: the module objects it holds are shared by every handle derived from
it (a LoRA loader returns ``handle.replace(patches=...)``, never a modified module), so a consumer must
never mutate them in place (DESIGN contract 3). Modules are in eval mode, without gradients, on the CPU
after loading; nodes move them with ``ctx.runtime.residency.load(module)`` before computing.

This module imports no torch: annotations only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, UNet2DConditionModel


def _module_nbytes(module: Any) -> int:
    if module is None:
        return 0
    params = sum(p.numel() * p.element_size() for p in module.parameters())
    return params + sum(b.numel() * b.element_size() for b in module.buffers())


def _patches_nbytes(patches: tuple) -> int:
    """Bytes held by patches: objects may answer with ``cache_nbytes()``; tensors (or dicts/tuples of
    them) are counted by their storage size."""
    total = 0
    for patch in patches:
        own = getattr(patch, "cache_nbytes", None)
        if callable(own):
            total += int(own())
        elif hasattr(patch, "element_size") and hasattr(patch, "numel"):
            total += patch.numel() * patch.element_size()
        elif isinstance(patch, dict):
            total += _patches_nbytes(tuple(patch.values()))
        elif isinstance(patch, (tuple, list)):
            total += _patches_nbytes(tuple(patch))
        elif dataclasses.is_dataclass(patch) and not isinstance(patch, type):
            total += _patches_nbytes(tuple(getattr(patch, f.name) for f in dataclasses.fields(patch)))
    return total


@dataclass(frozen=True, eq=False)
class VaeHandle:
    """Socket VAE: an AutoencoderKL plus the latent scaling of its family."""

    vae: AutoencoderKL
    family: str  # "sd15" | "sdxl" | ...
    scaling_factor: float  # from vae.config
    shift_factor: float = 0.0

    def replace(self, **changes: Any) -> VaeHandle:
        return dataclasses.replace(self, **changes)

    def cache_nbytes(self) -> int:
        return _module_nbytes(self.vae)


@dataclass(frozen=True, eq=False)
class ClipHandle:
    """Socket CLIP: the tokenizer(s) and text encoder(s) of a family, in the family's order
    (sd15: (clip_l,), sdxl: (clip_l, clip_g), sdxl_refiner: (clip_g,))."""

    family: str
    tokenizers: tuple
    encoders: tuple  # CLIPTextModel / CLIPTextModelWithProjection, same order as tokenizers
    clip_skip: int = 1  # 1 = last layer (ComfyUI "-1"); 2 = penultimate, ...
    patches: tuple = ()  # LoRA patches, applied only while encoding

    def replace(self, **changes: Any) -> ClipHandle:
        return dataclasses.replace(self, **changes)

    def cache_nbytes(self) -> int:
        # A patched copy shares its encoders with the handle it came from: only the patches are new.
        if self.patches:
            return _patches_nbytes(self.patches)
        return sum(_module_nbytes(e) for e in self.encoders)


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """Socket MODEL: a denoising UNet with what the sampler needs to drive it."""

    unet: UNet2DConditionModel
    family: str
    scheduler_config: dict  # the family's diffusers scheduler config (shipped file)
    prediction_type: str  # "epsilon" | "v_prediction"
    patches: tuple = ()  # LoRA patches
    guidance: tuple = ()  # extra guidance steps after CFG, in order
    # pixels per latent cell of the VAE the model was trained with (its checkpoint's VAE): SDXL's default
    # micro-conditioning sizes are the latent's size times this
    vae_scale_factor: int = 8

    def replace(self, **changes: Any) -> ModelHandle:
        return dataclasses.replace(self, **changes)

    def cache_nbytes(self) -> int:
        if self.patches or self.guidance:
            return _patches_nbytes(self.patches)
        return _module_nbytes(self.unet)

