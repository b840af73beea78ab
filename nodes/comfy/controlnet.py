"""A ControlNet as ComfyUI applies it: its start and end percents are noise levels, not step counts
(``percent_to_sigma`` of the model's schedule), and the control image is fitted to the latent's size by
``nearest-exact`` resizing after a centre crop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nodes.adapters.controlnet import LATENT_SCALE, ControlNetSource
from nodes.sampling.denoiser import CondBatch, Residuals, StepInfo


@dataclass(frozen=True)
class SigmaStep(StepInfo):
    """:class:`StepInfo` with the noise level of the model call (the ComfyUI-semantics sampler passes it)."""

    sigma: float | None = None


@dataclass(eq=False)
class ComfyControlNetSource(ControlNetSource):
    """``start``/``end`` are ComfyUI's percents; the parent's step window is left open (0..1)."""

    percent_start: float = 0.0
    percent_end: float = 1.0
    _window: tuple[float, float] | None = None

    def prepare(self, ctx: Any, model: Any, latent_shape: tuple[int, ...]) -> None:
        from nodes.sampling.sigmas import DiscreteSigmas

        super().prepare(ctx, model, latent_shape)
        levels = DiscreteSigmas.from_scheduler_config(model.scheduler_config, model.prediction_type)
        self._window = (levels.percent_to_sigma(self.percent_start), levels.percent_to_sigma(self.percent_end))
        height, width = latent_shape[-2] * LATENT_SCALE, latent_shape[-1] * LATENT_SCALE
        if tuple(self.image.shape[1:3]) != (height, width):
            from nodes.comfy.resize import common_upscale

            pixels = common_upscale(self.image.movedim(-1, 1), width, height, "nearest-exact", "center")
            self.image = pixels.movedim(1, -1)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> Residuals:
        sigma = getattr(step, "sigma", None)
        if sigma is not None and self._window is not None:
            high, low = self._window
            if sigma > high or sigma < low:
                return Residuals()
        elif not (self.percent_start <= step.fraction <= self.percent_end):  # outside a ComfyUI sampler
            return Residuals()
        return super().__call__(x, t, cond, step)
