"""k-diffusion style samplers: short functions over a denoiser, as ComfyUI runs them.

Every sampler takes ``model(x, sigma) -> denoised`` (``x = x0 + sigma * noise``, ``sigma`` a tensor of one
value per batch item), the starting latent and the sigmas (ending in 0 for a full run), and returns the
final latent. ``callback(i, x, denoised)`` is called once per step. Ancestral samplers take a
``noise(sigma, sigma_next)`` sampler (:mod:`nodes.sampling.noise`). The algorithms are Crowson's
k-diffusion ones (eta 1, s_noise 1, no churn) with ComfyUI's choices where it made its own; each function
says which paper or method it is.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[int, torch.Tensor, torch.Tensor], None] | None
Noise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _ones(x: torch.Tensor) -> torch.Tensor:
    return x.new_ones([x.shape[0]])


def _report(callback: Callback, i: int, x: torch.Tensor, denoised: torch.Tensor) -> None:
    if callback is not None:
        callback(i, x, denoised)


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The probability-flow ODE's derivative dx/dsigma (Karras et al. 2022, eq. 4 with sigma(t) = t)."""
    return (x - denoised) / sigma.view(sigma.shape + (1,) * (x.ndim - sigma.ndim))


def ancestral_step(sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma_down, sigma_up): step deterministically to sigma_down, then add noise of sigma_up."""
    if not eta:
        return sigma_next, torch.zeros_like(sigma_next)
    sigma_up = min(sigma_next, eta * (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
    sigma_down = (sigma_next**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


@torch.no_grad()
def euler(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """Euler steps of the ODE (Karras et al. 2022, algorithm 2 without churn)."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        _report(callback, i, x, denoised)
        x = x + d * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def euler_ancestral(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise,
                    callback: Callback = None) -> torch.Tensor:
    """Euler to sigma_down, then fresh noise of sigma_up; the last step (to 0) returns the prediction."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1])
        _report(callback, i, x, denoised)
        if sigma_down == 0:
            x = denoised
        else:
            d = to_d(x, sigmas[i], denoised)
            x = x + d * (sigma_down - sigmas[i]) + noise(sigmas[i], sigmas[i + 1]) * 1.0 * sigma_up
    return x


@torch.no_grad()
def heun(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """Heun's method: an Euler predictor and a trapezoid corrector; plain Euler for the step to 0."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        _report(callback, i, x, denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1] * s_in))
            x = x + (d + d_2) / 2 * dt
    return x


@torch.no_grad()
def heunpp2(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """Heun++ (from the sd-webui-samplers-scheduler extension): up to three evaluations per step,
    weighted by the sigmas relative to the first."""
    s_in = _ones(x)
    s_end = sigmas[-1]
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        _report(callback, i, x, denoised)
        dt = sigmas[i + 1] - sigmas[i]
        if sigmas[i + 1] == s_end:
            x = x + d * dt
        elif sigmas[i + 2] == s_end:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1] * s_in))
            w2 = sigmas[i + 1] / (2 * sigmas[0])
            x = x + (d * (1 - w2) + d_2 * w2) * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigmas[i + 1], model(x_2, sigmas[i + 1] * s_in))
            x_3 = x_2 + d_2 * (sigmas[i + 2] - sigmas[i + 1])
            d_3 = to_d(x_3, sigmas[i + 2], model(x_3, sigmas[i + 2] * s_in))
            w = 3 * sigmas[0]
            w2, w3 = sigmas[i + 1] / w, sigmas[i + 2] / w
            x = x + ((1 - w2 - w3) * d + w2 * d_2 + w3 * d_3) * dt
    return x


