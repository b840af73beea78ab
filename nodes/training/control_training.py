"""Training a ControlNet or a T2I-Adapter on a frozen base model (SD1.5 or SDXL).

One step, as diffusers' training scripts take it (the objective is in :mod:`nodes.training.control_loss`):
a batch of (image, condition, caption) examples; latents from the VAE's posterior (sampled afresh each time,
``latent_dist.sample() * scaling_factor``); DDPM noise at random timesteps; captions replaced by the empty
one with probability ``empty_prompt_share`` (the ControlNet paper drops half, so the net learns to read the
condition alone); the trainable model turns the condition into residuals, which the frozen UNet adds through
the sampler's own denoiser (:class:`nodes.sampling.denoiser.UNetDenoiser`, the interface every control model
uses at inference); MSE against the noise (or velocity).

Memory and speed: VAE latents (posterior mean and std) and text embeddings are computed once per example and
kept (``cache_latents``; the VAE and text encoders are frozen, so nothing changes); mixed precision by
autocast in the run's compute dtype with float32 master weights (a gradient scaler for float16);
gradient checkpointing on request; gradient accumulation.

Validation samples run through the product's sampler (:func:`nodes.sampling.loop.sample`) with the model as
trained so far attached as the ordinary ControlNet / adapter residual source, exactly as Apply ControlNet /
Apply T2I-Adapter attach a loaded one.

All randomness (the new model's initialisation, batches, noise, timesteps, dropped captions) comes from the
seed: the same inputs train the same weights.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from nodes.training.control_loss import control_loss, sample_timesteps, target

MAX_GRAD_NORM = 1.0
CACHE_BYTES = 2 * 2**30  # latents kept beyond this are encoded afresh each time instead (a large dataset)
WEIGHT_DECAY = 1e-2
VALIDATION_SCHEDULER = "ddim"


@dataclass(frozen=True)
class ControlSettings:
    kind: str  # "controlnet" | "t2i_adapter"
    learning_rate: float = 1e-5
    steps: int = 1000
    batch_size: int = 4
    gradient_accumulation: int = 1
    resolution: int = 512
    seed: int = 0
    empty_prompt_share: float = 0.5
    gradient_checkpointing: bool = False
    cache_latents: bool = True


@dataclass
class StepReport:
    step: int
    loss: float


class TrainingResiduals:
    """The trainable model as a residual source of the denoiser, with gradients (the inference sources in
    nodes/adapters run without them and cache per generation)."""

    def __init__(self, kind: str, module: Any, pixels: torch.Tensor) -> None:
        self.kind, self.module, self.pixels = kind, module, pixels

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: Any, step: Any) -> Any:
        from nodes.sampling.denoiser import Residuals

        if self.kind == "controlnet":
            down, mid = self.module(x, t, encoder_hidden_states=cond.embeds, controlnet_cond=self.pixels,
                                    added_cond_kwargs=cond.added, return_dict=False)
            return Residuals(down=tuple(d.to(x.dtype) for d in down), mid=mid.to(x.dtype))
        return Residuals(intrablock=tuple(f.to(x.dtype) for f in self.module(self.pixels)))


@dataclass
class _Cached:
    mean: torch.Tensor
    std: torch.Tensor


@dataclass
class ControlTrainer:
    """One training run: call :meth:`step` ``settings.steps`` times (or use :func:`train`), :meth:`validate`
    when wanted, and :meth:`export` for the model as trained so far. Use as a context manager: gradient
    checkpointing of the shared UNet is switched on inside it only."""

    model: Any  # ModelHandle
    clip: Any  # ClipHandle
    vae: Any  # VaeHandle
    control: Any  # the trainable ControlNetModel / T2IAdapter (float32)
    dataset: Any  # a ControlDataset
    settings: ControlSettings
    device: Any = "cpu"
    dtype: torch.dtype = torch.float32
    residency: Any = None
    steps_done: int = 0
    losses: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        from diffusers import DDPMScheduler

        from nodes.sampling.denoiser import UNetDenoiser

        s = self.settings
        self._unet = self.residency.load(self.model.unet) if self.residency is not None else self.model.unet
        self.control.to(self.device)
        weights_dtype = next(self._unet.parameters()).dtype
        # autocast when the compute dtype or the frozen UNet's storage is not float32; master weights stay float32
        self._autocast = self.dtype if self.dtype != torch.float32 else (
            weights_dtype if weights_dtype != torch.float32 else None)
        self._denoiser = UNetDenoiser(self._unet, self.model.prediction_type)
        config = {k: v for k, v in dict(self.model.scheduler_config).items() if not k.startswith("_")}
        config["prediction_type"] = self.model.prediction_type
        self._noise = DDPMScheduler.from_config(config)
        self._params = [p for p in self.control.parameters() if p.requires_grad]
        self._optimizer = torch.optim.AdamW(self._params, lr=s.learning_rate, weight_decay=WEIGHT_DECAY)
        use_scaler = self._autocast == torch.float16 and torch.device(self.device).type == "cuda"
        self._scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self._generator = torch.Generator("cpu").manual_seed(s.seed)
        self._order: list[int] = []
        self._latents: dict[int, _Cached] = {}
        self._texts: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._cached_bytes = 0
        self.cache_full = False  # set once the latent cache reached CACHE_BYTES
        self._stack: contextlib.ExitStack | None = None

    def __enter__(self) -> ControlTrainer:
        self._stack = contextlib.ExitStack()
        if self.settings.gradient_checkpointing:
            unet = self._unet
            was = bool(getattr(unet, "is_gradient_checkpointing", False))
            unet.enable_gradient_checkpointing()
            if not was:
                self._stack.callback(unet.disable_gradient_checkpointing)
            if getattr(self.control, "_supports_gradient_checkpointing", False):
                self.control.enable_gradient_checkpointing()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    # -- data

    def _next_indices(self) -> list[int]:
        """The next batch of example indices: epochs in a seeded random order, as a shuffling data loader."""
        batch = []
        while len(batch) < self.settings.batch_size:
            if not self._order:
                self._order = torch.randperm(len(self.dataset), generator=self._generator).tolist()
            batch.append(self._order.pop(0))
        return batch

    @torch.no_grad()
    def _posterior(self, images: torch.Tensor) -> _Cached:
        from nodes.latent.codec import compute_module

        module = compute_module(self.vae.vae)
        if self.residency is not None:
            self.residency.load(self.vae.vae)
        param = next(module.parameters())
        dist = module.encode(images.to(param.device, param.dtype)).latent_dist
        return _Cached(dist.mean.float().cpu(), dist.std.float().cpu())

    def _text(self, caption: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        from nodes.training.dreambooth import encode_frozen

        cached = self._texts.get(caption)
        if cached is None:
            embeds, pooled = encode_frozen(self.clip, caption, "cpu", self.residency)
            cached = (embeds[:, :77].float().cpu(), pooled.float().cpu() if pooled is not None else None)
            if self.settings.cache_latents:
                self._texts[caption] = cached
        return cached

    def _batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(scaled latents sampled from each posterior, condition pixels, captions after dropout)."""
        from nodes.latent.codec import scale_latents

        res = self.settings.resolution
        conditions, posteriors, fresh, captions = [], {}, [], []
        for i in indices:
            image, condition = self.dataset.pixels(i, res)
            conditions.append(condition)
            if i in self._latents:
                posteriors[i] = self._latents[i]
            else:
                fresh.append((i, image))
        if fresh:
            encoded = self._posterior(torch.stack([img for _, img in fresh]))
            for k, (i, _) in enumerate(fresh):
                posteriors[i] = _Cached(encoded.mean[k : k + 1].clone(), encoded.std[k : k + 1].clone())
                size = 2 * posteriors[i].mean.numel() * 4
                if self.settings.cache_latents and self._cached_bytes + size <= CACHE_BYTES:
                    self._latents[i] = posteriors[i]
                    self._cached_bytes += size
                elif self.settings.cache_latents:
                    self.cache_full = True
        means = torch.cat([posteriors[i].mean for i in indices])
        stds = torch.cat([posteriors[i].std for i in indices])
        z = means + stds * torch.randn(means.shape, generator=self._generator)
        latents = scale_latents(self.vae.vae, z, self.vae.scaling_factor, getattr(self.vae, "shift_factor", 0.0))
        drop = torch.rand(len(indices), generator=self._generator) < self.settings.empty_prompt_share
        for i, dropped in zip(indices, drop.tolist()):
            captions.append("" if dropped else self.dataset.caption(i))
        return latents, torch.stack(conditions), captions

    def _conditioning(self, captions: list[str], latent_hw: tuple[int, int]) -> Any:
        """One CondBatch for rows with different captions (SDXL's pooled embedding and size ids included)."""
        from nodes.sampling.denoiser import CondBatch
        from nodes.sampling.loop import condition_batch
        from nodes.sd.conditioning import ConditioningEntry

        rows = []
        for caption in captions:
            embeds, pooled = self._text(caption)
            entry = ConditioningEntry(embeds=embeds, pooled=pooled)
            rows.append(condition_batch([entry], self._denoiser, 1, latent_hw, self.device, torch.float32))
        added = None
        if rows[0].added is not None:
            added = {k: torch.cat([r.added[k] for r in rows]) for k in rows[0].added}
        return CondBatch(torch.cat([r.embeds for r in rows]), added)

    # -- one optimisation step

    def loss_on(self, latents: torch.Tensor, conditions: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """The training loss of one micro-batch (noise and timesteps from the trainer's generator)."""
        from nodes.sampling.denoiser import CondBatch, StepInfo

        s = self.settings
        latents = latents.to(self.device)
        noise = torch.randn(latents.shape, generator=self._generator).to(self.device)
        timesteps = sample_timesteps(s.kind, latents.shape[0], self._noise.config.num_train_timesteps,
                                     self._generator).to(self.device)
        noisy = self._noise.add_noise(latents, noise, timesteps)
        cond = self._conditioning(captions, tuple(latents.shape[-2:]))
        source = TrainingResiduals(s.kind, self.control, conditions.to(self.device))
        batch = CondBatch(cond.embeds, cond.added, (source,))
        autocast = (torch.autocast(torch.device(self.device).type, dtype=self._autocast)
                    if self._autocast is not None else contextlib.nullcontext())
        with autocast:
            pred = self._denoiser(noisy, timesteps, batch, StepInfo(self.steps_done, s.steps))
        return control_loss(pred, target(self._noise, latents, noise, timesteps, self.model.prediction_type))

    def step(self) -> StepReport:
        s = self.settings
        self.control.train()
        self._optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(s.gradient_accumulation):
            latents, conditions, captions = self._batch(self._next_indices())
            loss = self.loss_on(latents, conditions, captions) / s.gradient_accumulation
            if self._scaler is not None:
                self._scaler.scale(loss).backward()
            else:
                loss.backward()
            total += float(loss.detach())
        if self._scaler is not None:
            self._scaler.unscale_(self._optimizer)
        torch.nn.utils.clip_grad_norm_(self._params, MAX_GRAD_NORM)
        if self._scaler is not None:
            self._scaler.step(self._optimizer)
            self._scaler.update()
        else:
            self._optimizer.step()
        self.steps_done += 1
        self.losses.append(total)
        return StepReport(self.steps_done, total)

    # -- validation and result

    def export(self) -> Any:
        """The model as trained so far: a detached float32 copy on the CPU, eval mode, no gradients."""
        module = copy.deepcopy(self.control).cpu().float().eval()  # (.to(dtype) makes diffusers log a warning)
        if hasattr(module, "disable_gradient_checkpointing") and getattr(module, "_supports_gradient_checkpointing", False):
            module.disable_gradient_checkpointing()
        return module.requires_grad_(False)

    def validate(self, prompts: list[str], conditions: torch.Tensor, *, seed: int, steps: int, cfg: float,
                 negative: str = "") -> torch.Tensor:
        """Sample one image per (prompt, condition IMAGE row) through the product's sampler with the model
        as trained so far; returns IMAGE [N, R, R, 3]."""
        from nodes.adapters.controlnet import ControlNetHandle, ControlNetSource
        from nodes.adapters.t2i_adapter import AdapterHandle, AdapterSource
        from nodes.latent.codec import decode, spatial_factor
        from nodes.sampling.denoiser import UNetDenoiser
        from nodes.sampling.guidance import build_chain
        from nodes.sampling.loop import StepRange, sample
        from nodes.sampling.schedulers import make_scheduler
        from nodes.sd.text_encode import encode_entry

        was_training = self.control.training
        self.control.eval()
        try:
            family = self.model.family
            name = "(training)"
            side = self.settings.resolution // spatial_factor(self.vae.vae)
            denoiser = UNetDenoiser(self._unet, self.model.prediction_type,
                                    autocast=self._autocast if self._autocast != torch.float32 else None)
            texts = len(self.clip.encoders)
            neg = encode_entry(self.clip, (negative,) * texts, self.device, residency=self.residency)
            out = []
            for k, prompt in enumerate(prompts):
                image = conditions[k : k + 1]
                if self.settings.kind == "controlnet":
                    source: Any = ControlNetSource(ControlNetHandle(self.control, family, name), image)
                else:
                    source = AdapterSource(AdapterHandle(self.control, family, name), image)
                pos = encode_entry(self.clip, (prompt,) * texts, self.device, residency=self.residency)
                pos, negk = pos.with_extras(residuals=(source,)), neg.with_extras(residuals=(source,))
                scheduler = make_scheduler(VALIDATION_SCHEDULER, self.model.scheduler_config, self.model.prediction_type)
                latent = torch.zeros(1, self._unet.config.in_channels, side, side)
                result = sample(denoiser, scheduler, latent, [pos], [negk], seed=seed + k, span=StepRange.of(steps),
                                chain=build_chain(cfg), cfg_scale=cfg, device=self.device,
                                dtype=self._autocast or torch.float32)
                if self.residency is not None:
                    self.residency.load(self.vae.vae)
                out.append(decode(self.vae.vae, result, self.vae.scaling_factor, getattr(self.vae, "shift_factor", 0.0)))
            return torch.cat(out)
        finally:
            self.control.train(was_training)


def train(trainer: ControlTrainer, on_step: Callable[[StepReport], None] | None = None) -> Any:
    """Run all steps (``on_step`` after each; it may raise to stop) and export the result."""
    with trainer:
        while trainer.steps_done < trainer.settings.steps:
            report = trainer.step()
            if on_step is not None:
                on_step(report)
        return trainer.export()
