"""Denoisers of the DiT and IF families behind the sampler's one interface (nodes.sampling.denoiser).

Each builds its own :class:`CondBatch` from conditioning entries (``condition_batch``, which the sampling loop
uses when a denoiser offers it), so what a family needs besides the text embeddings travels in
``CondBatch.added``: T5 attention masks, PixArt's resolution and aspect ratio, Hunyuan's mT5 embeddings,
image meta sizes and style. Models that learn their variance (PixArt, Hunyuan, IF) return it as extra output
channels and say so with ``learned_variance``: the loop guides the mean part only and hands the conditional
variance to schedulers configured for learned variance (IF's DDPM ``learned_range``), as diffusers' pipelines do.

An IF stage II denoiser carries the low-resolution image: ``prepare`` upsamples and noises it (noise
conditioning augmentation, drawn from the run's generator right after the start noise, as
IFSuperResolutionPipeline draws it) and every call concatenates it to the sample and passes the noise level
as the UNet's class label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nodes.sampling.denoiser import CondBatch, StepInfo
from nodes.sampling.loop import ConditioningMismatch
from nodes.sd.conditioning import ConditioningEntry


def _rows(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """``tensor`` with its first dimension repeated to ``batch`` rows (one prompt for a batch of images)."""
    if tensor.shape[0] == batch:
        return tensor
    return tensor[:1].repeat(batch, *([1] * (tensor.ndim - 1)))


def _stack(entries: Sequence[ConditioningEntry], key: str, batch: int, device: Any, dtype: Any = None) -> torch.Tensor:
    parts = []
    for entry in entries:
        value = entry.embeds if key == "embeds" else entry.extras.get(key)
        if value is None:
            raise ConditioningMismatch(f"the conditioning lacks '{key}': encode the prompt with this model family's "
                                       "text encode node")
        parts.append(_rows(value, batch).to(device=device, dtype=dtype or value.dtype))
    return torch.cat(parts)


def _check_width(entries: Sequence[ConditioningEntry], width: int, what: str) -> None:
    for entry in entries:
        if entry.embeds.shape[-1] != width:
            raise ConditioningMismatch(
                f"the model expects {what} {width} wide, the conditioning is {entry.embeds.shape[-1]} wide: was the "
                "prompt encoded with the text encoder of another model?"
            )


class _Base:
    """Shared parts: the network, its prediction type, optional autocast, learned variance flag."""

    def __init__(self, network: Any, prediction_type: str, autocast: torch.dtype | None) -> None:
        self.network = network
        self.prediction_type = prediction_type
        self.autocast = autocast

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> torch.Tensor:
        if self.autocast is not None:
            with torch.autocast(x.device.type, dtype=self.autocast):
                return self._forward(x, t, cond).to(x.dtype)
        return self._forward(x, t, cond)

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch) -> torch.Tensor:
        raise NotImplementedError


class PixArtDenoiser(_Base):
    """PixArtTransformer2DModel: T5 embeddings with their attention mask; the 1024-px models (adaLN-single with
    additional conditions) also get the image's resolution and aspect ratio in pixels."""

    def __init__(self, transformer: Any, prediction_type: str, pixels_per_cell: int, autocast: torch.dtype | None = None) -> None:
        super().__init__(transformer, prediction_type, autocast)
        self.pixels_per_cell = pixels_per_cell
        self.learned_variance = transformer.config.out_channels == 2 * transformer.config.in_channels

    def condition_batch(self, entries: Sequence[ConditioningEntry], batch: int, latent_hw: tuple[int, int],
                        device: Any, dtype: torch.dtype) -> CondBatch:
        _check_width(entries, self.network.config.caption_channels, "T5 embeddings")
        rows = batch * len(entries)
        added: dict[str, Any] = {"mask": _stack(entries, "attention_mask", batch, device)}
        if self.network.use_additional_conditions:
            height, width = (side * self.pixels_per_cell for side in latent_hw)
            added["resolution"] = torch.tensor([height, width]).repeat(rows, 1).to(device=device, dtype=dtype)
            added["aspect_ratio"] = torch.tensor([float(height / width)]).repeat(rows, 1).to(device=device, dtype=dtype)
        return CondBatch(_stack(entries, "embeds", batch, device, dtype), added)

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch) -> torch.Tensor:
        added = cond.added or {}
        timestep = t.reshape(1).to(x.device).expand(x.shape[0]) if torch.is_tensor(t) else torch.full((x.shape[0],), t)
        return self.network(
            x,
            encoder_hidden_states=cond.embeds,
            encoder_attention_mask=added.get("mask"),
            timestep=timestep,
            added_cond_kwargs={"resolution": added.get("resolution"), "aspect_ratio": added.get("aspect_ratio")},
            return_dict=False,
        )[0]