@torch.no_grad()
def dpm_2(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """DPM-Solver-2 in sigma (Karras et al. 2022's variant): a midpoint evaluation at the geometric mean."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        d = to_d(x, sigmas[i], denoised)
        _report(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = x + d * (sigmas[i + 1] - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigmas[i + 1].log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid * s_in))
            x = x + d_2 * (sigmas[i + 1] - sigmas[i])
    return x


@torch.no_grad()
def dpm_2_ancestral(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise,
                    callback: Callback = None) -> torch.Tensor:
    """DPM-Solver-2 to sigma_down, then fresh noise of sigma_up."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1])
        _report(callback, i, x, denoised)
        d = to_d(x, sigmas[i], denoised)
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigma_down.log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid * s_in))
            x = x + d_2 * (sigma_down - sigmas[i])
            x = x + noise(sigmas[i], sigmas[i + 1]) * 1.0 * sigma_up
    return x


def _lms_coefficient(order: int, t: list[float], i: int, j: int) -> float:
    """Integral over [t_i, t_i+1] of the j-th Lagrange basis polynomial on the last ``order`` points."""
    from scipy import integrate

    def basis(tau: float) -> float:
        prod = 1.0
        for k in range(order):
            if j != k:
                prod *= (tau - t[i - k]) / (t[i - j] - t[i - k])
        return prod

    return integrate.quad(basis, t[i], t[i + 1], epsrel=1e-4)[0]


