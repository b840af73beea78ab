"""ComfyUI's noise levels: the model's discretisation and the sigma schedules its scheduler names choose.

A discrete-time model (SD1.5, SDXL: trained on timesteps 0..999) has 1000 noise levels
``sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t)``. :class:`DiscreteSigmas` holds them as ComfyUI does
(betas and their cumulative product in float64, the table in float32), maps a sigma to the timestep the
model is fed (the index of the nearest log sigma: an integer, never interpolated) and a fractional timestep
to a sigma (linear interpolation of log sigma).

:data:`SCHEDULERS` builds the ``steps + 1`` sigmas (ending in 0) for each ComfyUI scheduler name;
:func:`sampling_sigmas` adds what ComfyUI's KSampler does around them (a denoise below 1, and the extra
step some samplers take and then drop). Torch expressions follow ComfyUI's in kind and order, so the
float32 results agree to the last bit where they can.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

TIMESTEPS = 1000


def _betas(schedule: str, start: float, end: float, n: int) -> torch.Tensor:
    """Betas in float64. ComfyUI's names: "linear" is linear in sqrt(beta) (diffusers' "scaled_linear"),
    "sqrt_linear" linear in beta (diffusers' "linear")."""
    if schedule == "linear":
        return torch.linspace(start**0.5, end**0.5, n, dtype=torch.float64) ** 2
    if schedule == "sqrt_linear":
        return torch.linspace(start, end, n, dtype=torch.float64)
    if schedule == "sqrt":
        return torch.linspace(start, end, n, dtype=torch.float64) ** 0.5
    if schedule == "cosine":
        steps = torch.arange(n + 1, dtype=torch.float64) / n + 8e-3
        alphas = torch.cos(steps / (1 + 8e-3) * math.pi / 2).pow(2)
        alphas = alphas / alphas[0]
        return torch.clamp(1 - alphas[1:] / alphas[:-1], min=0, max=0.999)
    raise ValueError(f"unknown beta schedule {schedule!r}")


# diffusers' scheduler config spelling -> ComfyUI's
_DIFFUSERS_SCHEDULES = {"scaled_linear": "linear", "linear": "sqrt_linear", "squaredcos_cap_v2": "cosine"}


class DiscreteSigmas:
    """The noise levels of a discrete-time model (ComfyUI's ``ModelSamplingDiscrete``)."""

    def __init__(self, schedule: str = "linear", start: float = 0.00085, end: float = 0.012,
                 timesteps: int = TIMESTEPS, prediction: str = "epsilon", betas: torch.Tensor | None = None) -> None:
        betas = _betas(schedule, start, end, timesteps) if betas is None else betas.to(torch.float64)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.sigmas = sigmas.float()
        self.log_sigmas = sigmas.log().float()
        self.alphas_cumprod = alphas_cumprod.float()
        self.prediction = prediction

    @classmethod
    def from_scheduler_config(cls, config: dict, prediction: str = "epsilon") -> DiscreteSigmas:
        """The levels a model's diffusers scheduler config describes (as ComfyUI reads them from the model)."""
        trained = config.get("trained_betas")
        schedule = _DIFFUSERS_SCHEDULES.get(config.get("beta_schedule", "scaled_linear"), "linear")
        return cls(schedule, float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012)),
                   int(config.get("num_train_timesteps", TIMESTEPS)), prediction,
                   torch.tensor(trained) if trained is not None else None)

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The model's timestep for ``sigma``: the index of the nearest log sigma."""
        dists = sigma.log().to(self.log_sigmas.device) - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).view(sigma.shape).to(sigma.device)

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        """The sigma at a fractional ``timestep`` (log sigma interpolated linearly)."""
        t = torch.clamp(timestep.float().to(self.log_sigmas.device), min=0, max=len(self.sigmas) - 1)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        log_sigma = (1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]
        return log_sigma.exp().to(timestep.device)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return self.sigma(torch.tensor((1.0 - percent) * 999.0)).item()

    # -- what a model call does with a sigma (ComfyUI's EPS and V_PREDICTION) ------------------------------

    def model_input(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The latent the UNet sees at ``sigma``: ``x / sqrt(sigma^2 + 1)``."""
        sigma = sigma.view(sigma.shape[:1] + (1,) * (x.ndim - 1))
        return x / (sigma**2 + 1.0) ** 0.5

    def denoised(self, x: torch.Tensor, output: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The clean latent implied by the model's ``output`` for input ``x`` at ``sigma``."""
        sigma = sigma.view(sigma.shape[:1] + (1,) * (output.ndim - 1))
        if self.prediction == "v_prediction":
            return x * 1.0 / (sigma**2 + 1.0) - output * sigma * 1.0 / (sigma**2 + 1.0) ** 0.5
        return x - output * sigma

    def noise_scaling(self, sigma: torch.Tensor, noise: torch.Tensor, latent: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        """The start of sampling: ``latent + noise * s`` with s = sqrt(1 + sigma^2) from pure noise, else sigma."""
        sigma = sigma.view(sigma.shape[:1] + (1,) * (noise.ndim - 1))
        noise = noise * torch.sqrt(1.0 + sigma**2.0) if max_denoise else noise * sigma
        return noise + latent


# -- the schedules -----------------------------------------------------------------------------------------


def _append_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_zeros([1])])


