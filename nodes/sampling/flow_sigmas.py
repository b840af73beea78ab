"""ComfyUI's noise levels for flow-matching models (FLUX.1, SD3 / 3.5): what its KSampler steps through on them.

A flow model sees ``x = (1 - sigma) * x0 + sigma * noise`` with sigma in [0, 1] and predicts the velocity
``noise - x0``. ComfyUI describes each family by a table of shifted sigmas and a sigma -> timestep rule
(``comfy.model_sampling``), and its scheduler names (:data:`nodes.sampling.sigmas.SCHEDULERS`) pick steps from
that table exactly as they do for a UNet:

- ``ModelSamplingDiscreteFlow`` (SD3, and FLUX.1 [schnell]): 1000 entries ``shift * t / (1 + (shift - 1) * t)``
  at ``t = i / 1000``; the model's timestep is ``sigma * multiplier`` (SD3: shift 3, multiplier 1000;
  [schnell]: shift 1, multiplier 1);
- ``ModelSamplingFlux`` (FLUX.1 [dev]): 10000 entries ``e^mu / (e^mu + 1/t - 1)`` with ``mu`` 1.15 (its
  ModelSamplingFlux node sets ``mu`` from an image size); the timestep is sigma itself.

Both shifts are the same curve (``shift = e^mu``); the tables differ in length, which the table-based schedules
(``simple``, ``ddim_uniform``, ``beta``) see. The denoiser (``CONST``): the model's input is ``x`` unscaled,
``denoised = x - sigma * output``, sampling starts from ``sigma * noise + (1 - sigma) * latent`` and the result is
divided by ``1 - sigma`` of the last step. The product's FLUX and SD3 networks take ``1000 * sigma`` whatever
ComfyUI calls the timestep (FLUX multiplies its timestep by 1000 inside), so :meth:`FlowSigmas.network_timestep`
gives that.
"""

from __future__ import annotations

import math
from typing import Any

import torch

FLUX_DEV_MU = 1.15  # ComfyUI's default for FLUX.1 [dev] (supported_models.Flux: no sampling settings)
SD3_SHIFT = 3.0


def time_snr_shift(shift: float, t: Any) -> Any:
    """SD3's shift of a noise level ``t`` (ComfyUI's ``time_snr_shift``)."""
    if shift == 1.0:
        return t
    return shift * t / (1 + (shift - 1) * t)


def flux_time_shift(mu: float, t: Any) -> Any:
    """FLUX's shift of a noise level ``t`` by ``mu`` (ComfyUI's ``flux_time_shift`` with exponent 1)."""
    return math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** 1.0)


class FlowSigmas:
    """The noise levels of a flow model as ComfyUI's KSampler sees them; ``kind`` "flux" (ModelSamplingFlux, ``shift``
    is mu) or "discrete" (ModelSamplingDiscreteFlow)."""

    def __init__(self, kind: str, shift: float, multiplier: float = 1000.0) -> None:
        if kind not in ("flux", "discrete"):
            raise ValueError(f"unknown flow sampling {kind!r}")
        self.kind = kind
        self.shift = float(shift)
        self.multiplier = 1.0 if kind == "flux" else float(multiplier)
        if kind == "flux":
            self.sigmas = self.sigma(torch.arange(1, 10001, 1) / 10000)
        else:
            self.sigmas = self.sigma((torch.arange(1, 1001, 1) / 1000) * self.multiplier)

    @classmethod
    def for_model(cls, model: Any) -> FlowSigmas:
        """ComfyUI's sampling for a FLUX / SD3 MODEL handle: the family's own, or the shift a Flow Shift node set.

        A fixed ``shift`` in the scheduler config is ComfyUI's ModelSamplingSD3 shift (ModelSamplingFlux's ``mu`` is
        its logarithm); a config with resolution-dependent shifting is FLUX.1 [dev] as loaded, whose ComfyUI
        sampling is ``mu`` = its ``max_shift`` (1.15), the value at 1024x1024.
        """
        config = dict(getattr(model, "scheduler_config", None) or {})
        dynamic = bool(config.get("use_dynamic_shifting"))
        if model.family == "flux":
            if not getattr(model.unet.config, "guidance_embeds", True):  # [schnell]
                shift = math.exp(float(config.get("max_shift", FLUX_DEV_MU))) if dynamic else float(config.get("shift", 1.0))
                return cls("discrete", shift, multiplier=1.0)
            mu = float(config.get("max_shift", FLUX_DEV_MU)) if dynamic else math.log(float(config.get("shift", 1.0)))
            return cls("flux", mu)
        shift = math.exp(float(config.get("max_shift", 1.16))) if dynamic else float(config.get("shift", SD3_SHIFT))
        return cls("discrete", shift, multiplier=1000.0)

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        if self.kind == "flux":
            return flux_time_shift(self.shift, timestep)
        return time_snr_shift(self.shift, timestep / self.multiplier)

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """ComfyUI's timestep of ``sigma`` (what its ``normal`` schedule spaces evenly)."""
        return sigma if self.kind == "flux" else sigma * self.multiplier

    def network_timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The timestep the product's FLUX / SD3 denoisers take: ``1000 * sigma``."""
        return sigma * 1000.0

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        if self.kind == "flux":
            return flux_time_shift(self.shift, 1.0 - percent)
        return time_snr_shift(self.shift, 1.0 - percent)

    # -- what a model call does with a sigma (ComfyUI's CONST) --------------------------------------------------

    @staticmethod
    def _view(sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return sigma.view(sigma.shape[:1] + (1,) * (like.ndim - 1))

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x

    def denoised(self, x: torch.Tensor, output: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x - output * self._view(sigma, output)

    def alpha_prod(self, sigma: torch.Tensor) -> torch.Tensor:
        """The variance-preserving cumulative alpha of the same signal-to-noise ratio (for guidance links)."""
        return (1 - sigma) ** 2 / ((1 - sigma) ** 2 + sigma**2)

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        sigma = self._view(sigma, noise)
        return sigma * noise + (1.0 - sigma) * latent

    def inverse_noise_scaling(self, sigma: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return latent / (1.0 - sigma)