@torch.no_grad()
def lms(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None, order: int = 4) -> torch.Tensor:
    """Linear multistep of order 4 on the sigma grid; the last step (to 0) returns the prediction."""
    s_in = _ones(x)
    grid = sigmas.detach().cpu().numpy()
    ds: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        ds.append(to_d(x, sigmas[i], denoised))
        if len(ds) > order:
            ds.pop(0)
        _report(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            current = min(i + 1, order)
            coeffs = [_lms_coefficient(current, grid, i, j) for j in range(current)]
            x = x + sum(c * d for c, d in zip(coeffs, reversed(ds)))
    return x


def _t(sigma: torch.Tensor) -> torch.Tensor:
    return sigma.log().neg()


def _sigma(t: torch.Tensor) -> torch.Tensor:
    return t.neg().exp()


@torch.no_grad()
def dpmpp_2s_ancestral(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise,
                       callback: Callback = None) -> torch.Tensor:
    """DPM-Solver++(2S) (Lu et al. 2022) to sigma_down with a midpoint evaluation, then noise of sigma_up."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        sigma_down, sigma_up = ancestral_step(sigmas[i], sigmas[i + 1])
        _report(callback, i, x, denoised)
        if sigma_down == 0:
            x = x + to_d(x, sigmas[i], denoised) * (sigma_down - sigmas[i])
        else:
            t, t_next = _t(sigmas[i]), _t(sigma_down)
            h = t_next - t
            s = t + 0.5 * h
            x_2 = (_sigma(s) / _sigma(t)) * x - (-h * 0.5).expm1() * denoised
            denoised_2 = model(x_2, _sigma(s) * s_in)
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * denoised_2
        if sigmas[i + 1] > 0:
            x = x + noise(sigmas[i], sigmas[i + 1]) * 1.0 * sigma_up
    return x


@torch.no_grad()
def dpmpp_2m(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None) -> torch.Tensor:
    """DPM-Solver++(2M) in t = -log(sigma); first-order on the first step and on the step to 0."""
    s_in = _ones(x)
    old_denoised = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        _report(callback, i, x, denoised)
        t, t_next = _t(sigmas[i]), _t(sigmas[i + 1])
        h = t_next - t
        if old_denoised is None or sigmas[i + 1] == 0:
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * denoised
        else:
            r = (t - _t(sigmas[i - 1])) / h
            denoised_d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (_sigma(t_next) / _sigma(t)) * x - (-h).expm1() * denoised_d
        old_denoised = denoised
    return x


@torch.no_grad()
def dpmpp_sde(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise,
              callback: Callback = None, r: float = 0.5) -> torch.Tensor:
    """DPM-Solver++ (stochastic, second order, midpoint at ratio ``r``) with Brownian-tree noise."""
    s_in = _ones(x)
    fac = 1 / (2 * r)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        _report(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        lambda_s, lambda_t = _t(sigmas[i]), _t(sigmas[i + 1])
        h = lambda_t - lambda_s
        lambda_s_1 = lambda_s + r * h
        sigma_s_1 = _sigma(lambda_s_1)
        alpha_s = sigmas[i] * lambda_s.exp()
        alpha_s_1 = sigma_s_1 * lambda_s_1.exp()
        alpha_t = sigmas[i + 1] * lambda_t.exp()
        # step 1: to the midpoint, with its share of the noise
        sd, su = ancestral_step(lambda_s.neg().exp(), lambda_s_1.neg().exp())
        h_ = sd.log().neg() - lambda_s
        x_2 = (alpha_s_1 / alpha_s) * (-h_).exp() * x - alpha_s_1 * (-h_).expm1() * denoised
        x_2 = x_2 + alpha_s_1 * noise(sigmas[i], sigma_s_1) * 1.0 * su
        denoised_2 = model(x_2, sigma_s_1 * s_in)
        # step 2: the whole step with the blended prediction
        sd, su = ancestral_step(lambda_s.neg().exp(), lambda_t.neg().exp())
        h_ = sd.log().neg() - lambda_s
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * denoised_d
        x = x + alpha_t * noise(sigmas[i], sigmas[i + 1]) * 1.0 * su
    return x


@torch.no_grad()
def dpmpp_multistep_sde(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise,
                        callback: Callback = None, order: int = 2, solver: str = "midpoint") -> torch.Tensor:
    """DPM-Solver++(2M) SDE (``order`` 2, midpoint or heun corrector) and (3M) SDE (``order`` 3), eta 1."""
    s_in = _ones(x)
    eta = 1.0
    denoised_1 = denoised_2 = None
    h = h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        _report(callback, i, x, denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            lambda_s, lambda_t = _t(sigmas[i]), _t(sigmas[i + 1])
            h = lambda_t - lambda_s
            h_eta = h * (eta + 1)
            alpha_t = sigmas[i + 1] * lambda_t.exp()
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
            if order == 3 and h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0 = (denoised - denoised_1) / r0
                d1_1 = (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                phi_3 = phi_2 / h_eta - 0.5
                x = x + (alpha_t * phi_2) * d1 - (alpha_t * phi_3) * d2
            elif order == 3 and h_1 is not None:
                phi_2 = h_eta.neg().expm1() / h_eta + 1
                x = x + (alpha_t * phi_2) * ((denoised - denoised_1) / (h_1 / h))
            elif order == 2 and denoised_1 is not None:
                r = h_1 / h
                if solver == "heun":
                    x = x + alpha_t * ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (denoised - denoised_1)
                else:
                    x = x + 0.5 * alpha_t * (-h_eta).expm1().neg() * (1 / r) * (denoised - denoised_1)
            x = x + noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt() * 1.0
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


@torch.no_grad()
def ddpm(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None) -> torch.Tensor:
    """Ancestral DDPM steps (Ho et al. 2020) in the variance-preserving form of x."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        _report(callback, i, x, denoised)
        sigma, sigma_prev = sigmas[i], sigmas[i + 1]
        eps = (x - denoised) / sigmas[i]
        x_vp = x / torch.sqrt(1.0 + sigmas[i] ** 2.0)
        alpha_cumprod = 1 / ((sigma * sigma) + 1)
        alpha_cumprod_prev = 1 / ((sigma_prev * sigma_prev) + 1)
        alpha = alpha_cumprod / alpha_cumprod_prev
        mu = (1.0 / alpha).sqrt() * (x_vp - (1 - alpha) * eps / (1 - alpha_cumprod).sqrt())
        if sigma_prev > 0:
            mu += ((1 - alpha) * (1.0 - alpha_cumprod_prev) / (1.0 - alpha_cumprod)).sqrt() * noise(sigma, sigma_prev)
        x = mu
        if sigmas[i + 1] != 0:
            x *= torch.sqrt(1.0 + sigmas[i + 1] ** 2.0)
    return x


@torch.no_grad()
def lcm(model: Model, x: torch.Tensor, sigmas: torch.Tensor, noise: Noise, callback: Callback = None) -> torch.Tensor:
    """Latent consistency sampling: jump to the prediction, re-noise to the next sigma."""
    s_in = _ones(x)
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in)
        _report(callback, i, x, denoised)
        x = denoised
        if sigmas[i + 1] > 0:
            x = noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] + x
    return x