class HunyuanDenoiser(_Base):
    """HunyuanDiT2DModel: the CLIP-style (BERT) and mT5 embeddings with their masks, image meta sizes
    (original, target, crop, in pixels), style 0, and 2-D rotary position embeddings for the latent's grid."""

    def __init__(self, transformer: Any, prediction_type: str, pixels_per_cell: int, autocast: torch.dtype | None = None) -> None:
        super().__init__(transformer, prediction_type, autocast)
        self.pixels_per_cell = pixels_per_cell
        self.learned_variance = transformer.out_channels == 2 * transformer.config.in_channels

    def condition_batch(self, entries: Sequence[ConditioningEntry], batch: int, latent_hw: tuple[int, int],
                        device: Any, dtype: torch.dtype) -> CondBatch:
        from diffusers.models.embeddings import get_2d_rotary_pos_embed
        from diffusers.pipelines.hunyuandit.pipeline_hunyuandit import get_resize_crop_region_for_grid

        config = self.network.config
        _check_width(entries, config.cross_attention_dim, "CLIP (BERT) embeddings")
        pixel = tuple(side * self.pixels_per_cell for side in latent_hw)
        meta = []
        for entry in entries:
            original = tuple(entry.extras.get("original_size") or (1024, 1024))
            target = tuple(v or p for v, p in zip(entry.extras.get("target_size") or (0, 0), pixel))
            crop = tuple(entry.extras.get("crop_top_left") or (0, 0))
            meta.append(torch.tensor([list(original + target + crop)], dtype=dtype).repeat(batch, 1))
        grid = (latent_hw[0] // config.patch_size, latent_hw[1] // config.patch_size)
        base_size = 512 // 8 // config.patch_size  # the pipeline's constant: the grid of a 512-px image
        rotary = get_2d_rotary_pos_embed(
            self.network.inner_dim // self.network.num_heads, get_resize_crop_region_for_grid(grid, base_size), grid,
            device=device, output_type="pt",
        )
        embeds_t5 = _stack(entries, "embeds_t5", batch, device, dtype)
        if embeds_t5.shape[-1] != config.cross_attention_dim_t5:
            raise ConditioningMismatch(f"the model expects mT5 embeddings {config.cross_attention_dim_t5} wide, the "
                                       f"conditioning's are {embeds_t5.shape[-1]} wide")
        added = {
            "mask": _stack(entries, "attention_mask", batch, device),
            "embeds_t5": embeds_t5,
            "mask_t5": _stack(entries, "attention_mask_t5", batch, device),
            "image_meta_size": torch.cat(meta).to(device),
            "style": torch.zeros(batch * len(entries), dtype=torch.long, device=device),
            "rotary": rotary,
        }
        return CondBatch(_stack(entries, "embeds", batch, device, dtype), added)

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch) -> torch.Tensor:
        added = cond.added or {}
        timestep = torch.tensor([t] * x.shape[0], device=x.device).to(dtype=x.dtype)
        out = self.network(
            x,
            timestep,
            encoder_hidden_states=cond.embeds,
            text_embedding_mask=added["mask"],
            encoder_hidden_states_t5=added["embeds_t5"],
            text_embedding_mask_t5=added["mask_t5"],
            image_meta_size=added["image_meta_size"],
            style=added["style"],
            image_rotary_emb=added["rotary"],
            return_dict=False,
        )[0]
        return out


