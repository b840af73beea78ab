"""ComfyUI's sampler names and what each runs here.

Every name ComfyUI 0.8 offers is accepted. Most run the same algorithm with the same noise (see
:mod:`nodes.sampling.k_samplers`); the few not reproduced run the nearest algorithm, and the node says so in
a warning. Noise: ancestral samplers draw per-step noise from seed + 1 (:func:`nodes.sampling.noise.step_noise`),
SDE samplers from a Brownian tree seeded with the seed (:class:`nodes.sampling.noise.BrownianNoise`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# ComfyUI's KSAMPLER_NAMES followed by its three others, in its order
SAMPLER_NAMES: tuple[str, ...] = (
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm",
    "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
    "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
)

# Names run as another algorithm: name -> the one that runs
NEAREST: dict[str, str] = {
    "deis": "ipndm",
    "sa_solver": "dpmpp_2m_sde",
    "sa_solver_pece": "dpmpp_2m_sde",
}

ANCESTRAL = frozenset({"euler_ancestral", "euler_ancestral_cfg_pp", "dpm_2_ancestral", "dpmpp_2s_ancestral",
                       "ddpm", "lcm", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "er_sde",
                       "dpmpp_2s_ancestral_cfg_pp", "seeds_2", "seeds_3"})
BROWNIAN = frozenset({"dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun",
                      "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu"})
# CFG++ samplers read the unconditional prediction, which ComfyUI computes for them even at CFG 1
CFG_PP = frozenset({"euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2m_cfg_pp", "dpmpp_2s_ancestral_cfg_pp",
                    "res_multistep_cfg_pp",
                    "res_multistep_ancestral_cfg_pp", "gradient_estimation_cfg_pp"})

Runner = Callable[..., Any]


@dataclass(frozen=True)
class SamplerChoice:
    """What a sampler name runs: ``name`` (after the nearest-substitute rule), whether an inpainting mask
    uses fresh noise (ComfyUI's ``ddim``), and a warning for the node when the name is not reproduced."""

    requested: str
    name: str
    inpaint_random_noise: bool = False
    warning: str = ""

    @property
    def needs_uncond(self) -> bool:
        return self.name in CFG_PP


def choose_sampler(name: str, device_type: str = "cpu") -> SamplerChoice:
    if name not in SAMPLER_NAMES:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLER_NAMES)}")
    if name in NEAREST:
        nearest = NEAREST[name]
        return SamplerChoice(name, nearest, warning=f"sampler {name!r} is not reproduced here: it runs as the nearest "
                             f"one, {nearest!r}, so the image differs from ComfyUI's")
    if name == "ddim":  # ComfyUI's ddim is its euler, with fresh noise for an inpainting mask
        return SamplerChoice(name, "euler", inpaint_random_noise=True)
    warning = ""
    if name.endswith("_gpu") and device_type != "cpu":
        warning = (f"{name} draws its Brownian noise on the GPU in ComfyUI; here it is drawn on the CPU, so the "
                   "noise (and the image) differ from ComfyUI's on a GPU")
    return SamplerChoice(name, name, warning=warning)


def run_sampler(choice: SamplerChoice, model: Any, x: Any, sigmas: Any, seed: int, callback: Any) -> Any:
    """Run ``choice`` over ``sigmas`` from ``x`` with ComfyUI's noise for ``seed``."""
    from nodes.sampling import k_samplers as k
    from nodes.sampling.dpm_solver import dpm_adaptive, dpm_fast
    from nodes.sampling.noise import BrownianNoise, step_noise
    from nodes.sampling.unipc import uni_pc

    name = choice.name
    if name in ANCESTRAL:
        noise = step_noise(x, seed)
    elif name in BROWNIAN and len(sigmas) > 1:
        noise = BrownianNoise(x, sigmas[sigmas > 0].min(), sigmas.max(), seed)
    else:
        noise = None
    plain = {
        "euler": k.euler, "heun": k.heun, "heunpp2": k.heunpp2, "dpm_2": k.dpm_2, "lms": k.lms,
        "dpmpp_2m": k.dpmpp_2m, "ipndm": k.ipndm, "dpm_fast": dpm_fast, "dpm_adaptive": dpm_adaptive,
    }
    if name in plain:
        return plain[name](model, x, sigmas, callback)
    if name == "ipndm_v":
        return k.ipndm(model, x, sigmas, callback, variable=True)
    if name in ("uni_pc", "uni_pc_bh2"):
        return uni_pc(model, x, sigmas, callback, variant="bh2" if name == "uni_pc_bh2" else "bh1")
    if len(sigmas) <= 1:
        return x
    noisy = {
        "euler_ancestral": k.euler_ancestral, "dpm_2_ancestral": k.dpm_2_ancestral,
        "dpmpp_2s_ancestral": k.dpmpp_2s_ancestral, "ddpm": k.ddpm, "lcm": k.lcm,
        "dpmpp_sde": k.dpmpp_sde, "dpmpp_sde_gpu": k.dpmpp_sde,
    }
    if name in noisy:
        return noisy[name](model, x, sigmas, noise, callback)
    if name == "dpmpp_2s_ancestral_cfg_pp":
        from nodes.sampling.cfg_pp import dpmpp_2s_ancestral_cfg_pp

        return dpmpp_2s_ancestral_cfg_pp(model, x, sigmas, noise, callback)
    if name in ("euler_cfg_pp", "euler_ancestral_cfg_pp"):
        from nodes.sampling.cfg_pp import euler_cfg_pp

        return euler_cfg_pp(model, x, sigmas, noise if name == "euler_ancestral_cfg_pp" else None, callback)
    if name.startswith(("res_multistep", "gradient_estimation", "seeds")) or name in ("dpmpp_2m_cfg_pp", "er_sde"):
        from nodes.sampling import recent_samplers as r

        cfg_pp = name.endswith("_cfg_pp")
        if name.startswith("res_multistep"):
            ancestral = "ancestral" in name
            return r.res_multistep(model, x, sigmas, noise, callback, eta=1.0 if ancestral else 0.0, cfg_pp=cfg_pp)
        if name.startswith("gradient_estimation"):
            return r.gradient_estimation(model, x, sigmas, callback, cfg_pp=cfg_pp)
        if name == "er_sde":
            return r.er_sde(model, x, sigmas, noise, callback)
        if name.startswith("seeds"):
            return r.seeds(model, x, sigmas, noise, callback, stages=int(name[-1]))
        return r.dpmpp_2m_cfg_pp(model, x, sigmas, callback)
    order = 3 if name.startswith("dpmpp_3m") else 2
    solver = "heun" if "heun" in name else "midpoint"
    return k.dpmpp_multistep_sde(model, x, sigmas, noise, callback, order=order, solver=solver)