@torch.no_grad()
def ipndm(model: Model, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback = None,
          max_order: int = 4, variable: bool = False) -> torch.Tensor:
    """Improved pseudo-numerical (Adams-Bashforth) steps on the ODE (Zhang & Chen 2023); ``variable`` uses
    coefficients for uneven step sizes (iPNDM-v)."""
    s_in = _ones(x)
    buffer: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, t_cur * s_in)
        _report(callback, i, x, denoised)
        d_cur = (x - denoised) / t_cur
        order = min(max_order, i + 1)
        if t_next == 0:
            x_next = denoised
        elif order == 1:
            x_next = x + (t_next - t_cur) * d_cur
        elif not variable:
            weights = {2: (3, -1), 3: (23, -16, 5), 4: (55, -59, 37, -9)}[order]
            scale = {2: 2, 3: 12, 4: 24}[order]
            total = weights[0] * d_cur
            for w, past in zip(weights[1:], reversed(buffer)):
                total = total + w * past
            x_next = x + (t_next - t_cur) * total / scale
        else:
            x_next = x + (t_next - t_cur) * _ipndm_v_step(sigmas, i, order, d_cur, buffer)
        if len(buffer) == max_order - 1:
            buffer = [*buffer[1:], d_cur]
        else:
            buffer.append(d_cur)
        x = x_next
    return x


def _ipndm_v_step(t: torch.Tensor, i: int, order: int, d_cur: torch.Tensor, buffer: list[torch.Tensor]) -> torch.Tensor:
    h_n = t[i + 1] - t[i]
    h_1 = t[i] - t[i - 1]
    if order == 2:
        return (2 + h_n / h_1) / 2 * d_cur - (h_n / h_1) / 2 * buffer[-1]
    h_2 = t[i - 1] - t[i - 2]
    temp1 = (1 - h_n / (3 * (h_n + h_1)) * (h_n * (h_n + h_1)) / (h_1 * (h_1 + h_2))) / 2
    if order == 3:
        c1 = (2 + h_n / h_1) / 2 + temp1
        c2 = -(h_n / h_1) / 2 - (1 + h_1 / h_2) * temp1
        c3 = temp1 * h_1 / h_2
        return c1 * d_cur + c2 * buffer[-1] + c3 * buffer[-2]
    h_3 = t[i - 2] - t[i - 3]
    temp2 = ((1 - h_n / (3 * (h_n + h_1))) / 2 + (1 - h_n / (2 * (h_n + h_1))) * h_n / (6 * (h_n + h_1 + h_2))) \
        * (h_n * (h_n + h_1) * (h_n + h_1 + h_2)) / (h_1 * (h_1 + h_2) * (h_1 + h_2 + h_3))
    ratio = h_1 * (h_1 + h_2) / (h_2 * (h_2 + h_3))
    c1 = (2 + h_n / h_1) / 2 + temp1 + temp2
    c2 = -(h_n / h_1) / 2 - (1 + h_1 / h_2) * temp1 - (1 + h_1 / h_2 + ratio) * temp2
    c3 = temp1 * h_1 / h_2 + (h_1 / h_2 + ratio * (1 + h_2 / h_3)) * temp2
    c4 = -temp2 * ratio * h_1 / h_2
    return c1 * d_cur + c2 * buffer[-1] + c3 * buffer[-2] + c4 * buffer[-3]
