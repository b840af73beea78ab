"""Samplers ComfyUI added after Crowson's k-diffusion set, in the same style (``model(x, sigma) -> denoised``).

- :func:`res_multistep`: the second-order exponential multistep method of Zhang et al. (RES, arXiv 2308.02157),
  deterministic or ancestral, optionally CFG++ (the step direction from the unconditional prediction);
- :func:`gradient_estimation`: Euler with a gradient-estimation correction (Permenter & Yuan 2024);
- :func:`dpmpp_2m_cfg_pp`: DPM-Solver++(2M) with CFG++;
- :func:`er_sde`: the extended reverse-time SDE solver, 3 stages (Cui et al. 2023, arXiv 2309.06169);
- :func:`seeds`: SEEDS-2 and SEEDS-3, stochastic explicit exponential solvers (Gonzalez et al., NeurIPS 2023).

CFG++ variants read ``model.last_uncond`` (the ComfyUI-semantics denoiser keeps it).
"""

from __future__ import annotations

import torch

from nodes.sampling.k_samplers import Callback, Model, Noise, ancestral_step, to_d


def _t(sigma: torch.Tensor) -> torch.Tensor:
    return sigma.log().neg()


def _uncond(model: Model, denoised: torch.Tensor) -> torch.Tensor:
    uncond = getattr(model, "last_uncond", None)
    return denoised if uncond is None else uncond


@torch.no_grad()
def res_multistep(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise | None, callback: Callback = None,
                  eta: float = 0.0, cfg_pp: bool = False) -> torch.Tensor:
    s_in = x.new_ones([x.shape[0]])
    old_sigma_down = old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        uncond = _uncond(model, denoised) if cfg_pp else denoised
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1], eta=eta)
        if callback is not None:
            callback(i, x, denoised)
        if sigma_down == 0 or old_denoised is None:  # Euler
            if cfg_pp:
                x = denoised + to_d(x, sigmas[i], uncond) * sigma_down
            else:
                x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            t, t_old, t_next, t_prev = _t(sigmas[i]), _t(old_sigma_down), _t(sigma_down), _t(sigmas[i - 1])
            h = t_next - t
            c2 = (t_prev - t_old) / h
            phi1 = torch.expm1(-h) / -h
            phi2 = (phi1 - 1.0) / -h
            b1 = torch.nan_to_num(phi1 - phi2 / c2, nan=0.0)
            b2 = torch.nan_to_num(phi2 / c2, nan=0.0)
            if cfg_pp:
                x = x + (denoised - uncond)
                x = h.neg().exp() * x + h * (b1 * uncond + b2 * old_denoised)
            else:
                x = h.neg().exp() * x + h * (b1 * denoised + b2 * old_denoised)
        if sigmas[i + 1] > 0 and noise is not None and eta > 0:
            x = x + noise(sigmas[i], sigmas[i + 1]) * 1.0 * sigma_up
        old_denoised = uncond if cfg_pp else denoised
        old_sigma_down = sigma_down
    return x


