"""Dynamic thresholding as links of the guidance chain (see :mod:`nodes.sampling.guidance`).

Both links work on the predicted clean sample x0 (:meth:`GuidanceState.to_x0` / :meth:`~GuidanceState.from_x0`)
of the prediction guided so far (``state.guided``), so they compose with CFG, guidance rescale and each other.

- :class:`ImagenThreshold` (Saharia et al. 2022, "Photorealistic Text-to-Image Diffusion Models with Deep
  Language Understanding", section 2.3): per sample, ``s = max(1, quantile(|x0|, p))``; x0 is clipped to
  ``[-s, s]`` and divided by ``s``. Exact for pixel-space models whose data lives in [-1, 1].
- :class:`MimicThreshold`: the latent-space variant (the community "dynamic thresholding / mimic CFG"
  method). Latents are unbounded and their channels differ in scale, so the bound is relative: per sample
  and channel, the guided x0 is mean-centred, clipped at the ``percentile`` of its absolute deviation (or
  at the mimic's own maximum when that is larger), and rescaled so that its largest deviation equals that
  of the x0 a lower "mimic" CFG scale would give; the guided channel mean is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nodes.sampling.guidance import GuidanceState

SCHEDULES = ("constant", "linear_down", "cosine_down", "linear_up", "cosine_up")


def scheduled(value: float, minimum: float, schedule: str, step: int, total_steps: int) -> float:
    """``value`` over the run: constant, or moving between ``value`` and ``minimum`` ("down": value at the
    first step to minimum at the last; "up": the reverse), linearly or along a half cosine."""
    if schedule == "constant" or total_steps <= 1:
        return value
    progress = step / (total_steps - 1)
    if schedule.startswith("cosine"):
        progress = 0.5 * (1.0 - math.cos(math.pi * progress))
    if schedule.endswith("_up"):
        progress = 1.0 - progress
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    return value + (minimum - value) * progress


def _per_row_quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """Quantile ``q`` over the last axis (float32: torch.quantile wants a float dtype it supports)."""
    return torch.quantile(values.float(), q, dim=-1).to(values.dtype)


@dataclass(frozen=True)
class ImagenThreshold:
    """Imagen's dynamic thresholding of the predicted x0 at percentile ``percentile`` (0..1)."""

    percentile: float = 0.995

    def __call__(self, state: GuidanceState) -> torch.Tensor:
        x0 = state.to_x0(state.guided)
        flat = x0.abs().reshape(x0.shape[0], -1)
        s = _per_row_quantile(flat, self.percentile).clamp(min=1.0)
        s = s.reshape(-1, *([1] * (x0.ndim - 1)))
        return state.from_x0(torch.maximum(torch.minimum(x0, s), -s) / s)


@dataclass(frozen=True)
class MimicThreshold:
    """Latent-space dynamic thresholding towards the spread of CFG at ``mimic_scale`` (see the module doc).

    ``mimic_scale`` may follow a schedule towards ``mimic_scale_min`` (:func:`scheduled`). Without an
    unconditional prediction (CFG off) there is nothing to mimic and the link passes the prediction on.
    """

    mimic_scale: float = 7.0
    percentile: float = 1.0
    schedule: str = "constant"
    mimic_scale_min: float = 0.0

    def __call__(self, state: GuidanceState) -> torch.Tensor:
        if state.uncond is None:
            return state.guided
        mimic = scheduled(self.mimic_scale, self.mimic_scale_min, self.schedule, state.step, state.total_steps)
        cond_x0 = state.to_x0(state.cond)
        uncond_x0 = state.to_x0(state.uncond)
        target = state.to_x0(state.guided).flatten(2)  # [B, C, h*w]
        mimic_x0 = (uncond_x0 + mimic * (cond_x0 - uncond_x0)).flatten(2)
        target_mean = target.mean(dim=2, keepdim=True)
        centred = target - target_mean
        mimic_max = (mimic_x0 - mimic_x0.mean(dim=2, keepdim=True)).abs().amax(dim=2, keepdim=True)
        bound = torch.maximum(_per_row_quantile(centred.abs(), self.percentile).unsqueeze(2), mimic_max)
        bound = bound.clamp(min=torch.finfo(bound.dtype).tiny)  # a flat channel stays flat
        rescaled = torch.maximum(torch.minimum(centred, bound), -bound) / bound * mimic_max
        return state.from_x0((rescaled + target_mean).reshape(state.guided.shape))
