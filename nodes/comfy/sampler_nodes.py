"""KSampler and KSamplerAdvanced with ComfyUI's meaning: what a workflow imported from ComfyUI runs.

Same fields, names and values as ComfyUI's nodes (so imports and exports are one-to-one); the sampling is
:mod:`nodes.comfy.ksampler`: ComfyUI's noise for the seed, its sigma schedule for each (sampler, scheduler)
pair, its timestep discretisation, its samplers. The product's own ``core.KSampler`` keeps diffusers'
semantics; both take the same MODEL, CONDITIONING and LATENT values.
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, Float, Int, Seed
from nodegraph.types import CONDITIONING, LATENT, MODEL
from nodes.comfy.samplers import SAMPLER_NAMES

# ComfyUI's scheduler names (nodes.sampling.sigmas.SCHEDULER_NAMES; repeated here so that declaring the node
# does not import torch)
SCHEDULER_NAMES = ("simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
                   "linear_quadratic", "kl_optimal")

_INPUTS = [
    Input("model", MODEL, help="The denoising model from a checkpoint loader."),
    Input("positive", CONDITIONING, help="What the image should show."),
    Input("negative", CONDITIONING, help="What it should not show (the unconditional side of CFG)."),
    Input("latent_image", LATENT, help="Empty latent for text-to-image, or an encoded image for image-to-image."),
]
_SAMPLER_HELP = ("The sampling algorithm (ComfyUI's names and algorithms; ancestral and SDE samplers add noise "
                 "drawn from the seed as ComfyUI draws it).")
_SCHEDULER_HELP = "How the noise levels are spaced over the steps (ComfyUI's schedules)."


def _common(steps: int = 20) -> list:
    return [
        Int("steps", steps, min=1, max=10000, help="Number of sampling steps."),
        Float("cfg", 8.0, min=0.0, max=100.0, step=0.1, help="Classifier-free guidance scale; 1 turns CFG off."),
        Choice("sampler_name", "euler", choices=SAMPLER_NAMES, help=_SAMPLER_HELP),
        Choice("scheduler", "normal", choices=SCHEDULER_NAMES, help=_SCHEDULER_HELP),
    ]


def _step_reporter(ctx: NodeContext, model: Any) -> Any:
    """Progress per step, with live previews where the product makes them (nodes.sampling.previews)."""
    try:
        from nodes.sampling.previews import PreviewReporter
    except ImportError:
        return lambda step, total: ctx.progress(step, total)
    return PreviewReporter(ctx, model)


def _sample(ctx: NodeContext, model: Any, positive: Any, negative: Any, latent_image: Any, **kwargs: Any) -> dict:
    from nodegraph.runtime import cpu_threads_for, module_nbytes
    from nodes.adapters.residuals import prepare_residual_sources
    from nodes.comfy.conditioning_nodes import with_uncond_control
    from nodes.comfy.ksampler import ComfyDenoiser, KSamplerSettings, comfy_sample, ksampler_sigmas
    from nodes.comfy.samplers import choose_sampler
    from nodes.sampling.denoiser import UNetDenoiser
    from nodes.sampling.guidance import build_chain
    from nodes.sampling.loop import ConditioningMismatch
    from nodes.sampling.sigmas import DiscreteSigmas
    from nodes.sd.text_encode import patches_applied

    if model is None or not hasattr(model, "unet") or not hasattr(model, "scheduler_config"):
        raise NodeInputError(f"expected a MODEL from a checkpoint loader, found {type(model).__name__}", "model")
    if getattr(model, "make_denoiser", None) is not None:
        raise NodeInputError(f"ComfyUI's KSampler runs discrete-time UNet models (SD1.5, SDXL); this {model.family} "
                             "model needs the product's own KSampler", "model")
    for name, cond in (("positive", positive), ("negative", negative)):
        if not isinstance(cond, tuple) or not cond:
            raise NodeInputError(f"expected CONDITIONING from a text encoder, found {type(cond).__name__}", name)
    if not isinstance(latent_image, dict) or "samples" not in latent_image:
        raise NodeInputError("expected a LATENT (a dict with 'samples')", "latent_image")
    samples = latent_image["samples"]
    from nodes.comfy.inpaint_concat import INPAINT_CHANNELS, is_inpainting_unet

    channels = model.unet.config.in_channels - (INPAINT_CHANNELS - 4 if is_inpainting_unet(model) else 0)
    if samples.ndim != 4 or samples.shape[1] != channels:
        raise NodeInputError(f"expected a latent [B, {channels}, h, w] for this {model.family} model, found shape "
                             f"{list(samples.shape)}", "latent_image")
    negative = with_uncond_control(positive, negative)
    prepare_residual_sources(ctx, model, (*positive, *negative), tuple(samples.shape))
    runtime = ctx.runtime
    choice = choose_sampler(kwargs.pop("sampler_name"), str(runtime.device).split(":")[0])
    if choice.warning:
        ctx.warn(choice.warning)
    settings = KSamplerSettings(sampler=choice, **kwargs)
    levels = DiscreteSigmas.from_scheduler_config(model.scheduler_config, model.prediction_type)
    sigmas = ksampler_sigmas(levels, settings)
    if sigmas is None or len(sigmas) < 2:
        ctx.log("no steps to run: the latent passes through unchanged")
        return {"latent": dict(latent_image)}
    unet = runtime.residency.load(model.unet)
    weights_dtype = next(unet.parameters()).dtype
    denoiser = UNetDenoiser(unet, model.prediction_type, autocast=runtime.dtype if weights_dtype != runtime.dtype else None)
    chain = build_chain(settings.cfg, 0.0, model.guidance)
    try:
        wrapper = ComfyDenoiser(denoiser, levels, positive, negative, settings.cfg, chain, sigmas, samples.shape,
                                runtime.device, runtime.dtype, always_uncond=choice.needs_uncond)
        if is_inpainting_unet(model):
            from nodes.comfy.inpaint_concat import inpaint_concat

            wrapper.add_concat(inpaint_concat(latent_image, positive, negative).to(runtime.device, runtime.dtype))
        with patches_applied(unet, model.patches), cpu_threads_for(runtime.device, module_nbytes(unet)):
            result = comfy_sample(wrapper, levels, latent_image, settings, sigmas, runtime.device,
                                  on_step=_step_reporter(ctx, model))
    except ConditioningMismatch as exc:
        raise NodeInputError(str(exc), exc.field) from exc
    except ValueError as exc:  # a schedule too short for the sampler (UniPC needs two steps)
        raise NodeInputError(str(exc), "steps") from exc
    return {"latent": {**latent_image, "samples": result}}


@node(
    "comfy.KSampler", name="KSampler (ComfyUI)", category="sampling/comfyui",
    description=(
        "ComfyUI's KSampler: denoises the latent with the model, guided by the prompts, with ComfyUI's noise, "
        "sigma schedules and samplers, so a workflow from ComfyUI draws ComfyUI's image. Denoise below 1 keeps "
        "part of the input latent (image-to-image)."
    ),
    inputs=_INPUTS,
    params=[
        Seed("seed", 0, help="Noise seed; the noise is drawn on the CPU as ComfyUI draws it."),
        *_common(),
        Float("denoise", 1.0, min=0.0, max=1.0, step=0.01, help="1 = from pure noise; lower keeps more of the input."),
    ],
    outputs=[Output("latent", LATENT)],
)
def ksampler(ctx: NodeContext, model: Any, positive: Any, negative: Any, latent_image: Any, seed: int, steps: int,
             cfg: float, sampler_name: str, scheduler: str, denoise: float) -> dict:
    return _sample(ctx, model, positive, negative, latent_image, seed=seed, steps=steps, cfg=cfg,
                   sampler_name=sampler_name, scheduler=scheduler, denoise=denoise)


@node(
    "comfy.KSamplerAdvanced", name="KSampler Advanced (ComfyUI)", category="sampling/comfyui",
    description=(
        "ComfyUI's KSamplerAdvanced: runs steps start_at_step..end_at_step of a schedule of `steps`, optionally "
        "without adding noise and keeping the leftover noise (to hand a latent from one sampler to the next)."
    ),
    inputs=_INPUTS,
    params=[
        Choice("add_noise", "enable", choices=("enable", "disable"), help="Add the seed's noise first."),
        Seed("noise_seed", 0, help="Noise seed; the noise is drawn on the CPU as ComfyUI draws it."),
        *_common(),
        Int("start_at_step", 0, min=0, max=10000, help="First step to run."),
        Int("end_at_step", 10000, min=0, max=10000, help="Step to stop at (beyond `steps` means the end)."),
        Choice("return_with_leftover_noise", "disable", choices=("disable", "enable"),
               help="enable: stop early with the remaining noise (for a second sampler); disable: finish at noise 0."),
    ],
    outputs=[Output("latent", LATENT)],
)
def ksampler_advanced(ctx: NodeContext, model: Any, positive: Any, negative: Any, latent_image: Any, add_noise: str,
                      noise_seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str, start_at_step: int,
                      end_at_step: int, return_with_leftover_noise: str) -> dict:
    return _sample(ctx, model, positive, negative, latent_image, seed=noise_seed, steps=steps, cfg=cfg,
                   sampler_name=sampler_name, scheduler=scheduler, disable_noise=add_noise == "disable",
                   start_step=start_at_step, last_step=end_at_step,
                   force_full_denoise=return_with_leftover_noise != "enable")
