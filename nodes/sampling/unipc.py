"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework"), multistep, predicting x0,
as ComfyUI runs it for its ``uni_pc`` (variant B(h) = h, "bh1") and ``uni_pc_bh2`` (B(h) = e^h - 1) names.

ComfyUI's way of driving it, kept here because it decides the numbers: the solver's time variable is sigma
itself (alpha = 1 / sqrt(1 + sigma^2), std = sigma * alpha); a final sigma of 0 is replaced by 0.001; the
solver works on x / sqrt(1 + sigma_0^2) and the result is divided by the last alpha; the order is
min(3, number of sigmas - 2) with lower orders on the last steps; the last step runs no corrector.
"""

from __future__ import annotations

import torch

from nodes.sampling.k_samplers import Callback, Model


def _log_alpha(sigma: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.log(1 / ((sigma * sigma) + 1))


def _alpha(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(_log_alpha(t))


def _std(t: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(1.0 - torch.exp(2.0 * _log_alpha(t)))


def _lambda(t: torch.Tensor) -> torch.Tensor:
    log_alpha = _log_alpha(t)
    return log_alpha - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha))


def _expand(v: torch.Tensor, dims: int) -> torch.Tensor:
    return v[(...,) + (None,) * (dims - 1)]


class _Solver:
    def __init__(self, model: Model, variant: str) -> None:
        self.model = model
        self.variant = variant

    def data_prediction(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x0 from the model, through the noise prediction as the solver's own code computes it."""
        sigma = t.view(t.shape[:1] + (1,) * (x.ndim - 1))
        scaled = x * ((sigma**2 + 1.0) ** 0.5)
        noise = (scaled - self.model(scaled, t)) / sigma
        return (x - _expand(_std(t), x.dim()) * noise) / _expand(_alpha(t), x.dim())

    def update(self, x: torch.Tensor, model_prev: list[torch.Tensor], t_prev: list[torch.Tensor], t: torch.Tensor,
               order: int, use_corrector: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One multistep predictor(-corrector) step from the last of ``t_prev`` to ``t``."""
        dims = x.dim()
        t_prev_0, model_prev_0 = t_prev[-1], model_prev[-1]
        lambda_prev_0, lambda_t = _lambda(t_prev_0), _lambda(t)
        sigma_prev_0, sigma_t = _std(t_prev_0), _std(t)
        alpha_t = torch.exp(_log_alpha(t))
        h = lambda_t - lambda_prev_0

        rks, d1s = [], []
        for i in range(1, order):
            rk = ((_lambda(t_prev[-(i + 1)]) - lambda_prev_0) / h)[0]
            rks.append(rk)
            d1s.append((model_prev[-(i + 1)] - model_prev_0) / rk)
        rks.append(1.0)
        rks_t = torch.tensor(rks, device=x.device)

        hh = -h[0]
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial = 1
        b_h = hh if self.variant == "bh1" else torch.expm1(hh)
        rows, b = [], []
        for i in range(1, order + 1):
            rows.append(torch.pow(rks_t, i - 1))
            b.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        r_matrix = torch.stack(rows)
        b_t = torch.tensor(b, device=x.device)

        d1s_t = torch.stack(d1s, dim=1) if d1s else None
        rhos_p = None
        if d1s_t is not None:
            rhos_p = torch.tensor([0.5], device=x.device) if order == 2 else torch.linalg.solve(r_matrix[:-1, :-1], b_t[:-1])
        rhos_c = None
        if use_corrector:
            rhos_c = torch.tensor([0.5], device=x.device) if order == 1 else torch.linalg.solve(r_matrix, b_t)

        x_t_ = _expand(sigma_t / sigma_prev_0, dims) * x - _expand(alpha_t * h_phi_1, dims) * model_prev_0
        pred_res = torch.einsum("k,bkchw->bchw", rhos_p, d1s_t) if d1s_t is not None else 0
        x_t = x_t_ - _expand(alpha_t * b_h, dims) * pred_res
        model_t = None
        if use_corrector:
            model_t = self.data_prediction(x_t, t)
            corr_res = torch.einsum("k,bkchw->bchw", rhos_c[:-1], d1s_t) if d1s_t is not None else 0
            d1_t = model_t - model_prev_0
            x_t = x_t_ - _expand(alpha_t * b_h, dims) * (corr_res + rhos_c[-1] * d1_t)
        return x_t, model_t


@torch.no_grad()
def uni_pc(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None,
           variant: str = "bh1") -> torch.Tensor:
    """UniPC over ``sigmas`` (see the module docstring for ComfyUI's conventions)."""
    timesteps = sigmas.clone()
    if sigmas[-1] == 0:
        timesteps[-1] = 0.001
    x = x / torch.sqrt(1.0 + timesteps[0] ** 2.0)
    order = min(3, len(timesteps) - 2)
    solver = _Solver(model, variant)
    steps = len(timesteps) - 1
    if steps < order or order < 1:
        raise ValueError(f"UniPC needs at least 2 steps with this schedule, found {steps}")

    def at(k: int) -> torch.Tensor:
        return timesteps[k].expand(x.shape[0])

    model_prev = [solver.data_prediction(x, at(0))]
    t_prev = [at(0)]
    for step_index in range(steps):
        if step_index == 0:
            pass
        elif step_index < order:
            x, model_x = solver.update(x, model_prev, t_prev, at(step_index), step_index, use_corrector=True)
            if model_x is None:
                model_x = solver.data_prediction(x, at(step_index))
            model_prev.append(model_x)
            t_prev.append(at(step_index))
        else:
            last = step_index == steps - 1
            for step in range(step_index, step_index + 1 + (1 if last else 0)):
                step_order = min(order, steps + 1 - step)
                x, model_x = solver.update(x, model_prev, t_prev, at(step), step_order, use_corrector=step != steps)
                model_prev = [*model_prev[1:], model_prev[-1]] if len(model_prev) == order else model_prev
                t_prev = [*t_prev[1:], at(step)] if len(t_prev) == order else [*t_prev[:-1], at(step)]
                if step < steps:
                    if model_x is None:
                        model_x = solver.data_prediction(x, at(step))
                    model_prev[-1] = model_x
        if callback is not None:
            callback(step_index, x, model_prev[-1])
    return x / _alpha(timesteps[-1])
