"""ComfyUI's KSampler, step for step: sigmas, noise, the denoiser it calls, and the guidance chain.

The sampler functions (:mod:`nodes.sampling.k_samplers`) call :class:`ComfyDenoiser` as
``model(x, sigma) -> denoised`` in k-diffusion's variance-exploding form (``x = x0 + sigma * noise``).
For each call it does what ComfyUI does: feed the UNet ``x / sqrt(sigma^2 + 1)`` at the timestep of the
nearest table sigma (an integer), turn its noise prediction into ``denoised = x - sigma * eps``, and combine
the conditional and unconditional ``denoised`` by classifier-free guidance (the product's guidance chain,
run on x0 predictions, so CFG is ComfyUI's ``uncond + (cond - uncond) * cfg`` and the MODEL's extra guidance
links still apply). A latent with a ``noise_mask`` is inpainted as ComfyUI's ``KSamplerX0Inpaint`` does it:
outside the mask the latent is held at the input image noised to the current sigma.

Latents stay in the product's convention (already multiplied by the VAE's scaling factor), which is the
space ComfyUI's sampler works in after its ``process_latent_in``: the arithmetic is the same.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nodes.comfy.controlnet import SigmaStep
from nodes.comfy.samplers import SamplerChoice, run_sampler
from nodes.sampling.denoiser import CondBatch
from nodes.sampling.guidance import GuidanceState, run_chain
from nodes.sampling.loop import ConditioningMismatch, condition_batch
from nodes.sampling.noise import initial_noise
from nodes.sampling.sigmas import DiscreteSigmas, sampling_sigmas, step_range


@dataclass(frozen=True)
class KSamplerSettings:
    """What a KSampler / KSamplerAdvanced node asks for (ComfyUI's ``common_ksampler`` arguments)."""

    seed: int
    steps: int
    cfg: float
    sampler: SamplerChoice
    scheduler: str
    denoise: float = 1.0
    disable_noise: bool = False
    start_step: int | None = None
    last_step: int | None = None
    force_full_denoise: bool = False


def _batches(rows: Sequence[tuple[Any, str]]) -> list[list[tuple[Any, str]]]:
    """Consecutive conditioning entries that can share one UNet call (same length, same control hooks)."""
    def key(entry: Any) -> tuple:
        return (entry.embeds.shape[1], tuple(id(s) for s in entry.extras.get("residuals", ())), entry.pooled is None)

    groups: list[list[tuple[Any, str]]] = []
    for row in rows:
        if groups and key(groups[-1][0][0]) == key(row[0]):
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def _weighted(preds: list[tuple[torch.Tensor, float]]) -> torch.Tensor | None:
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0][0]
    return sum(p * w for p, w in preds) / sum(w for _, w in preds)


def reshape_mask(mask: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A noise mask resized (bilinear) to the latent ``shape`` [B, C, h, w], as ComfyUI's ``reshape_mask``."""
    mask = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).float()
    mask = torch.nn.functional.interpolate(mask, size=tuple(shape[2:]), mode="bilinear")
    if mask.shape[1] < shape[1]:
        mask = mask.repeat((1, shape[1], 1, 1))[:, : shape[1]]
    if mask.shape[0] < shape[0]:
        mask = mask.repeat([math.ceil(shape[0] / mask.shape[0]), 1, 1, 1])[: shape[0]]
    return mask[: shape[0]]


