"""Stable Diffusion 3 / 3.5 behind the sampler's one denoiser interface: the MMDiT sees the latent ``[B, 16, h, w]``,
the timestep (``1000 * sigma``), the joint text embedding (CLIP-L and CLIP-G tokens padded to T5's width, then the T5
tokens) and the pooled CLIP-L + CLIP-G embedding. The schedule is StableDiffusion3Pipeline's: the scheduler's own
spacing with its fixed shift (3.0 for the released models), or a resolution-dependent one for configs that ask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nodes.mmdit.denoising import FlowDenoiser, stack
from nodes.sampling.denoiser import CondBatch
from nodes.sampling.flow_matching import set_flow_timesteps
from nodes.sampling.loop import ConditioningMismatch
from nodes.sd.conditioning import ConditioningEntry


class SD3Denoiser(FlowDenoiser):
    def _check_size(self, latent_hw: tuple[int, int]) -> None:
        patch = self.network.config.patch_size
        if latent_hw[0] % patch or latent_hw[1] % patch:
            raise ConditioningMismatch(
                f"SD3 cuts the latent into {patch}x{patch} patches, so its sides must be multiples of {patch}; found "
                f"{latent_hw[1]}x{latent_hw[0]} cells: use an image size that is a multiple of {8 * patch} pixels",
                "latent_image")

    def set_timesteps(self, scheduler: Any, steps: int, latent_shape: tuple[int, ...], device: Any) -> None:
        self._check_size(latent_shape[-2:])
        patch = self.network.config.patch_size
        tokens = (latent_shape[-2] // patch) * (latent_shape[-1] // patch)
        set_flow_timesteps(scheduler, steps, tokens, device, linear_sigmas=False, max_shift_default=1.16)

    def condition_batch(self, entries: Sequence[ConditioningEntry], batch: int, latent_hw: tuple[int, int],
                        device: Any, dtype: torch.dtype) -> CondBatch:
        self._check_size(latent_hw)
        config = self.network.config
        embeds = stack(entries, "embeds", batch, device, dtype, config.joint_attention_dim, "SD3")
        pooled = stack(entries, "pooled", batch, device, dtype, config.pooled_projection_dim, "SD3")
        return CondBatch(embeds, {"pooled": pooled})

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch) -> torch.Tensor:
        return self.network(
            hidden_states=x,
            timestep=t.expand(x.shape[0]),
            encoder_hidden_states=cond.embeds,
            pooled_projections=cond.added["pooled"],
            return_dict=False,
        )[0]
