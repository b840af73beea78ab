"""The k-diffusion style samplers against closed forms, and ComfyUI's noise rules.

For data x0 ~ N(mu, s^2) the ideal denoiser is known exactly, D(x, sigma) = mu + s^2 / (s^2 + sigma^2) (x - mu),
and so is the probability-flow ODE: x(sigma) - mu = (x(sigma_0) - mu) sqrt((s^2 + sigma^2) / (s^2 + sigma_0^2)).
Deterministic samplers must land on that solution, closer with more steps and at their order of
accuracy; stochastic samplers started from the right marginal must end with samples of mean mu and
standard deviation s.
"""

from __future__ import annotations

import math

import pytest
import torch

from nodes.comfy.samplers import SAMPLER_NAMES, choose_sampler, run_sampler
from nodes.sampling import k_samplers
from nodes.sampling.noise import BrownianNoise, initial_noise, step_noise
from nodes.sampling.sigmas import DiscreteSigmas, schedule_sigmas

MU, S = 0.3, 0.5
LEVELS = DiscreteSigmas()


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    sigma = sigma.view(-1, *([1] * (x.ndim - 1))).to(x.dtype)
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


def start(shape=(1, 4, 16, 16), sigma0: float = 14.6, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    z = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return MU + math.sqrt(S**2 + sigma0**2) * z


def exact_end(x_start: torch.Tensor, sigma0: float, sigma_end: float) -> torch.Tensor:
    return MU + (x_start - MU) * math.sqrt((S**2 + sigma_end**2) / (S**2 + sigma0**2))


def run(name: str, x: torch.Tensor, sigmas: torch.Tensor, seed: int = 3) -> torch.Tensor:
    return run_sampler(choose_sampler(name), gaussian_denoiser, x, sigmas, seed, None)


ODE_SAMPLERS = ["euler", "heun", "heunpp2", "dpm_2", "lms", "dpmpp_2m", "ipndm", "ipndm_v", "uni_pc", "uni_pc_bh2",
                "dpm_fast", "ddim", "res_multistep", "gradient_estimation", "dpmpp_2m_cfg_pp", "res_multistep_cfg_pp"]


def _error(name: str, steps: int) -> float:
    sigmas = torch.exp(torch.linspace(math.log(14.6), math.log(0.05), steps + 1, dtype=torch.float64))
    x = start(sigma0=14.6)
    return float((run(name, x, sigmas) - exact_end(x, 14.6, 0.05)).abs().max())


FIRST_ORDER = {"euler", "ddim", "heunpp2", "gradient_estimation"}  # Euler-based: first order on this problem


@pytest.mark.parametrize("name", ODE_SAMPLERS)
def test_deterministic_samplers_solve_the_probability_flow_ode(name):
    coarse, fine = _error(name, 10), _error(name, 40)
    assert fine < (0.06 if name in FIRST_ORDER else 0.005), f"{name}: error {fine} after 40 steps"
    cut = 2 if name in FIRST_ORDER else 3
    assert fine < coarse / cut, f"{name}: four times the steps did not cut the error enough ({coarse} -> {fine})"


def test_the_adaptive_solver_meets_its_tolerance_whatever_the_schedule():
    # rtol 0.05 / atol 0.0078 on each step: the schedule only sets where it starts and ends
    assert _error("dpm_adaptive", 10) < 0.08 and _error("dpm_adaptive", 40) < 0.08


def test_higher_order_samplers_converge_faster_than_euler():
    ratio = {name: _error(name, 10) / _error(name, 20) for name in ("euler", "heun", "dpmpp_2m", "lms", "uni_pc")}
    assert 1.6 < ratio["euler"] < 2.6  # first order: half the step, half the error
    for name in ("heun", "dpmpp_2m", "lms", "uni_pc"):
        assert ratio[name] > 3.0, (name, ratio[name])


def test_a_run_down_to_sigma_zero_lands_on_the_data_distribution():
    sigmas = schedule_sigmas(LEVELS, "karras", 30).double()
    x = start(sigma0=float(sigmas[0]))
    for name, tolerance in (("euler", 0.1), ("heun", 0.01), ("dpmpp_2m", 0.01), ("uni_pc", 0.005), ("lms", 0.01)):
        torch.testing.assert_close(run(name, x, sigmas), exact_end(x, float(sigmas[0]), 0.0), rtol=0, atol=tolerance)


# first-order ancestral steps shrink the spread by about 9% at 40 steps; the others stay within 2%
STOCHASTIC = {"euler_ancestral": 0.12, "euler_ancestral_cfg_pp": 0.12, "ddpm": 0.12, "dpm_2_ancestral": 0.03,
              "dpmpp_2s_ancestral": 0.03, "dpmpp_sde": 0.03, "dpmpp_2m_sde": 0.03, "dpmpp_2m_sde_heun": 0.03,
              "dpmpp_3m_sde": 0.03, "res_multistep_ancestral": 0.12, "er_sde": 0.03,
              "dpmpp_2s_ancestral_cfg_pp": 0.03, "seeds_2": 0.03, "seeds_3": 0.03}


@pytest.mark.parametrize("name", sorted(STOCHASTIC))
def test_stochastic_samplers_draw_from_the_data_distribution(name):
    sigmas = schedule_sigmas(LEVELS, "karras", 40).float()
    x = start((1, 4, 64, 64), sigma0=float(sigmas[0]), dtype=torch.float32)
    out = run(name, x, sigmas)
    assert abs(float(out.mean()) - MU) < 0.02, (name, float(out.mean()))
    assert abs(float(out.std()) - S) / S < STOCHASTIC[name], (name, float(out.std()))
    assert not torch.allclose(out, run("euler", x, sigmas), atol=1e-3)  # the noise really was added


def test_lcm_jumps_to_the_prediction_and_renoises_to_the_next_sigma():
    sigmas = torch.tensor([14.6, 2.0, 0.0], dtype=torch.float64)
    x = start((1, 4, 16, 16), sigma0=14.6)
    out = run("lcm", x, sigmas, seed=4)
    renoised = gaussian_denoiser(x, sigmas[:1]) + step_noise(x, 4)(sigmas[0], sigmas[1]) * 2.0
    torch.testing.assert_close(out, gaussian_denoiser(renoised, sigmas[1:2]))


def test_every_comfyui_sampler_name_runs():
    sigmas = schedule_sigmas(LEVELS, "normal", 6).double()
    x = start((1, 4, 8, 8), sigma0=float(sigmas[0]))
    for name in SAMPLER_NAMES:
        out = run(name, x, sigmas)
        assert out.shape == x.shape and torch.isfinite(out).all(), name


def test_names_that_are_not_reproduced_say_so():
    assert choose_sampler("euler").warning == ""
    choice = choose_sampler("deis")
    assert choice.name == "ipndm" and "not reproduced" in choice.warning
    assert choose_sampler("ddim").name == "euler" and choose_sampler("ddim").inpaint_random_noise
    with pytest.raises(ValueError, match="unknown sampler"):
        choose_sampler("nope")


# -- ComfyUI's noise --------------------------------------------------------------------------------------------


def test_initial_noise_is_one_draw_of_the_batch_from_the_seeded_global_generator():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        expected = torch.randn((2, 4, 8, 8))
    assert torch.equal(initial_noise((2, 4, 8, 8), 1234), expected)
    # image k of a batch is the next slice of the same draw, not seed + k
    assert torch.equal(initial_noise((2, 4, 8, 8), 1234)[1], expected[1])
    # a latent picked out of a batch (batch_index) gets that image's draw
    picked = initial_noise((1, 4, 8, 8), 1234, batch_index=[1])
    assert torch.equal(picked[0], expected[1])


def test_ancestral_step_noise_comes_from_a_generator_seeded_with_seed_plus_one_on_the_cpu():
    x = torch.zeros(1, 4, 8, 8)
    noise = step_noise(x, 77)
    generator = torch.Generator().manual_seed(78)
    first, second = torch.randn(x.shape, generator=generator), torch.randn(x.shape, generator=generator)
    one = torch.tensor(1.0)
    assert torch.equal(noise(one, one), first) and torch.equal(noise(one, one), second)


def test_euler_ancestral_adds_exactly_that_noise():
    sigmas = torch.tensor([3.0, 1.0, 0.5, 0.0])
    x = torch.zeros(1, 4, 8, 8)
    out = k_samplers.euler_ancestral(lambda x, s: torch.zeros_like(x), x, sigmas, step_noise(x, 9))
    generator = torch.Generator().manual_seed(10)
    expected = torch.zeros_like(x)
    for i in range(2):  # the last step (to 0) returns the prediction and draws nothing
        down, up = k_samplers.ancestral_step(sigmas[i], sigmas[i + 1])
        expected = expected * (down / sigmas[i]) + torch.randn(x.shape, generator=generator) * up
    assert torch.equal(out, torch.zeros_like(x))  # ... which is zero here
    partial = k_samplers.euler_ancestral(lambda x, s: torch.zeros_like(x), x, sigmas[:3], step_noise(x, 9))
    torch.testing.assert_close(partial, expected)


def test_brownian_noise_is_reproducible_and_unit_variance():
    x = torch.zeros(1, 4, 32, 32)
    a = BrownianNoise(x, torch.tensor(0.03), torch.tensor(14.6), seed=5)
    b = BrownianNoise(x, torch.tensor(0.03), torch.tensor(14.6), seed=5)
    s1, s2 = torch.tensor(10.0), torch.tensor(4.0)
    draw = a(s1, s2)
    assert torch.equal(draw, b(s1, s2))
    assert abs(float(draw.std()) - 1.0) < 0.05
    assert not torch.equal(draw, BrownianNoise(x, torch.tensor(0.03), torch.tensor(14.6), seed=6)(s1, s2))
