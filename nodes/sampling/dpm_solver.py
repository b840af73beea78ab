"""DPM-Solver (Lu et al. 2022) with fixed step sizes ("dpm_fast" in ComfyUI): orders 3, 3, ..., then
lower orders so that the model is called exactly ``n`` times, in t = -log(sigma) evenly spaced."""

from __future__ import annotations

import math

import torch

from nodes.sampling.k_samplers import Callback, Model


def _sigma(t: torch.Tensor) -> torch.Tensor:
    return t.neg().exp()


def _t(sigma: torch.Tensor) -> torch.Tensor:
    return -sigma.log()


class _Eps:
    """The model as a noise predictor at time t, with each evaluation cached per step."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def __call__(self, cache: dict, key: str, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if key not in cache:
            sigma = _sigma(t) * x.new_ones([x.shape[0]])
            cache[key] = (x - self.model(x, sigma)) / _sigma(t)
        return cache[key]


def _step(eps: _Eps, cache: dict, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, order: int) -> torch.Tensor:
    h = t_next - t
    e = eps(cache, "eps", x, t)
    if order == 1:
        return x - _sigma(t_next) * h.expm1() * e
    if order == 2:
        r1 = 1 / 2
        s1 = t + r1 * h
        u1 = x - _sigma(s1) * (r1 * h).expm1() * e
        e_r1 = eps(cache, "eps_r1", u1, s1)
        return x - _sigma(t_next) * h.expm1() * e - _sigma(t_next) / (2 * r1) * h.expm1() * (e_r1 - e)
    r1, r2 = 1 / 3, 2 / 3
    s1, s2 = t + r1 * h, t + r2 * h
    u1 = x - _sigma(s1) * (r1 * h).expm1() * e
    e_r1 = eps(cache, "eps_r1", u1, s1)
    u2 = x - _sigma(s2) * (r2 * h).expm1() * e - _sigma(s2) * (r2 / r1) * ((r2 * h).expm1() / (r2 * h) - 1) * (e_r1 - e)
    e_r2 = eps(cache, "eps_r2", u2, s2)
    return x - _sigma(t_next) * h.expm1() * e - _sigma(t_next) / r2 * (h.expm1() / h - 1) * (e_r2 - e)


@torch.no_grad()
def dpm_fast(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """DPM-Solver-fast from sigmas[0] down to the smallest nonzero sigma, in ``len(sigmas) - 1`` model calls."""
    if len(sigmas) <= 1:
        return x
    sigma_min = sigmas[-1] if sigmas[-1] != 0 else sigmas[-2]
    nfe = len(sigmas) - 1
    t_start, t_end = _t(torch.tensor(float(sigmas[0]))), _t(torch.tensor(float(sigma_min)))
    m = math.floor(nfe / 3) + 1
    ts = torch.linspace(t_start, t_end, m + 1, device=x.device)
    orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
    eps = _Eps(model)
    for i, order in enumerate(orders):
        cache: dict = {}
        t, t_next = ts[i], ts[i + 1]
        e = eps(cache, "eps", x, t)
        if callback is not None:
            callback(i, x, x - _sigma(t) * e)
        x = _step(eps, cache, x, t, t_next, order)
    return x
