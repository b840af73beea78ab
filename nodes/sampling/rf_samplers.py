"""Samplers that ComfyUI runs differently on flow-matching (rectified flow) models.

On a flow model ``x = (1 - sigma) * x0 + sigma * noise``, so adding fresh noise must also shrink the signal: ComfyUI
switches its ancestral samplers to "RF" variants there. Same calling convention as :mod:`nodes.sampling.k_samplers`
(``model(x, sigma) -> denoised``, a ``noise(sigma, sigma_next)`` sampler, ``callback(i, x, denoised)``).
"""

from __future__ import annotations

import torch

from nodes.sampling.k_samplers import Callback, Model, Noise


@torch.no_grad()
def euler_ancestral_rf(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise,
                       callback: Callback = None, eta: float = 1.0) -> torch.Tensor:
    """Euler down to ``sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)`` by interpolating towards the
    prediction, then rescale the signal to ``1 - sigma_next`` and add the noise that brings it back to
    ``sigma_next``; the last step (to 0) returns the prediction."""
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        if callback is not None:
            callback(i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        downstep_ratio = 1 + (sigmas[i + 1] / sigmas[i] - 1) * eta
        sigma_down = sigmas[i + 1] * downstep_ratio
        alpha_next = 1 - sigmas[i + 1]
        alpha_down = 1 - sigma_down
        renoise = (sigmas[i + 1] ** 2 - sigma_down**2 * alpha_next**2 / alpha_down**2) ** 0.5
        ratio = sigma_down / sigmas[i]
        x = ratio * x + (1 - ratio) * denoised
        if eta > 0:
            x = (alpha_next / alpha_down) * x + noise(sigmas[i], sigmas[i + 1]) * 1.0 * renoise
    return x
