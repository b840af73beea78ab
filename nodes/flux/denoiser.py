"""FLUX.1 behind the sampler's one denoiser interface.

The sampler keeps FLUX latents as images are kept everywhere else, ``[B, 16, h, w]`` (so VAE, latent and preview
nodes work unchanged); the denoiser packs each 2x2 patch into one token of 64 channels for the transformer and
unpacks its output (diffusers' own ``FluxPipeline._pack_latents`` / ``_unpack_latents``, a pure permutation, so the
numbers are FluxPipeline's). Position ids: zeros for the text tokens, (0, row, column) for the image tokens.
Distilled guidance ([dev]) comes with each conditioning entry; [schnell] has no guidance embedding and ignores it.
The schedule is FluxPipeline's: sigmas ``linspace(1, 1/steps, steps)``, shifted by ``mu`` from the token count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nodes.mmdit.denoising import FlowDenoiser, rows, stack
from nodes.sampling.denoiser import CondBatch
from nodes.sampling.flow_matching import set_flow_timesteps
from nodes.sampling.loop import ConditioningMismatch
from nodes.sd.conditioning import ConditioningEntry

DEFAULT_GUIDANCE = 3.5  # FluxPipeline's guidance_scale default


def check_even(latent_hw: tuple[int, int]) -> None:
    height, width = latent_hw
    if height % 2 or width % 2:
        raise ConditioningMismatch(
            f"FLUX packs 2x2 latent cells into one token, so the latent's sides must be even; found {width}x{height} "
            f"cells ({width * 8}x{height * 8} pixels): use a size that is a multiple of 16 pixels", "latent_image")


class FluxDenoiser(FlowDenoiser):
    def set_timesteps(self, scheduler: Any, steps: int, latent_shape: tuple[int, ...], device: Any) -> None:
        check_even(latent_shape[-2:])
        tokens = (latent_shape[-2] // 2) * (latent_shape[-1] // 2)
        set_flow_timesteps(scheduler, steps, tokens, device, linear_sigmas=True, max_shift_default=1.15)

    def condition_batch(self, entries: Sequence[ConditioningEntry], batch: int, latent_hw: tuple[int, int],
                        device: Any, dtype: torch.dtype) -> CondBatch:
        from diffusers import FluxPipeline

        check_even(latent_hw)
        config = self.network.config
        embeds = stack(entries, "embeds", batch, device, dtype, config.joint_attention_dim, "FLUX")
        added: dict[str, Any] = {
            "pooled": stack(entries, "pooled", batch, device, dtype, config.pooled_projection_dim, "FLUX"),
            "txt_ids": torch.zeros(embeds.shape[1], 3).to(device=device, dtype=dtype),
            "img_ids": FluxPipeline._prepare_latent_image_ids(batch, latent_hw[0] // 2, latent_hw[1] // 2, device, dtype),
            "guidance": None,
        }
        if config.guidance_embeds:  # [dev]: float32 as FluxPipeline builds it
            values = [float(entry.extras.get("guidance", DEFAULT_GUIDANCE)) for entry in entries]
            added["guidance"] = torch.cat([rows(torch.full([1], v, dtype=torch.float32), batch) for v in values]).to(device)
        return CondBatch(embeds, added)

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch) -> torch.Tensor:
        from diffusers import FluxPipeline

        batch, channels, height, width = x.shape
        added = cond.added
        packed = FluxPipeline._pack_latents(x, batch, channels, height, width)
        timestep = t.expand(batch).to(x.dtype)
        out = self.network(
            hidden_states=packed,
            timestep=timestep / 1000,
            guidance=added["guidance"],
            pooled_projections=added["pooled"],
            encoder_hidden_states=cond.embeds,
            txt_ids=added["txt_ids"],
            img_ids=added["img_ids"],
            return_dict=False,
        )[0]
        # _unpack_latents takes the image size in pixels and the VAE factor: give it the latent's own size, factor 1/2
        return FluxPipeline._unpack_latents(out, height * 8, width * 8, 8)
