"""Flow matching (FLUX.1, Stable Diffusion 3 / 3.5) in the one sampling loop.

These models see ``x_s = (1 - s) * x0 + s * noise`` at noise level ``s`` in [0, 1] and predict the velocity
``noise - x0`` (prediction type ``"flow_prediction"``); the scheduler is diffusers' FlowMatchEulerDiscreteScheduler,
whose timesteps are ``1000 * s``. Three things differ from the DDPM-style schedulers the loop was written for, and
each is a function here so that the loop stays one loop:

- which noise levels run: the scheduler's config shifts them towards noise, by a fixed ``shift`` (SD3: 3.0) or by
  one that grows with the image's token count (FLUX.1-dev: ``use_dynamic_shifting``, ``mu`` from diffusers'
  ``calculate_shift``); FLUX's pipelines also start from the linear sigmas ``1 .. 1/steps`` rather than the
  scheduler's own spacing (:func:`set_flow_timesteps`);
- how an input latent is noised for image-to-image: ``scale_noise`` rather than ``add_noise``;
- which scheduler names make sense: only the flow-matching ones (:data:`FLOW_SCHEDULERS`).
"""

from __future__ import annotations

import inspect
from typing import Any

# KSampler scheduler name -> (diffusers class, config overrides), for flow-matching models
FLOW_SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("FlowMatchEulerDiscreteScheduler", {}),
    # the stochastic variant: each step re-noises the predicted clean latent with fresh noise from the seed
    "euler_ancestral": ("FlowMatchEulerDiscreteScheduler", {"stochastic_sampling": True}),
    # multistep solvers on flow sigmas (their own spacing, the model's shift), as diffusers' pipelines accept them
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
_FLOW_SIGMAS = {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}
FLOW_PREDICTION = "flow_prediction"


def is_flow_config(config: dict[str, Any]) -> bool:
    """Whether a scheduler config belongs to a flow-matching model (its class is one of diffusers' FlowMatch*)."""
    return str(config.get("_class_name", "")).startswith("FlowMatch")


def make_flow_scheduler(name: str, config: dict[str, Any]) -> Any:
    """A fresh flow-matching scheduler ``name`` from the model's scheduler config (its shift settings carry over)."""
    import diffusers

    try:
        class_name, overrides = FLOW_SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"scheduler {name!r} does not sample flow-matching models (FLUX, SD3); use one of: "
                         f"{', '.join(FLOW_SCHEDULERS)}") from None
    cls = getattr(diffusers, class_name)
    if class_name.startswith("FlowMatch"):
        return cls.from_config({**{k: v for k, v in config.items() if not k.startswith("_")}, **overrides})
    # a multistep solver: only the settings it has, the flow-matching shift under its name
    accepted = set(inspect.signature(cls.__init__).parameters)
    settings = {k: v for k, v in config.items() if k in accepted}
    settings.update(_FLOW_SIGMAS, flow_shift=float(config.get("shift", 1.0)), **overrides)
    return cls(**settings)


def set_flow_timesteps(scheduler: Any, steps: int, image_seq_len: int, device: Any, *, linear_sigmas: bool,
                       max_shift_default: float) -> None:
    """Set the schedule as the family's diffusers pipeline does: ``mu`` for configs with dynamic shifting (from the
    image's token count), and for FLUX the explicit sigmas ``linspace(1, 1/steps, steps)``. ``max_shift_default`` is
    the pipeline's fallback when the config names none (FLUX 1.15, SD3 1.16)."""
    import numpy as np
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    config = scheduler.config
    accepted = inspect.signature(scheduler.set_timesteps).parameters
    kwargs: dict[str, Any] = {}
    if config.get("use_dynamic_shifting") and "mu" in accepted:
        kwargs["mu"] = calculate_shift(
            image_seq_len,
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", max_shift_default),
        )
    if linear_sigmas and "sigmas" in accepted and not config.get("use_flow_sigmas"):  # as FluxPipeline decides
        kwargs["sigmas"] = np.linspace(1.0, 1 / steps, steps)
    scheduler.set_timesteps(steps, device=device, **kwargs)


def current_sigma(scheduler: Any, t: Any) -> Any:
    """The noise level ``s`` of the step about to run at timestep ``t``."""
    index = scheduler.step_index
    if index is None:
        index = scheduler.begin_index if scheduler.begin_index is not None else scheduler.index_for_timestep(t)
    return scheduler.sigmas[index]


def noise_latent(scheduler: Any, latent: Any, noise: Any, timestep: Any) -> Any:
    """Image-to-image start: the latent noised to the first timestep's level (``scale_noise``, as FLUX's and SD3's
    img2img pipelines do)."""
    return scheduler.scale_noise(latent, timestep, noise)
