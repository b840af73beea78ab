"""Scheduler names offered by the sampler nodes, each a diffusers scheduler built from the MODEL's
scheduler config (so a model's own timestep spacing, betas and prediction type carry over)."""

from __future__ import annotations

from typing import Any

# name -> (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": False}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
}

SCHEDULER_NAMES: tuple[str, ...] = tuple(SCHEDULERS)


def make_scheduler(name: str, scheduler_config: dict[str, Any], prediction_type: str | None = None) -> Any:
    """A fresh diffusers scheduler ``name`` configured from ``scheduler_config``.

    ``prediction_type`` (the MODEL's) overrides the config's. Unknown names raise ValueError listing the
    known ones.
    """
    import diffusers

    from nodes.sampling.flow_matching import is_flow_config, make_flow_scheduler

    if is_flow_config(scheduler_config):  # FLUX, SD3: only flow-matching schedulers fit
        return make_flow_scheduler(name, dict(scheduler_config))
    try:
        class_name, overrides = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULER_NAMES)}") from None
    config = {k: v for k, v in dict(scheduler_config).items() if not k.startswith("_")}
    config.update(overrides)
    if prediction_type:
        config["prediction_type"] = prediction_type
    cls = getattr(diffusers, class_name)
    try:
        return cls.from_config(config)
    except ImportError as exc:  # LMS needs scipy, an optional dependency of diffusers
        raise ValueError(f"scheduler {name!r} is not available: {str(exc).strip()}") from None
