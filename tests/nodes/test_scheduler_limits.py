"""The sampler's declared step limits are what the diffusers schedulers really do: every scheduler completes a
schedule of its limit on the shipped SD configs, and fails one step past it (refused before any model loads)."""

from __future__ import annotations

import inspect

import pytest
import torch

from nodes.sampling.schedulers import MAX_STEPS, SCHEDULER_NAMES, make_scheduler
from nodes.sd.families import load_config

# past its limit this scheduler still runs (Karras sigmas never index past the end): the cap is for consistency
RUNS_PAST_LIMIT = {"dpmpp_2m_karras"}


TAIL = 8  # schedulers that can start late run only the last steps, where a schedule too long breaks them


def completes(name: str, config: dict, steps: int) -> bool:
    """Run a schedule of ``steps`` on a one-number latent; False if diffusers raises or returns NaN."""
    scheduler = make_scheduler(name, config, "epsilon")
    try:
        scheduler.set_timesteps(steps, device="cpu")
        timesteps = scheduler.timesteps
        if hasattr(scheduler, "set_begin_index") and len(timesteps) > TAIL:
            scheduler.set_begin_index(len(timesteps) - TAIL)
            timesteps = timesteps[-TAIL:]
        x = torch.ones(1, 1, 1, 1) * scheduler.init_noise_sigma
        extra = {"generator": torch.Generator().manual_seed(0)} if "generator" in inspect.signature(scheduler.step).parameters else {}
        for t in timesteps:
            scheduler.scale_model_input(x, t)
            x = scheduler.step(torch.full_like(x, 0.1), t, x, return_dict=False, **extra)[0]
    except (ValueError, IndexError, AssertionError):
        return False
    return not torch.isnan(x).any().item()


def test_every_scheduler_has_a_limit():
    assert set(MAX_STEPS) == set(SCHEDULER_NAMES)


@pytest.mark.parametrize("spacing", ["leading", "linspace"])
@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_scheduler_completes_its_limit_and_not_one_step_more(name, spacing):
    config = dict(load_config("sd15", "scheduler"), timestep_spacing=spacing)
    assert completes(name, config, MAX_STEPS[name])
    if spacing == "leading" and name not in RUNS_PAST_LIMIT:
        assert not completes(name, config, MAX_STEPS[name] + 1)
