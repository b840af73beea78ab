"""CFG++ (Chung et al. 2024, "CFG++: Manifold-constrained Classifier Free Guidance"): the step direction
comes from the unconditional prediction, the landing point from the guided one.

The model must offer the last unconditional prediction as ``model.last_uncond`` (the ComfyUI-semantics
denoiser does, and always evaluates it, even at CFG 1, as ComfyUI does for these samplers).
"""

from __future__ import annotations

import torch

from nodes.sampling.k_samplers import Callback, Model, Noise, ancestral_step, to_d


@torch.no_grad()
def euler_cfg_pp(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise | None,
                 callback: Callback = None) -> torch.Tensor:
    """Euler (``noise`` None) or Euler ancestral CFG++ for variance-exploding sigmas."""
    s_in = x.new_ones([x.shape[0]])
    eta = 1.0 if noise is not None else 0.0
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        uncond = getattr(model, "last_uncond", None)
        if uncond is None:
            uncond = denoised
        if callback is not None:
            callback(i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        alpha_s = sigmas[i] * sigmas[i].log().neg().exp()
        alpha_t = sigmas[i + 1] * sigmas[i + 1].log().neg().exp()
        d = to_d(x, sigmas[i], alpha_s * uncond)
        sigma_down, sigma_up = ancestral_step(sigmas[i] / alpha_s, sigmas[i + 1] / alpha_t, eta=eta)
        x = alpha_t * denoised + alpha_t * sigma_down * d
        if noise is not None:
            x = x + alpha_t * noise(sigmas[i], sigmas[i + 1]) * 1.0 * sigma_up
    return x


@torch.no_grad()
def dpmpp_2s_ancestral_cfg_pp(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise,
                              callback: Callback = None) -> torch.Tensor:
    """DPM-Solver++(2S) ancestral with CFG++: steps from the unconditional prediction, plus the guidance."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        uncond = getattr(model, "last_uncond", None)
        uncond = denoised if uncond is None else uncond
        guidance = denoised - uncond
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1])
        if callback is not None:
            callback(i, x, denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], uncond) * (sigma_down - sigmas[i])
        else:
            t, t_next = sigmas[i].log().neg(), sigma_down.log().neg()
            h = t_next - t
            s = t + 0.5 * h
            x_2 = (s.neg().exp() / t.neg().exp()) * x - (-h * 0.5).expm1() * uncond
            denoised_2 = model(x_2, s.neg().exp() * s_in)
            uncond_2 = getattr(model, "last_uncond", None)
            uncond_2 = denoised_2 if uncond_2 is None else uncond_2
            x = (t_next.neg().exp() / t.neg().exp()) * x - (-h).expm1() * uncond_2
        if sigmas[i + 1] > 0:
            x = x + noise(sigmas[i], sigmas[i + 1]) * 1.0 * sigma_up
        x += guidance
    return x