def karras(levels: DiscreteSigmas, steps: int, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022): evenly spaced in sigma^(1/rho)."""
    sigma_min, sigma_max = float(levels.sigma_min), float(levels.sigma_max)
    ramp = torch.linspace(0, 1, steps)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def exponential(levels: DiscreteSigmas, steps: int) -> torch.Tensor:
    """Evenly spaced in log sigma."""
    sigma_min, sigma_max = float(levels.sigma_min), float(levels.sigma_max)
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps).exp())


def normal(levels: DiscreteSigmas, steps: int, sgm: bool = False) -> torch.Tensor:
    """Evenly spaced in timestep from the last (999) to the first (0); ``sgm`` leaves out the last point."""
    start, end = levels.timestep(levels.sigma_max), levels.timestep(levels.sigma_min)
    append_zero = True
    if sgm:
        timesteps = torch.linspace(start, end, steps + 1)[:-1]
    else:
        if math.isclose(float(levels.sigma(end)), 0, abs_tol=0.00001):
            steps += 1
            append_zero = False
        timesteps = torch.linspace(start, end, steps)
    sigmas = [float(levels.sigma(t)) for t in timesteps]
    return torch.FloatTensor([*sigmas, 0.0] if append_zero else sigmas)


def sgm_uniform(levels: DiscreteSigmas, steps: int) -> torch.Tensor:
    return normal(levels, steps, sgm=True)


def simple(levels: DiscreteSigmas, steps: int) -> torch.Tensor:
    """Every (1000 / steps)-th table entry from the top."""
    stride = len(levels.sigmas) / steps
    return torch.FloatTensor([float(levels.sigmas[-(1 + int(k * stride))]) for k in range(steps)] + [0.0])


def ddim_uniform(levels: DiscreteSigmas, steps: int) -> torch.Tensor:
    """Table entries 1, 1 + c, 1 + 2c, ... (c = 1000 // steps), reversed: may give more than ``steps``."""
    x = 1
    if math.isclose(float(levels.sigmas[x]), 0, abs_tol=0.00001):
        steps += 1
        sigs: list[float] = []
    else:
        sigs = [0.0]
    stride = max(len(levels.sigmas) // steps, 1)
    while x < len(levels.sigmas):
        sigs.append(float(levels.sigmas[x]))
        x += stride
    return torch.FloatTensor(sigs[::-1])


def beta(levels: DiscreteSigmas, steps: int, alpha: float = 0.6, beta_: float = 0.6) -> torch.Tensor:
    """Timesteps at the quantiles of a Beta(0.6, 0.6) distribution (Lee et al. 2024), repeats dropped."""
    from scipy import stats

    total = len(levels.sigmas) - 1
    ts = np.rint(stats.beta.ppf(1 - np.linspace(0, 1, steps, endpoint=False), alpha, beta_) * total)
    sigs: list[float] = []
    last = -1.0
    for t in ts:
        if t != last:
            sigs.append(float(levels.sigmas[int(t)]))
        last = t
    return torch.FloatTensor([*sigs, 0.0])


def linear_quadratic(levels: DiscreteSigmas, steps: int, threshold_noise: float = 0.025) -> torch.Tensor:
    """Linear then quadratic in sigma / sigma_max (from Genmo's Mochi)."""
    if steps == 1:
        schedule = [1.0, 0.0]
    else:
        linear_steps = steps // 2
        linear = [i * threshold_noise / linear_steps for i in range(linear_steps)]
        step_diff = linear_steps - threshold_noise * steps
        quadratic_steps = steps - linear_steps
        quadratic_coef = step_diff / (linear_steps * quadratic_steps**2)
        linear_coef = threshold_noise / linear_steps - 2 * step_diff / (quadratic_steps**2)
        const = quadratic_coef * (linear_steps**2)
        quadratic = [quadratic_coef * (i**2) + linear_coef * i + const for i in range(linear_steps, steps)]
        schedule = [1.0 - x for x in (*linear, *quadratic, 1.0)]
    return torch.FloatTensor(schedule) * levels.sigma_max.cpu()


def kl_optimal(levels: DiscreteSigmas, steps: int) -> torch.Tensor:
    """Evenly spaced in arctan(sigma) (the KL-optimal schedule of Sabour et al. 2024)."""
    sigma_min, sigma_max = float(levels.sigma_min), float(levels.sigma_max)
    idx = torch.arange(steps, dtype=torch.float).div_(steps - 1)
    sigmas = idx.new_zeros(steps + 1)
    sigmas[:-1] = (idx * math.atan(sigma_min) + (1 - idx) * math.atan(sigma_max)).tan_()
    return sigmas


Schedule = Callable[[DiscreteSigmas, int], torch.Tensor]

# ComfyUI's scheduler names, in its order
SCHEDULERS: dict[str, Schedule] = {
    "simple": simple,
    "sgm_uniform": sgm_uniform,
    "karras": karras,
    "exponential": exponential,
    "ddim_uniform": ddim_uniform,
    "beta": beta,
    "normal": normal,
    "linear_quadratic": linear_quadratic,
    "kl_optimal": kl_optimal,
}
SCHEDULER_NAMES: tuple[str, ...] = tuple(SCHEDULERS)

# Samplers that ComfyUI runs on a schedule of steps + 1 with the second-to-last sigma removed
DISCARD_PENULTIMATE = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})