class IFDenoiser(_Base):
    """A DeepFloyd IF UNet in pixel space. Stage I sees the sample; stage II (``low_res`` given) sees the sample
    concatenated with the noised, upsampled low-resolution image and gets the augmentation level as class label."""

    def __init__(self, unet: Any, prediction_type: str, autocast: torch.dtype | None = None, *, low_res: Any = None,
                 noise_level: int = 0, noise_scheduler_config: dict | None = None) -> None:
        super().__init__(unet, prediction_type, autocast)
        self.low_res = low_res
        self.noise_level = int(noise_level)
        self.noise_scheduler_config = noise_scheduler_config
        channels = unet.config.in_channels // 2 if low_res is not None else unet.config.in_channels
        self.learned_variance = unet.config.out_channels == 2 * channels
        self._upscaled: torch.Tensor | None = None

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """Upsample the low-resolution image to the sample's size and noise it to ``noise_level`` with the run's
        generator (IFSuperResolutionPipeline: bilinear with aligned corners, then the image noising scheduler)."""
        if self.low_res is None:
            return
        import torch.nn.functional as F
        from diffusers import DDPMScheduler
        from diffusers.utils.torch_utils import randn_tensor

        image = _rows(self.low_res, x.shape[0]).to(device=x.device, dtype=x.dtype)
        upscaled = F.interpolate(image, tuple(x.shape[-2:]), mode="bilinear", align_corners=True)
        levels = torch.tensor([self.noise_level] * upscaled.shape[0], device=upscaled.device)
        noise = randn_tensor(tuple(upscaled.shape), generator=generator, device=upscaled.device, dtype=upscaled.dtype)
        noising = DDPMScheduler.from_config(self.noise_scheduler_config or {})
        self._upscaled = noising.add_noise(upscaled, noise, timesteps=levels)

    def condition_batch(self, entries: Sequence[ConditioningEntry], batch: int, latent_hw: tuple[int, int],
                        device: Any, dtype: torch.dtype) -> CondBatch:
        config = self.network.config
        width = config.encoder_hid_dim or config.cross_attention_dim
        _check_width(entries, width, "T5 embeddings")
        return CondBatch(_stack(entries, "embeds", batch, device, dtype))

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch) -> torch.Tensor:
        class_labels = None
        if self.low_res is not None:
            if self._upscaled is None:
                raise RuntimeError("IFDenoiser.prepare was not called before sampling a stage II model")
            # one copy per conditioning entry sharing this call (rows = sample batch x entries)
            x = torch.cat([x, self._upscaled.repeat(x.shape[0] // self._upscaled.shape[0], 1, 1, 1)], dim=1)
            class_labels = torch.tensor([self.noise_level] * x.shape[0], device=x.device)
        return self.network(x, t, encoder_hidden_states=cond.embeds, class_labels=class_labels, return_dict=False)[0]


class UpscalerDenoiser(_Base):
    """The SD x4 upscaler's UNet (latent space): the low-resolution image, noised to ``noise_level`` once per run,
    is concatenated to the scaled latents at the latents' own size, and the level is the UNet's class label.
    StableDiffusionUpscalePipeline draws that noise before the start noise (``prepare_draws_first``)."""

    prepare_draws_first = True

    def __init__(self, unet: Any, prediction_type: str, autocast: torch.dtype | None = None, *, low_res: Any,
                 noise_level: int, noise_scheduler_config: dict | None) -> None:
        super().__init__(unet, prediction_type, autocast)
        self.low_res = low_res
        self.noise_level = int(noise_level)
        self.noise_scheduler_config = noise_scheduler_config
        self._noised: torch.Tensor | None = None

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> None:
        from diffusers import DDPMScheduler
        from diffusers.utils.torch_utils import randn_tensor

        if tuple(self.low_res.shape[-2:]) != tuple(x.shape[-2:]):
            raise ConditioningMismatch(
                f"the SD x4 upscaler's latent ({x.shape[-1]}x{x.shape[-2]}) must have the low-resolution image's size "
                f"({self.low_res.shape[-1]}x{self.low_res.shape[-2]}): use the latent from SD x4 Upscale", "latent_image")
        image = self.low_res.to(device=x.device, dtype=x.dtype)
        noise = randn_tensor(tuple(image.shape), generator=generator, device=x.device, dtype=x.dtype)
        level = torch.tensor([self.noise_level], dtype=torch.long, device=x.device)
        self._noised = DDPMScheduler.from_config(self.noise_scheduler_config or {}).add_noise(image, noise, level)

    def condition_batch(self, entries: Sequence[ConditioningEntry], batch: int, latent_hw: tuple[int, int],
                        device: Any, dtype: torch.dtype) -> CondBatch:
        _check_width(entries, self.network.config.cross_attention_dim, "CLIP embeddings")
        return CondBatch(_stack(entries, "embeds", batch, device, dtype))

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch) -> torch.Tensor:
        if self._noised is None:
            raise RuntimeError("UpscalerDenoiser.prepare was not called before sampling")
        image = self._noised.repeat(x.shape[0] // self._noised.shape[0], 1, 1, 1)
        labels = torch.tensor([self.noise_level] * x.shape[0], dtype=torch.long, device=x.device)
        return self.network(torch.cat([x, image], dim=1), t, encoder_hidden_states=cond.embeds, class_labels=labels,
                            return_dict=False)[0]