@torch.no_grad()
def gradient_estimation(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None,
                        gamma: float = 2.0, cfg_pp: bool = False) -> torch.Tensor:
    s_in = x.new_ones([x.shape[0]])
    old_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], _uncond(model, denoised) if cfg_pp else denoised)
        if callback is not None:
            callback(i, x, denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            x = denoised + d * sigmas[i + 1] if cfg_pp else x + d * dt
            if i >= 1:
                x = x + (gamma - 1) * (d - old_d) * dt
        old_d = d
    return x


@torch.no_grad()
def dpmpp_2m_cfg_pp(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    s_in = x.new_ones([x.shape[0]])
    old_uncond = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        uncond = _uncond(model, denoised)
        if callback is not None:
            callback(i, x, denoised)
        t, t_next = _t(sigmas[i]), _t(sigmas[i + 1])
        h = t_next - t
        if old_uncond is None or sigmas[i + 1] == 0:
            mix = -torch.exp(-h) * uncond
        else:
            r = (t - _t(sigmas[i - 1])) / h
            mix = -torch.exp(-h) * uncond - torch.expm1(-h) * (1 / (2 * r)) * (denoised - old_uncond)
        x = denoised + mix + torch.exp(-h) * x
        old_uncond = uncond
    return x


def _er_noise_scaler(x: torch.Tensor) -> torch.Tensor:
    return x * ((x**0.3).exp() + 10.0)


@torch.no_grad()
def er_sde(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None,
           max_stage: int = 3) -> torch.Tensor:
    s_in = x.new_ones([x.shape[0]])
    points = 200.0
    indices = torch.arange(0, points, dtype=torch.float32, device=x.device)
    lambdas = _t(sigmas).neg().exp()  # sigma / alpha: sigma itself for these models
    old_denoised = old_denoised_d = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        if callback is not None:
            callback(i, x, denoised)
        stage = min(max_stage, i + 1)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            lambda_s, lambda_t = lambdas[i], lambdas[i + 1]
            alpha_s, alpha_t = sigmas[i] / lambda_s, sigmas[i + 1] / lambda_t
            r = _er_noise_scaler(lambda_t) / _er_noise_scaler(lambda_s)
            x = alpha_t / alpha_s * r * x + alpha_t * (1 - r) * denoised
            if stage >= 2:
                dt = lambda_t - lambda_s
                step = -dt / points
                positions = lambda_t + indices * step
                scaled = _er_noise_scaler(positions)
                s = torch.sum(1 / scaled) * step
                denoised_d = (denoised - old_denoised) / (lambda_s - lambdas[i - 1])
                x = x + alpha_t * (dt + s * _er_noise_scaler(lambda_t)) * denoised_d
                if stage >= 3:
                    s_u = torch.sum((positions - lambda_s) / scaled) * step
                    denoised_u = (denoised_d - old_denoised_d) / ((lambda_s - lambdas[i - 2]) / 2)
                    x = x + alpha_t * ((dt**2) / 2 + s_u * _er_noise_scaler(lambda_t)) * denoised_u
                old_denoised_d = denoised_d
            spread = (lambda_t**2 - lambda_s**2 * r**2).sqrt().nan_to_num(nan=0.0)
            x = x + alpha_t * noise(sigmas[i], sigmas[i + 1]) * 1.0 * spread
        old_denoised = denoised
    return x


def _phi_1(h: torch.Tensor) -> torch.Tensor:
    return torch.expm1(h)


def _phi_2(h: torch.Tensor) -> torch.Tensor:
    return (torch.expm1(h) - h) / h


@torch.no_grad()
def seeds(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None,
          stages: int = 2) -> torch.Tensor:
    """SEEDS-2 (midpoint r = 1/2) or SEEDS-3 (r = 1/3, 2/3) in half-log-SNR time, eta 1, with the noise of each
    sub-step carried into the next as ComfyUI does."""
    s_in = x.new_ones([x.shape[0]])
    eta = 1.0
    r_1, r_2 = (0.5, None) if stages == 2 else (1.0 / 3, 2.0 / 3)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        if callback is not None:
            callback(i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        lambda_s, lambda_t = _t(sigmas[i]), _t(sigmas[i + 1])
        h = lambda_t - lambda_s
        h_eta = h * (eta + 1)
        lambda_s_1 = torch.lerp(lambda_s, lambda_t, r_1)
        sigma_s_1 = lambda_s_1.neg().exp()
        alpha_s_1 = sigma_s_1 * lambda_s_1.exp()
        alpha_t = sigmas[i + 1] * lambda_t.exp()
        x_2 = sigma_s_1 / sigmas[i] * (-r_1 * h * eta).exp() * x - alpha_s_1 * _phi_1(-r_1 * h_eta) * denoised
        sde_noise = (-2 * r_1 * h * eta).expm1().neg().sqrt() * noise(sigmas[i], sigma_s_1)
        x_2 = x_2 + sde_noise * sigma_s_1 * 1.0
        denoised_2 = model(x_2, sigma_s_1 * s_in)
        if stages == 2:
            denoised_d = torch.lerp(denoised, denoised_2, 1 / (2 * r_1))
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * _phi_1(-h_eta) * denoised_d
            last_sigma, last_r = sigma_s_1, r_1
        else:
            lambda_s_2 = torch.lerp(lambda_s, lambda_t, r_2)
            sigma_s_2 = lambda_s_2.neg().exp()
            alpha_s_2 = sigma_s_2 * lambda_s_2.exp()
            a3_2 = r_2 / r_1 * _phi_2(-r_2 * h_eta)
            a3_1 = _phi_1(-r_2 * h_eta) - a3_2
            x_3 = sigma_s_2 / sigmas[i] * (-r_2 * h * eta).exp() * x - alpha_s_2 * (a3_1 * denoised + a3_2 * denoised_2)
            segment = (r_1 - r_2) * h * eta
            sde_noise = sde_noise * segment.exp()
            sde_noise = sde_noise + segment.mul(2).expm1().neg().sqrt() * noise(sigma_s_1, sigma_s_2)
            x_3 = x_3 + sde_noise * sigma_s_2 * 1.0
            denoised_3 = model(x_3, sigma_s_2 * s_in)
            b3 = _phi_2(-h_eta) / r_2
            b1 = _phi_1(-h_eta) - b3
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x - alpha_t * (b1 * denoised + b3 * denoised_3)
            last_sigma, last_r = sigma_s_2, r_2
        segment = (last_r - 1) * h * eta
        sde_noise = sde_noise * segment.exp()
        sde_noise = sde_noise + segment.mul(2).expm1().neg().sqrt() * noise(last_sigma, sigmas[i + 1])
        x = x + sde_noise * sigmas[i + 1] * 1.0
    return x