def schedule_sigmas(levels: DiscreteSigmas, scheduler: str, steps: int, sampler: str = "") -> torch.Tensor:
    """The full schedule for ``steps`` steps (ComfyUI's ``KSampler.calculate_sigmas``)."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; known: {', '.join(SCHEDULER_NAMES)}")
    discard = sampler in DISCARD_PENULTIMATE
    sigmas = SCHEDULERS[scheduler](levels, steps + 1 if discard else steps)
    return torch.cat([sigmas[:-2], sigmas[-1:]]) if discard else sigmas


def sampling_sigmas(levels: DiscreteSigmas, scheduler: str, steps: int, sampler: str = "",
                    denoise: float = 1.0) -> torch.Tensor:
    """The sigmas KSampler runs: for a denoise d below 1 the schedule of int(steps / d) steps, its last
    steps + 1 values (so image-to-image starts part way down the same curve)."""
    if denoise is None or denoise > 0.9999:
        return schedule_sigmas(levels, scheduler, steps, sampler)
    if denoise <= 0.0:
        return torch.FloatTensor([])
    sigmas = schedule_sigmas(levels, scheduler, int(steps / denoise), sampler)
    return sigmas[-(steps + 1):]


def step_range(sigmas: torch.Tensor, start_step: int | None, last_step: int | None,
               force_full_denoise: bool) -> torch.Tensor | None:
    """KSamplerAdvanced's cut: stop after ``last_step`` (landing on 0 when ``force_full_denoise``), then
    start at ``start_step``. None when nothing is left to run (the latent passes through)."""
    sigmas = sigmas.clone()
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[: last_step + 1]
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        if start_step < len(sigmas) - 1:
            sigmas = sigmas[start_step:]
        else:
            return None
    return sigmas
