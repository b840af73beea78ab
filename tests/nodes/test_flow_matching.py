"""Flow matching in the sampling loop, without a model: schedulers by name, the SD3 / FLUX img2img rounding of the
denoise strength, the schedule FluxPipeline sets, and guidance links seeing flow predictions correctly."""

from __future__ import annotations

import pytest
import torch

from nodes.sampling.flow_matching import make_flow_scheduler, set_flow_timesteps
from nodes.sampling.guidance import GuidanceState
from nodes.sampling.loop import StepRange
from nodes.sampling.schedulers import make_scheduler

FLUX_DEV = {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, "use_dynamic_shifting": True,
            "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096}


def test_flow_models_get_flow_schedulers_and_others_are_refused_with_the_choices():
    assert type(make_scheduler("euler", FLUX_DEV)).__name__ == "FlowMatchEulerDiscreteScheduler"
    assert make_scheduler("euler_ancestral", FLUX_DEV).config.stochastic_sampling
    dpm = make_scheduler("dpmpp_2m", FLUX_DEV)
    assert dpm.config.use_flow_sigmas and dpm.config.flow_shift == 3.0 and dpm.config.use_dynamic_shifting
    with pytest.raises(ValueError, match=r"does not sample flow-matching models.*euler, euler_ancestral, dpmpp_2m"):
        make_flow_scheduler("ddim", FLUX_DEV)


@pytest.mark.parametrize(("steps", "denoise", "sd_start", "flow_start"), [(4, 0.6, 2, 1), (10, 0.75, 3, 2), (5, 0.5, 3, 2)])
def test_denoise_strength_skips_steps_as_each_familys_img2img_pipeline(steps, denoise, sd_start, flow_start):
    assert StepRange.of(steps, denoise).start == sd_start
    assert StepRange.of(steps, denoise, strength_rule="flow").start == flow_start


def test_flux_schedule_is_flux_pipelines():
    import numpy as np
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    ours = make_scheduler("euler", FLUX_DEV)
    set_flow_timesteps(ours, 6, 1024, "cpu", linear_sigmas=True, max_shift_default=1.15)
    theirs = make_scheduler("euler", FLUX_DEV)
    theirs.set_timesteps(sigmas=np.linspace(1.0, 1 / 6, 6), mu=calculate_shift(1024, 256, 4096, 0.5, 1.15))
    assert torch.equal(ours.timesteps, theirs.timesteps) and torch.equal(ours.sigmas, theirs.sigmas)


def test_guidance_links_convert_flow_predictions_through_the_noise_level():
    x0, noise, sigma = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2), torch.tensor(0.3)
    x = (1 - sigma) * x0 + sigma * noise
    state = GuidanceState(cond=noise - x0, uncond=None, guided=noise - x0, x=x, timestep=300.0,
                          alpha_prod=torch.tensor(0.5), prediction_type="flow_prediction", cfg_scale=1.0, sigma=sigma)
    assert torch.allclose(state.to_x0(noise - x0), x0, atol=1e-6)
    assert torch.allclose(state.from_x0(x0), noise - x0, atol=1e-5)
