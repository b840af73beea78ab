"""Scheduler names offered by the sampler nodes, each a diffusers scheduler built from the MODEL's
scheduler config (so a model's own timestep spacing, betas and prediction type carry over)."""

from __future__ import annotations

from typing import Any

from nodegraph.node import Issue

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

# The most steps a scheduler completes in our sampling loop on a model trained on 1000 noise levels (every
# family here), measured with the SD timestep spacings (leading, linspace): above it diffusers refuses (DDIM,
# DDPM), indexes past the end of its timesteps (PNDM) or returns NaNs (the DPM solvers, UniPC, LMS). Schedulers
# not listed have no limit of their own. tests/nodes/test_scheduler_limits.py runs each at its limit and past it.
MAX_STEPS: dict[str, int] = {
    "ddim": 999,
    "ddpm": 999,
    "pndm": 999,
    "lms": 999,
    "dpmpp_2m": 998,
    "dpmpp_2m_sde": 998,
    "unipc": 998,
}
# Model calls per step: second-order schedulers evaluate the model twice (what the progress bar weighs).
CALLS_PER_STEP = {"heun": 2}


def check_steps(steps: Any, scheduler: Any) -> list[Issue]:
    """The sampler's declared check: steps within what the scheduler can do (read from parameters only)."""
    limit = MAX_STEPS.get(scheduler) if isinstance(scheduler, str) else None
    if isinstance(steps, int) and limit is not None and steps > limit:
        return [Issue("steps", f"the {scheduler} scheduler cannot run more than {limit} steps (the model learned "
                      "1000 noise levels)", f"at most {limit} steps for {scheduler}", str(steps))]
    return []


def model_calls(scheduler: Any, steps: int) -> float:
    """Model evaluations for ``steps`` steps of ``scheduler`` (the sampler's work for the progress bar)."""
    return float(steps * CALLS_PER_STEP.get(scheduler, 1)) if isinstance(scheduler, str) else float(steps)


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
