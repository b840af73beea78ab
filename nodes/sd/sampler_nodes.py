"""Sampler nodes: KSampler and KSamplerAdvanced, the diffusers pipeline loop as nodes.

The work is in :mod:`nodes.sampling` (imported inside the node functions: it needs torch).
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Choice, Float, Int, Seed
from nodegraph.types import CONDITIONING, LATENT, MODEL
from nodes.sampling.schedulers import SCHEDULER_NAMES, check_steps, model_calls

SAMPLER_INPUTS = [
    Input("model", MODEL, help="The denoising model (UNet) from a checkpoint loader."),
    Input("positive", CONDITIONING, help="What the image should show."),
    Input("negative", CONDITIONING, help="What it should not show (the unconditional side of CFG)."),
    Input("latent_image", LATENT, help="Empty latent for text-to-image, or an encoded image for image-to-image."),
]


def _common_params() -> list:
    return [
        Seed("seed", 0, help="Noise seed. Noise is drawn on the CPU, so a seed gives the same image on every device."),
        Int("steps", 20, min=1, max=10000, help="Number of scheduler steps."),
        Float("cfg", 7.5, min=0.0, max=100.0, step=0.1, help="Classifier-free guidance scale; 1 turns CFG off."),
        Float("guidance_rescale", 0.0, min=0.0, max=1.0, step=0.01,
              help="Rescales the guided prediction towards the conditional one's spread (0 = off, 0.7 = typical)."),
        Choice("scheduler", "euler", choices=SCHEDULER_NAMES, help="The diffusers scheduler to sample with."),
    ]


def _steps_run(steps: Any, denoise: Any) -> int:
    """Steps a KSampler runs (a linked value counts as the default), as the loop's StepRange computes them."""
    steps = steps if isinstance(steps, int) else 20
    if isinstance(denoise, (int, float)) and denoise < 1.0:
        return min(int(steps * denoise), steps)
    return steps


def _run(
    ctx: NodeContext, model: Any, positive: Any, negative: Any, latent_image: Any, *, seed: int, steps: int,
    cfg: float, guidance_rescale: float, scheduler: str, denoise: float = 1.0, start_step: int = 0,
    end_step: int | None = None, add_noise: bool = True, return_leftover_noise: bool = True,
) -> dict[str, Any]:
    from nodegraph.runtime import cpu_threads_for, module_nbytes
    from nodes.adapters.residuals import prepare_residual_sources
    from nodes.sampling import masking
    from nodes.sampling.denoiser import UNetDenoiser
    from nodes.sampling.guidance import build_chain
    from nodes.sampling.loop import ConditioningMismatch, StepRange, sample
    from nodes.sampling.masking import INPAINT_EXTRA_CHANNELS, is_inpainting_model
    from nodes.sampling.previews import PreviewReporter
    from nodes.sampling.schedulers import make_scheduler
    from nodes.sd.text_encode import patches_applied

    if model is None or not hasattr(model, "unet"):
        raise NodeInputError(f"expected a MODEL from a checkpoint loader, found {type(model).__name__}", "model")
    for name, cond in (("positive", positive), ("negative", negative)):
        if not isinstance(cond, tuple) or not cond:
            raise NodeInputError(f"expected CONDITIONING from a text encoder, found {type(cond).__name__}", name)
    if not isinstance(latent_image, dict) or "samples" not in latent_image:
        raise NodeInputError("expected a LATENT (a dict with 'samples')", "latent_image")
    samples = latent_image["samples"]
    # A MODEL handle may describe its own sample shape and build its own denoiser (DiT and IF families, nodes.dit)
    channels = getattr(model, "sample_channels", None) or model.unet.config.in_channels
    if is_inpainting_model(model):
        channels -= INPAINT_EXTRA_CHANNELS  # the mask and masked-image latents are appended by the sampler
    if samples.ndim != 4 or samples.shape[1] != channels:
        raise NodeInputError(
            f"expected a latent with {channels} channels [B, {channels}, h, w] for this {model.family} model, "
            f"found shape {list(samples.shape)}" + ("; make it with Empty Latent (model's space) or this model's VAE"
                                                   if channels != 4 else ""), "latent_image"
        )
    try:
        inpainting, notes = masking.prepare(latent_image, model, positive, negative)
    except masking.MaskError as exc:
        raise NodeInputError(str(exc), exc.field) from None
    for note in notes:
        ctx.warn(note)
    coverage = masking.describe_coverage(inpainting) if inpainting is not None else None
    if coverage:
        ctx.log(coverage)

    runtime = ctx.runtime
    device = runtime.device
    dtype = runtime.dtype
    unet = runtime.residency.load(model.unet)
    weights_dtype = next(unet.parameters()).dtype
    autocast = dtype if weights_dtype != dtype else None
    make_denoiser = getattr(model, "make_denoiser", None)
    if make_denoiser is not None:
        denoiser = make_denoiser(unet, autocast)
    else:
        denoiser = UNetDenoiser(unet, model.prediction_type, autocast=autocast,
                                vae_scale_factor=getattr(model, "vae_scale_factor", 8))
    try:
        sched = make_scheduler(scheduler, model.scheduler_config, model.prediction_type)
    except ValueError as exc:
        raise NodeInputError(str(exc), "scheduler") from None
    try:
        masking.check_scheduler(inpainting, sched)
    except masking.MaskError as exc:
        raise NodeInputError(str(exc), exc.field) from None
    span = StepRange.of(steps, denoise=denoise, start_step=start_step, end_step=end_step,
                        strength_rule=getattr(model, "strength_rule", "sd"))
    chain = build_chain(cfg, guidance_rescale, model.guidance)
    # ControlNet / T2I-Adapter sources on the conditioning: family check, device, notes on resized images
    prepare_residual_sources(ctx, model, (*positive, *negative), tuple(samples.shape))
    try:
        with patches_applied(unet, model.patches), cpu_threads_for(device, module_nbytes(unet)):
            result = sample(
                denoiser, sched, samples, positive, negative,
                seed=seed, span=span, chain=chain, cfg_scale=cfg, add_noise=add_noise,
                return_leftover_noise=return_leftover_noise, device=device, dtype=dtype,
                on_step=PreviewReporter(ctx, model), inpainting=inpainting,
            )
    except ConditioningMismatch as exc:  # conditioning that does not fit the model: explain, naming the input
        raise NodeInputError(str(exc), exc.field) from exc
    # by output name (a bare dict would be read as outputs by name); other LATENT keys travel along
    latent = {**latent_image, "samples": result}
    latent.pop(masking.SOURCE_KEY, None)
    if inpainting is not None and inpainting.blend and span.end < span.steps and return_leftover_noise:
        latent[masking.SOURCE_KEY] = inpainting.image  # still noisy: the next sampler needs the clean image
    return {"latent": latent}


