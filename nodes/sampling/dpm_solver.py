"""DPM-Solver (Lu et al. 2022) as ComfyUI runs it, from the first sigma down to the smallest nonzero one:

- ``dpm_fast``: fixed step sizes, orders 3, 3, ..., then lower orders so that the model is called exactly
  ``n`` times, in t = -log(sigma) evenly spaced;
- ``dpm_adaptive``: orders 2 and 3 side by side, the step size set by a PID controller from their difference
  (rtol 0.05, atol 0.0078), so the number of model calls follows the model, not the schedule.
"""

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


def _step(eps: _Eps, cache: dict, x: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, order: int,
          r1: float = 1 / 2) -> torch.Tensor:
    h = t_next - t
    e = eps(cache, "eps", x, t)
    if order == 1:
        return x - _sigma(t_next) * h.expm1() * e
    if order == 2:
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


class _PID:
    """The step-size controller of DPM-Solver's adaptive mode (integral term only, as ComfyUI sets it)."""

    def __init__(self, h: float, order: float, pcoeff: float = 0.0, icoeff: float = 1.0, dcoeff: float = 0.0,
                 accept_safety: float = 0.81, eps: float = 1e-8) -> None:
        self.h = h
        self.b1 = (pcoeff + icoeff + dcoeff) / order
        self.b2 = -(pcoeff + 2 * dcoeff) / order
        self.b3 = dcoeff / order
        self.accept_safety = accept_safety
        self.eps = eps
        self.errs: list[float] = []

    def propose_step(self, error: torch.Tensor) -> bool:
        inv_error = 1 / (float(error) + self.eps)
        if not self.errs:
            self.errs = [inv_error, inv_error, inv_error]
        self.errs[0] = inv_error
        factor = self.errs[0] ** self.b1 * self.errs[1] ** self.b2 * self.errs[2] ** self.b3
        factor = 1 + math.atan(factor - 1)
        accept = factor >= self.accept_safety
        if accept:
            self.errs[2] = self.errs[1]
            self.errs[1] = self.errs[0]
        self.h *= factor
        return accept


@torch.no_grad()
def dpm_adaptive(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None,
                 rtol: float = 0.05, atol: float = 0.0078, h_init: float = 0.05, max_calls: int = 10000) -> torch.Tensor:
    """Adaptive DPM-Solver-23 from sigmas[0] down to the smallest nonzero sigma."""
    if len(sigmas) <= 1:
        return x
    sigma_min = sigmas[-1] if sigmas[-1] != 0 else sigmas[-2]
    t_start, t_end = _t(torch.tensor(float(sigmas[0]))), _t(torch.tensor(float(sigma_min)))
    atol_t, rtol_t = torch.tensor(atol), torch.tensor(rtol)
    eps = _Eps(model)
    s, x_prev = t_start, x
    pid = _PID(abs(h_init), order=3)
    step = calls = 0
    while s < t_end - 1e-5 and calls < max_calls:
        cache: dict = {}
        t = torch.minimum(t_end, s + pid.h)
        e = eps(cache, "eps", x, s)
        x_low = _step(eps, cache, x, s, t, 2, r1=1 / 3)
        x_high = _step(eps, cache, x, s, t, 3)
        calls += len(cache)
        delta = torch.maximum(atol_t, rtol_t * torch.maximum(x_low.abs(), x_prev.abs()))
        error = torch.linalg.norm((x_low - x_high) / delta) / x.numel() ** 0.5
        if pid.propose_step(error):
            if callback is not None:
                callback(step, x, x - _sigma(s) * e)
            x_prev, x, s = x_low, x_high, t
            step += 1
    return x
