"""ComfyUI's sampling of flow-matching models (nodes.sampling.flow_sigmas, nodes.sampling.rf_samplers): its sigma
tables and schedules against diffusers' FlowMatchEulerDiscreteScheduler and closed forms, the rectified-flow
ancestral sampler against the flow's marginals, and which sampler names run as ComfyUI runs them."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nodes.comfy.samplers import choose_sampler
from nodes.sampling.flow_sigmas import FlowSigmas
from nodes.sampling.sigmas import sampling_sigmas

diffusers = pytest.importorskip("diffusers")


def handle(family: str, guidance_embeds: bool = True, **config) -> SimpleNamespace:
    return SimpleNamespace(family=family, scheduler_config=config,
                           unet=SimpleNamespace(config=SimpleNamespace(guidance_embeds=guidance_embeds)))


def diffusers_sigmas(steps: int, **scheduler) -> np.ndarray:
    mu = scheduler.pop("mu", None)
    sched = diffusers.FlowMatchEulerDiscreteScheduler(**scheduler)
    sched.set_timesteps(sigmas=list(np.linspace(1.0, 1 / steps, steps)), **({"mu": mu} if mu is not None else {}))
    return sched.sigmas.numpy()


@pytest.mark.parametrize("steps", [4, 8, 25])
def test_flux_dev_simple_schedule_is_diffusers_shifted_linspace_at_mu_1_15(steps):
    levels = FlowSigmas.for_model(handle("flux", use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, shift=3.0))
    ours = sampling_sigmas(levels, "simple", steps).numpy()
    expected = diffusers_sigmas(steps, use_dynamic_shifting=True, mu=1.15)
    np.testing.assert_allclose(ours, expected, atol=2e-6)


@pytest.mark.parametrize("steps", [4, 10, 20])
def test_sd3_and_schnell_simple_schedules_are_diffusers_with_their_shift(steps):
    sd3 = sampling_sigmas(FlowSigmas.for_model(handle("sd3", shift=3.0)), "simple", steps).numpy()
    np.testing.assert_allclose(sd3, diffusers_sigmas(steps, shift=3.0), atol=2e-6)
    schnell = FlowSigmas.for_model(handle("flux", guidance_embeds=False, shift=1.0, use_dynamic_shifting=False))
    np.testing.assert_allclose(sampling_sigmas(schnell, "simple", steps).numpy(), diffusers_sigmas(steps, shift=1.0),
                               atol=2e-6)


def test_a_fixed_shift_on_flux_dev_is_comfyuis_mu_its_logarithm():
    levels = FlowSigmas.for_model(handle("flux", shift=2.0, use_dynamic_shifting=False))
    assert levels.kind == "flux" and levels.shift == pytest.approx(math.log(2.0))
    assert len(levels.sigmas) == 10000  # ModelSamplingFlux's table; [schnell] and SD3 have 1000 entries
    t = torch.tensor([0.25, 0.5, 0.75])
    np.testing.assert_allclose(levels.sigma(t).numpy(), (2 * t / (1 + t)).numpy(), rtol=1e-6)


def test_sgm_uniform_on_sd3_spaces_comfyuis_timesteps_evenly():
    levels = FlowSigmas.for_model(handle("sd3", shift=3.0))
    ours = sampling_sigmas(levels, "sgm_uniform", 5).numpy()
    low = 3 * 0.001 / (1 + 2 * 0.001)  # the table's smallest sigma: t = 1/1000 shifted by 3
    ts = np.linspace(1.0, low, 6)[:-1]
    expected = np.append(3 * ts / (1 + 2 * ts), 0.0)
    np.testing.assert_allclose(ours, expected, atol=2e-6)


def test_flow_denoiser_algebra_is_comfyuis_const_model():
    levels = FlowSigmas("discrete", 3.0)
    x0, noise, sigma = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3), torch.tensor([0.7, 0.2])
    x = levels.noise_scaling(sigma, noise, x0)
    velocity = noise - x0
    torch.testing.assert_close(levels.denoised(x, velocity, sigma), x0)
    assert torch.equal(levels.model_input(x, sigma), x)
    torch.testing.assert_close(levels.network_timestep(sigma), sigma * 1000)


def test_rectified_flow_ancestral_steps_keep_the_flows_marginals():
    """With an oracle that knows x0, every step of ComfyUI's RF ancestral sampler must leave x distributed as the
    flow says at that sigma: (1 - sigma) * x0 plus noise of standard deviation sigma (the variance-exploding
    ancestral step, run on a flow model, would not)."""
    from nodes.sampling.noise import step_noise
    from nodes.sampling.rf_samplers import euler_ancestral_rf

    x0 = torch.full((1, 1, 400, 400), 0.5)
    sigmas = torch.tensor([1.0, 0.8, 0.5, 0.3, 0.0])
    seen = []

    def oracle(x, sigma):
        return x0.expand_as(x)

    x = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    result = euler_ancestral_rf(oracle, x, sigmas, step_noise(x, 4), lambda i, x, d: seen.append(x))
    for i, x_i in enumerate(seen):
        residual = x_i - (1 - sigmas[i]) * x0
        assert residual.mean().abs() < 0.01 and float(residual.std()) == pytest.approx(float(sigmas[i]), rel=0.01)
    torch.testing.assert_close(result, x0)


@pytest.mark.parametrize(("name", "runs", "warned"), [
    ("euler", "euler", False), ("dpmpp_2m", "dpmpp_2m", False), ("uni_pc", "uni_pc", False),
    ("euler_ancestral", "euler_ancestral_rf", False), ("dpmpp_2m_sde", "euler_ancestral_rf", True),
    ("euler_cfg_pp", "euler", True), ("ddim", "euler", False),
])
def test_sampler_names_on_flow_models_run_comfyuis_algorithm_or_warn(name, runs, warned):
    choice = choose_sampler(name, flow=True)
    assert choice.name == runs and bool(choice.warning) == warned
    assert choose_sampler(name).name != "euler_ancestral_rf"