@node(
    "core.KSampler", name="KSampler", category="sampling",
    description=(
        "Denoises a latent with the model, guided by the positive and negative prompts. Denoise below 1 keeps "
        "part of an input image (image-to-image strength, as diffusers' img2img pipelines)."
    ),
    inputs=SAMPLER_INPUTS,
    params=[
        *_common_params(),
        Float("denoise", 1.0, min=0.0, max=1.0, step=0.01,
              help="1 = all steps from pure noise; lower keeps more of the input latent (img2img strength)."),
    ],
    outputs=[Output("latent", LATENT)],
    check=lambda p: check_steps(p.get("steps"), p.get("scheduler")),
    work=lambda p: model_calls(p.get("scheduler"), _steps_run(p.get("steps", 20), p.get("denoise", 1.0))),
)
def ksampler(
    ctx: NodeContext, model: Any, positive: Any, negative: Any, latent_image: Any, seed: int, steps: int,
    cfg: float, guidance_rescale: float, scheduler: str, denoise: float,
) -> dict[str, Any]:
    return _run(
        ctx, model, positive, negative, latent_image, seed=seed, steps=steps, cfg=cfg,
        guidance_rescale=guidance_rescale, scheduler=scheduler, denoise=denoise,
    )


@node(
    "core.KSamplerAdvanced", name="KSampler (Advanced)", category="sampling",
    description=(
        "KSampler over part of the schedule: run steps start..end of `steps`, optionally without adding noise "
        "and keeping the leftover noise. SDXL base -> refiner: base with end_at_step=k and leftover noise, "
        "refiner with add_noise off and start_at_step=k (diffusers' denoising_end / denoising_start)."
    ),
    inputs=SAMPLER_INPUTS,
    params=[
        *_common_params(),
        Bool("add_noise", True, help="Add the seed's noise first (off to continue a latent that still has noise)."),
        Int("start_at_step", 0, min=0, max=10000, help="First step to run (0 = the start of the schedule)."),
        Int("end_at_step", 10000, min=0, max=10000, help="Step to stop at (values above steps mean the end)."),
        Bool("return_with_leftover_noise", False,
             help="When stopping early, return the latent with its remaining noise (for a second sampler)."),
    ],
    outputs=[Output("latent", LATENT)],
    check=lambda p: check_steps(p.get("steps"), p.get("scheduler")),
    work=lambda p: model_calls(p.get("scheduler"), max(0, min(p.get("end_at_step", 10000), p.get("steps", 20))
                                                      - p.get("start_at_step", 0))),
)
def ksampler_advanced(
    ctx: NodeContext, model: Any, positive: Any, negative: Any, latent_image: Any, seed: int, steps: int,
    cfg: float, guidance_rescale: float, scheduler: str, add_noise: bool, start_at_step: int, end_at_step: int,
    return_with_leftover_noise: bool,
) -> dict[str, Any]:
    return _run(
        ctx, model, positive, negative, latent_image, seed=seed, steps=steps, cfg=cfg,
        guidance_rescale=guidance_rescale, scheduler=scheduler, start_step=start_at_step, end_step=end_at_step,
        add_noise=add_noise, return_leftover_noise=return_with_leftover_noise,
    )
