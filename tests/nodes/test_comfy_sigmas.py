"""ComfyUI's discretisation and sigma schedules, checked against the formulas of the ComfyUI reference's
README (written out again here in numpy, float64), not against this code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nodes.sampling.sigmas import SCHEDULER_NAMES, DiscreteSigmas, sampling_sigmas, schedule_sigmas, step_range

LEVELS = DiscreteSigmas()  # SD1.5: linear in sqrt(beta) from 0.00085 to 0.012, 1000 steps


def table() -> np.ndarray:
    betas = np.linspace(math.sqrt(0.00085), math.sqrt(0.012), 1000, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1.0 - betas)
    return np.sqrt((1 - alphas_cumprod) / alphas_cumprod)


def sigma_at(t: np.ndarray) -> np.ndarray:
    """sigma(t) for fractional t: log sigma interpolated linearly."""
    logs = np.log(table())
    low, high = np.floor(t).astype(int), np.ceil(t).astype(int)
    w = t - low
    return np.exp((1 - w) * logs[low] + w * logs[high])


def close(ours: torch.Tensor, expected: np.ndarray, rtol: float = 2e-6) -> None:
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    np.testing.assert_allclose(ours.numpy().astype(np.float64), expected, rtol=rtol, atol=1e-7)


def test_the_table_is_the_float32_rounding_of_the_sd15_noise_levels():
    assert np.array_equal(LEVELS.sigmas.numpy(), table().astype(np.float32))
    assert float(LEVELS.sigma_min) == pytest.approx(0.029167, abs=1e-6)
    assert float(LEVELS.sigma_max) == pytest.approx(14.614641, abs=1e-6)


def test_a_sigma_is_fed_to_the_model_as_the_index_of_the_nearest_log_sigma():
    rng = np.random.default_rng(0)
    sigmas = np.exp(rng.uniform(np.log(0.03), np.log(14.6), 50)).astype(np.float32)
    expected = np.abs(np.log(sigmas)[None, :] - np.log(table())[:, None]).argmin(axis=0)
    ours = LEVELS.timestep(torch.from_numpy(sigmas))
    assert ours.dtype == torch.int64 and np.array_equal(ours.numpy(), expected)


def test_fractional_timesteps_interpolate_log_sigma():
    t = np.array([0.0, 12.25, 500.5, 998.9, 999.0])
    close(LEVELS.sigma(torch.tensor(t, dtype=torch.float32)), sigma_at(t))


def expected_schedule(name: str, n: int) -> np.ndarray:
    """The README's table of schedulers, one line each."""
    sig = table()
    if name == "normal":
        s = sigma_at(np.linspace(999, 0, n))
    elif name == "sgm_uniform":
        s = sigma_at(np.linspace(999, 0, n + 1)[:-1])
    elif name == "simple":
        s = np.array([sig[-(1 + int(k * 1000 / n))] for k in range(n)])
    elif name == "ddim_uniform":
        c = 1000 // n
        s = sig[np.arange(1, 1000, c)][::-1]
    elif name == "karras":
        ramp = np.linspace(0, 1, n)
        lo, hi = float(sig[0].astype(np.float32)) ** (1 / 7), float(sig[-1].astype(np.float32)) ** (1 / 7)
        s = (hi + ramp * (lo - hi)) ** 7
    elif name == "exponential":
        s = np.exp(np.linspace(math.log(sig[-1]), math.log(sig[0]), n))
    elif name == "beta":
        from scipy import stats

        t = np.rint(stats.beta.ppf(1 - np.linspace(0, 1, n, endpoint=False), 0.6, 0.6) * 999)
        keep = np.concatenate([[True], t[1:] != t[:-1]])
        s = sig[t[keep].astype(int)]
    elif name == "kl_optimal":  # evenly spaced in arctan(sigma)
        w = np.arange(n) / (n - 1)
        s = np.tan(w * math.atan(sig[0]) + (1 - w) * math.atan(sig[-1]))
    elif name == "linear_quadratic":  # Mochi: linear to 0.025 over the first half, then quadratic to 1
        half = n // 2
        linear = [i * 0.025 / half for i in range(half)]
        diff = half - 0.025 * n
        quad = n - half
        a = diff / (half * quad**2)
        b = 0.025 / half - 2 * diff / quad**2
        c = a * half**2
        fractions = [*linear, *[a * i * i + b * i + c for i in range(half, n)]]
        s = (1 - np.array(fractions)) * sig[-1]
    else:
        raise AssertionError(name)
    return np.concatenate([s, [0.0]])


@pytest.mark.parametrize("steps", [1, 3, 4, 7, 20])
@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_each_scheduler_gives_the_readme_schedule(name, steps):
    if name in ("kl_optimal", "linear_quadratic") and steps == 1:
        pytest.skip("defined for at least two steps")
    close(schedule_sigmas(LEVELS, name, steps), expected_schedule(name, steps), rtol=1e-5)


def test_ddim_uniform_can_give_more_sigmas_than_steps():
    sigmas = schedule_sigmas(LEVELS, "ddim_uniform", 7)  # 1000 // 7 = 142: entries 1, 143, ..., 995
    assert len(sigmas) == 9 and float(sigmas[-1]) == 0.0


def test_some_samplers_take_one_more_step_and_drop_the_second_to_last_sigma():
    full = schedule_sigmas(LEVELS, "normal", 5)
    for sampler in ("uni_pc", "uni_pc_bh2", "dpm_2", "dpm_2_ancestral"):
        ours = schedule_sigmas(LEVELS, "normal", 4, sampler)
        assert torch.equal(ours, torch.cat([full[:-2], full[-1:]]))
    assert len(schedule_sigmas(LEVELS, "normal", 4, "euler")) == 5


def test_denoise_below_one_runs_the_tail_of_a_longer_schedule():
    longer = schedule_sigmas(LEVELS, "normal", int(6 / 0.6))
    assert torch.equal(sampling_sigmas(LEVELS, "normal", 6, "euler", 0.6), longer[-7:])
    assert len(sampling_sigmas(LEVELS, "normal", 6, "euler", 0.0)) == 0


def test_ksampler_advanced_cuts_the_schedule_at_its_steps():
    sigmas = schedule_sigmas(LEVELS, "normal", 4)
    leftover = step_range(sigmas, 1, 3, force_full_denoise=False)
    assert torch.equal(leftover, sigmas[1:4])
    finished = step_range(sigmas, None, 3, force_full_denoise=True)
    assert torch.equal(finished[:-1], sigmas[:3]) and float(finished[-1]) == 0.0
    assert torch.equal(step_range(sigmas, 3, 10000, False), sigmas[3:])
    assert step_range(sigmas, 4, 10000, False) is None  # nothing left: the latent passes through


def test_v_prediction_denoised_is_the_x0_the_velocity_implies():
    levels = DiscreteSigmas(prediction="v_prediction")
    sigma = torch.tensor([2.0])
    x0, eps = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(0)), torch.randn(1, 4, 2, 2)
    x = x0 + sigma.view(1, 1, 1, 1) * eps
    alpha = 1 / math.sqrt(1 + 4.0)  # variance-preserving scale at sigma 2
    v = alpha * eps - (2.0 * alpha) * x0  # v = alpha_t * eps - sigma_t * x0 in the VP form
    torch.testing.assert_close(levels.denoised(x, v, sigma), x0, rtol=1e-5, atol=1e-5)