class ComfyDenoiser:
    """``model(x, sigma) -> denoised`` for the k-samplers, with ComfyUI's model call, CFG and inpainting."""

    def __init__(self, denoiser: Any, levels: DiscreteSigmas, positive: Sequence[Any], negative: Sequence[Any],
                 cfg: float, chain: Sequence[Any], sigmas: torch.Tensor, latent_shape: Sequence[int],
                 device: Any, dtype: torch.dtype, always_uncond: bool = False) -> None:
        self.denoiser = denoiser
        self.levels = levels
        self.cfg = cfg
        self.chain = chain
        self.sigmas = sigmas
        self.use_uncond = always_uncond or not math.isclose(cfg, 1.0)
        if self.use_uncond and not negative:
            raise ConditioningMismatch("the negative conditioning is empty (CFG needs one; use cfg 1 to skip it)",
                                       "negative")
        rows = [(e, "positive") for e in positive] + ([(e, "negative") for e in negative] if self.use_uncond else [])
        batch, hw = int(latent_shape[0]), (int(latent_shape[-2]), int(latent_shape[-1]))
        self.batch = batch
        self.groups = [(g, condition_batch([e for e, _ in g], denoiser, batch, hw, device, dtype)) for g in _batches(rows)]
        self.dtype = dtype
        self.mask: torch.Tensor | None = None
        self.latent_image: torch.Tensor | None = None
        self.inpaint_noise: torch.Tensor | None = None
        self.last_uncond: torch.Tensor | None = None
        self.calls = 0

    def add_concat(self, concat: torch.Tensor) -> None:
        """Channels appended to the model's input (an inpainting UNet's mask and masked image), carried on the
        conditioning batch so that ControlNets still see the plain latent."""
        if "concat" not in {f.name for f in dataclasses.fields(CondBatch)}:
            raise ConditioningMismatch("inpainting models (9 input channels) need this product's inpainting "
                                       "support, which is not installed", "model")
        self.groups = [(g, dataclasses.replace(c, concat=torch.cat([concat] * len(g)))) for g, c in self.groups]

    def _step_index(self, sigma: torch.Tensor) -> int:
        return max(0, int((self.sigmas >= float(sigma.reshape(-1)[0])).sum()) - 1)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        latent_mask = None
        if self.mask is not None:
            latent_mask = 1.0 - self.mask
            noised = self.latent_image + self.inpaint_noise * sigma.reshape([sigma.shape[0]] + [1] * (x.ndim - 1))
            x = x * self.mask + noised * latent_mask
        x_in = self.levels.model_input(x, sigma)
        t = self.levels.timestep(sigma).float()
        total = len(self.sigmas) - 1
        info = SigmaStep(self._step_index(sigma), total, t[0], sigma=float(sigma.reshape(-1)[0]))
        preds: dict[str, list[tuple[torch.Tensor, float]]] = {"positive": [], "negative": []}
        for group, cond in self.groups:
            n = len(group)
            out = self.denoiser((torch.cat([x_in] * n) if n > 1 else x_in).to(self.dtype),
                                torch.cat([t] * n) if n > 1 else t, cond, info).float()
            denoised = self.levels.denoised(torch.cat([x] * n) if n > 1 else x, out, torch.cat([sigma] * n) if n > 1 else sigma)
            for k, (entry, role) in enumerate(group):
                preds[role].append((denoised[k * self.batch : (k + 1) * self.batch], float(entry.extras.get("strength", 1.0))))
        self.calls += 1
        cond, uncond = _weighted(preds["positive"]), _weighted(preds["negative"])
        self.last_uncond = uncond
        state = GuidanceState(
            cond=cond, uncond=uncond, guided=cond, x=x_in, timestep=t[0],
            alpha_prod=(1.0 / (1.0 + sigma[0].float() ** 2)), prediction_type="sample", cfg_scale=self.cfg,
            step=info.index, total_steps=total,
        )
        guided = run_chain(self.chain, state) if uncond is not None or len(self.chain) > 1 else cond
        if latent_mask is not None:
            guided = guided * self.mask + self.latent_image * latent_mask
        return guided


def ksampler_sigmas(levels: DiscreteSigmas, settings: KSamplerSettings) -> torch.Tensor | None:
    """The sigmas this run steps through (None: nothing to run, the latent passes through)."""
    sigmas = sampling_sigmas(levels, settings.scheduler, settings.steps, settings.sampler.name, settings.denoise)
    if settings.start_step is None and settings.last_step is None:
        return sigmas if len(sigmas) else None
    return step_range(sigmas, settings.start_step, settings.last_step, settings.force_full_denoise)


def max_denoise(levels: DiscreteSigmas, sigmas: torch.Tensor) -> bool:
    """ComfyUI starts from pure noise (noise scaled by sqrt(1 + sigma^2)) when sigma_0 is the largest sigma."""
    sigma_max, first = float(levels.sigma_max), float(sigmas[0])
    return math.isclose(sigma_max, first, rel_tol=1e-05) or first > sigma_max


def comfy_sample(model: ComfyDenoiser, levels: DiscreteSigmas, latent: dict, settings: KSamplerSettings,
                 sigmas: torch.Tensor, device: Any, on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Sample ``latent`` (a LATENT dict) along ``sigmas``; returns the result as float32 on the CPU."""
    samples = latent["samples"].to(torch.float32)
    if settings.disable_noise:
        noise = torch.zeros(samples.shape, dtype=torch.float32)
    else:
        noise = initial_noise(samples.shape, settings.seed, latent.get("batch_index"))
    latent_image = samples.to(device)
    noise = noise.to(device)
    sigmas = sigmas.to(device)
    if "noise_mask" in latent and latent["noise_mask"] is not None:
        model.mask = reshape_mask(latent["noise_mask"], samples.shape).to(device)
        model.latent_image = latent_image
        if settings.sampler.inpaint_random_noise:
            generator = torch.Generator("cpu").manual_seed(int(settings.seed) + 1)
            model.inpaint_noise = torch.randn(noise.shape, generator=generator, device="cpu").to(device)
        else:
            model.inpaint_noise = noise
    x = levels.noise_scaling(sigmas[0].reshape(1), noise, latent_image, max_denoise(levels, sigmas))
    total = len(sigmas) - 1
    # a step callback taking a third argument also gets the current estimate of the clean latent (previews)
    wants_denoised = on_step is not None and len(inspect.signature(on_step).parameters) >= 3

    def callback(i: int, x_now: torch.Tensor, denoised: torch.Tensor) -> None:
        if wants_denoised:
            on_step(i + 1, total, lambda: denoised)
        elif on_step is not None:
            on_step(i + 1, total)

    with torch.inference_mode():
        result = run_sampler(settings.sampler, model, x, sigmas, settings.seed, callback)
    return result.to("cpu", torch.float32)
