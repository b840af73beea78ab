"""Guidance as a chain of small composable functions (DESIGN contract 7).

Each link is a callable ``link(state) -> prediction``: it reads the :class:`GuidanceState` (the model's
conditional and unconditional predictions, the prediction guided so far, the latent and the noise level)
and returns the new guided prediction, which the next link sees as ``state.guided``. The sampler runs
``CFG -> [rescale] -> *MODEL.guidance``; a node adding a guidance step (dynamic thresholding, issue 4)
returns ``model.replace(guidance=model.guidance + (link,))``, so two such nodes compose in order and
neither overwrites the other.

Links that work on the predicted clean latent use :meth:`GuidanceState.to_x0` and
:meth:`GuidanceState.from_x0`, which convert whatever the model predicts (epsilon, v, or x0).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class GuidanceState:
    """What a guidance link sees at one model evaluation.

    ``x`` is the latent in the variance-preserving form the model saw (after ``scale_model_input``), so
    ``x = sqrt(alpha) * x0 + sqrt(1 - alpha) * eps`` with ``alpha = alpha_prod`` (cumulative alpha).
    ``uncond`` is None when CFG is off (scale 1), in which case the unconditional pass was skipped.
    Flow-matching models (prediction type ``"flow_prediction"``: FLUX, SD3) see ``x = (1 - s) * x0 + s * noise``
    and predict the velocity ``noise - x0``; ``sigma`` is their noise level ``s`` (None for the others).
    """

    cond: torch.Tensor
    uncond: torch.Tensor | None
    guided: torch.Tensor
    x: torch.Tensor
    timestep: Any
    alpha_prod: torch.Tensor
    prediction_type: str
    cfg_scale: float
    step: int = 0
    total_steps: int = 1
    sigma: torch.Tensor | None = None

    def replace(self, **changes: Any) -> GuidanceState:
        return dataclasses.replace(self, **changes)

    def to_x0(self, prediction: torch.Tensor) -> torch.Tensor:
        """The clean latent implied by ``prediction`` (of this model's prediction type) at this step."""
        if self.prediction_type == "flow_prediction":
            return self.x - self.sigma.to(prediction.dtype) * prediction
        a = self.alpha_prod.to(prediction.dtype)
        if self.prediction_type == "epsilon":
            return (self.x - (1 - a).sqrt() * prediction) / a.sqrt()
        if self.prediction_type == "v_prediction":
            return a.sqrt() * self.x - (1 - a).sqrt() * prediction
        return prediction

    def from_x0(self, x0: torch.Tensor) -> torch.Tensor:
        """The prediction (of this model's type) that implies clean latent ``x0`` at this step."""
        if self.prediction_type == "flow_prediction":
            return (self.x - x0) / self.sigma.to(x0.dtype)
        a = self.alpha_prod.to(x0.dtype)
        if self.prediction_type == "sample":
            return x0
        eps = (self.x - a.sqrt() * x0) / (1 - a).sqrt()
        if self.prediction_type == "epsilon":
            return eps
        return a.sqrt() * eps - (1 - a).sqrt() * x0


GuidanceLink = Callable[[GuidanceState], torch.Tensor]


@dataclass(frozen=True)
class ClassifierFreeGuidance:
    """``uncond + scale * (cond - uncond)``, written as diffusers writes it (so results are bit-identical).
    Without an unconditional prediction (scale 1) the conditional one passes through."""

    scale: float

    def __call__(self, state: GuidanceState) -> torch.Tensor:
        if state.uncond is None:
            return state.cond
        return state.uncond + self.scale * (state.cond - state.uncond)


@dataclass(frozen=True)
class GuidanceRescale:
    """Rescales the guided prediction towards the conditional one's standard deviation (Lin et al. 2023,
    "Common Diffusion Noise Schedules and Sample Steps are Flawed", section 3.4), via diffusers'
    ``rescale_noise_cfg``. ``phi`` 0 is a no-op; like diffusers it applies only when CFG ran."""

    phi: float

    def __call__(self, state: GuidanceState) -> torch.Tensor:
        if state.uncond is None or self.phi <= 0.0:
            return state.guided
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

        return rescale_noise_cfg(state.guided, state.cond, guidance_rescale=self.phi)


def build_chain(cfg_scale: float, guidance_rescale: float = 0.0, extra: Sequence[GuidanceLink] = ()) -> tuple[GuidanceLink, ...]:
    """The sampler's chain: CFG, then rescale (when ``guidance_rescale`` > 0), then the MODEL's links."""
    chain: list[GuidanceLink] = [ClassifierFreeGuidance(cfg_scale)]
    if guidance_rescale > 0.0:
        chain.append(GuidanceRescale(guidance_rescale))
    chain.extend(extra)
    return tuple(chain)


def run_chain(chain: Sequence[GuidanceLink], state: GuidanceState) -> torch.Tensor:
    """Apply the links in order, each seeing the previous one's result as ``state.guided``."""
    for link in chain:
        state = state.replace(guided=link(state))
    return state.guided
