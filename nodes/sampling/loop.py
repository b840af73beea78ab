"""The sampling loop: diffusers' pipeline loop behind the denoiser interface, so images match diffusers.

Per step: ``scale_model_input``, one model call per group of conditioning entries (negative and positive in
one batch, in diffusers' order, when they can share a call), the guidance chain, ``scheduler.step`` with
the CPU generator (ancestral and SDE schedulers draw from it).

Noise is drawn on the CPU from ``torch.Generator("cpu").manual_seed(seed)`` with diffusers' ``randn_tensor``
(one call for the whole batch), so a seed gives the same image on every device and the same numbers as the
diffusers pipelines given that generator:

- text-to-image (the input latent is all zeros, as from Empty Latent Image, and sampling starts at step 0):
  ``noise * scheduler.init_noise_sigma``, as StableDiffusionPipeline does;
- otherwise (image-to-image, or starting later): ``scheduler.add_noise(latent, noise, first timestep)``, as
  StableDiffusionImg2ImgPipeline does;
- ``add_noise=False`` draws nothing and continues from the latent as given (the refiner's half of an SDXL
  base -> refiner hand-off, diffusers' ``denoising_start``).

Under a mask (``inpainting``, see :mod:`nodes.sampling.masking`) a run from the top of the schedule starts from
pure noise, inpainting models get the mask and masked image appended to their input, and ordinary models get
the unmasked region put back on the image's trajectory after every step, as diffusers' inpaint pipelines do.

Which timesteps run: ``denoise`` < 1 starts at step ``steps - int(steps * denoise)`` (diffusers' img2img
``strength``); ``start_step``/``end_step`` cut the schedule of ``steps`` steps (diffusers' ``denoising_start``
/ ``denoising_end`` expressed in steps). Stopping early keeps the leftover noise when
``return_leftover_noise`` is set; otherwise the last step lands on the predicted clean latent (a jump to
noise level 0, as ComfyUI does).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from nodes.sampling.denoiser import CondBatch, Denoiser, StepInfo, added_condition_layout
from nodes.sampling.flow_matching import FLOW_PREDICTION, current_sigma, noise_latent
from nodes.sampling.guidance import GuidanceLink, GuidanceState, run_chain
from nodes.sampling.masking import Inpainting
from nodes.sd.conditioning import ConditioningEntry

VAE_SCALE = 8  # pixels per latent cell of the SD/SDXL VAE, for a denoiser that does not say its own


class ConditioningMismatch(ValueError):
    """Conditioning that does not fit the model (an SD1.5 prompt for an SDXL UNet, say)."""

    def __init__(self, message: str, field: str = "positive") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StepRange:
    """Steps ``start`` (inclusive) to ``end`` (exclusive) of a schedule of ``steps`` steps."""

    steps: int
    start: int
    end: int

    @classmethod
    def of(cls, steps: int, denoise: float = 1.0, start_step: int = 0, end_step: int | None = None, *,
           strength_rule: str = "sd") -> StepRange:
        """``strength_rule`` "flow": the SD3 / FLUX img2img pipelines round the other way (``int(steps - steps *
        strength)`` steps are skipped, where the SD pipelines skip ``steps - int(steps * strength)``)."""
        if steps < 1:
            raise ValueError(f"steps must be at least 1, found {steps}")
        start = max(0, start_step)
        if denoise < 1.0 and strength_rule == "flow":
            start = max(start, int(max(steps - steps * denoise, 0)))
        elif denoise < 1.0:  # diffusers' img2img: t_start = steps - int(steps * strength)
            start = max(start, steps - min(int(steps * denoise), steps))
        end = steps if end_step is None else max(0, min(end_step, steps))
        return cls(steps, start, end)

    @property
    def empty(self) -> bool:
        return self.start >= self.end


def select_timesteps(scheduler: Any, span: StepRange, device: Any,
                     set_timesteps: Callable[[Any, int, Any], None] | None = None) -> torch.Tensor:
    """Set the scheduler up for ``span`` and return the timesteps to run (second-order schedulers list two
    timesteps per step). ``set_timesteps(scheduler, steps, device)``, when given, sets the schedule instead (a
    denoiser's own: flow-matching models shift it by resolution, see nodes.sampling.flow_matching)."""
    if set_timesteps is not None:
        set_timesteps(scheduler, span.steps, device)
    else:
        scheduler.set_timesteps(span.steps, device=device)
    order = scheduler.order
    timesteps = scheduler.timesteps[span.start * order : span.end * order]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(span.start * order)
    return timesteps


def vp_alpha(scheduler: Any, t: torch.Tensor) -> torch.Tensor:
    """Cumulative alpha of the noise level at ``t`` (for the variance-preserving form of the latent)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and hasattr(scheduler, "index_for_timestep"):
        index = getattr(scheduler, "step_index", None)
        if index is None:
            begin = getattr(scheduler, "begin_index", None)
            index = begin if begin is not None else scheduler.index_for_timestep(t)
        sigma = sigmas[index].to(torch.float64)
        return (1.0 / (1.0 + sigma**2)).to(torch.float32)
    return scheduler.alphas_cumprod[int(t)].to(torch.float32)


def micro_conditioning(
    entry: ConditioningEntry, layout: str, latent_hw: tuple[int, int], vae_scale: int = VAE_SCALE
) -> list[float]:
    """SDXL time ids for ``entry``: sizes of 0 (or missing) become the latent's size in pixels, at ``vae_scale``
    pixels per latent cell (the model's VAE factor), as diffusers' SDXL pipelines count them."""
    pixel = (latent_hw[0] * vae_scale, latent_hw[1] * vae_scale)

    def size(key: str) -> tuple[int, int]:
        h, w = entry.extras.get(key) or (0, 0)
        return (h or pixel[0], w or pixel[1])

    original = size("original_size")
    crop = tuple(entry.extras.get("crop_top_left") or (0, 0))
    if layout == "aesthetic":
        return [*original, *crop, float(entry.extras.get("aesthetic_score", 6.0))]
    return [*original, *crop, *size("target_size")]


def condition_batch(
    entries: Sequence[ConditioningEntry],
    denoiser: Any,
    batch: int,
    latent_hw: tuple[int, int],
    device: Any,
    dtype: torch.dtype,
) -> CondBatch:
    """Stack ``entries`` (each repeated to the latent batch) into one model call's conditioning.

    A denoiser with its own ``condition_batch`` (same arguments, less the denoiser) builds it instead: the DiT
    and IF families carry attention masks and other per-family conditions (nodes.dit.denoisers)."""
    own = getattr(denoiser, "condition_batch", None)
    if own is not None:
        return own(entries, batch, latent_hw, device, dtype)
    embeds = []
    pooled = []
    time_ids = []
    layout = None
    unet = getattr(denoiser, "unet", None)
    width = getattr(getattr(unet, "config", None), "cross_attention_dim", None)
    for entry in entries:
        if isinstance(width, int) and entry.embeds.shape[-1] != width:
            raise ConditioningMismatch(
                f"the model expects text embeddings {width} wide, the conditioning is {entry.embeds.shape[-1]} wide: "
                "was the prompt encoded with the CLIP of another model family?"
            )
        e = entry.embeds.to(device=device, dtype=dtype)
        embeds.append(e if e.shape[0] == batch else e[:1].repeat(batch, 1, 1))
        if unet is not None and entry.pooled is not None:
            try:
                layout = layout or added_condition_layout(unet, entry.pooled.shape[-1])
            except ValueError as exc:
                raise ConditioningMismatch(str(exc)) from None
        if layout is not None:
            if entry.pooled is None:
                raise ConditioningMismatch(
                    "this SDXL model needs a pooled text embedding: encode the prompt with an SDXL CLIP"
                )
            p = entry.pooled.to(device=device, dtype=dtype)
            pooled.append(p if p.shape[0] == batch else p[:1].repeat(batch, 1))
            vae_scale = getattr(denoiser, "vae_scale_factor", VAE_SCALE)
            ids = torch.tensor([micro_conditioning(entry, layout, latent_hw, vae_scale)], dtype=dtype)
            time_ids.append(ids.to(device).repeat(batch, 1))
    added = None
    if layout is not None:
        added = {"text_embeds": torch.cat(pooled), "time_ids": torch.cat(time_ids)}
    elif unet is not None and getattr(unet.config, "addition_embed_type", None) == "text_time":
        raise ConditioningMismatch(
            "this SDXL model needs SDXL conditioning (a pooled embedding): encode the prompt with an SDXL CLIP"
        )
    return CondBatch(torch.cat(embeds), added, tuple(entries[0].extras.get("residuals", ())))


def _groups(entries: Sequence[tuple[ConditioningEntry, str]]) -> list[list[tuple[ConditioningEntry, str]]]:
    """Consecutive entries that can share one model call: same token length and the same residual hooks."""
    groups: list[list[tuple[ConditioningEntry, str]]] = []
    for item in entries:
        entry = item[0]
        key = (entry.embeds.shape[1], tuple(id(s) for s in entry.extras.get("residuals", ())), entry.pooled is None)
        if groups:
            first = groups[-1][0][0]
            first_key = (first.embeds.shape[1], tuple(id(s) for s in first.extras.get("residuals", ())), first.pooled is None)
            if first_key == key:
                groups[-1].append(item)
                continue
        groups.append([item])
    return groups


def _average(preds: list[tuple[torch.Tensor, float]]) -> torch.Tensor:
    if len(preds) == 1:
        return preds[0][0]
    total = sum(w for _, w in preds)
    return sum(p * w for p, w in preds) / total


def _next_timestep(scheduler: Any, timesteps: torch.Tensor, i: int, span: StepRange, leftover: bool) -> torch.Tensor | None:
    """The timestep whose noise level the latent has after step ``i``, as a 1-element tensor; None when it is
    clean (the end of the schedule, or a run that stops early and lands on its prediction)."""
    if i + 1 < len(timesteps):
        return timesteps[i + 1 : i + 2]
    if span.end < span.steps and leftover:
        index = span.end * scheduler.order
        return scheduler.timesteps[index : index + 1]
    return None


def sample(
    denoiser: Denoiser,
    scheduler: Any,
    latent: torch.Tensor,
    positive: Sequence[ConditioningEntry],
    negative: Sequence[ConditioningEntry],
    *,
    seed: int,
    span: StepRange,
    chain: Sequence[GuidanceLink],
    cfg_scale: float,
    add_noise: bool = True,
    return_leftover_noise: bool = True,
    device: Any = "cpu",
    dtype: torch.dtype = torch.float32,
    on_step: Callable[..., None] | None = None,
    inpainting: Inpainting | None = None,
) -> torch.Tensor:
    """Denoise ``latent`` (model space, [B, C, h, w]) and return the result as float32 on the CPU.

    ``on_step(step, total)`` is called after each step; a callback taking a third argument also gets a function
    returning the current estimate of the clean latent (for live previews: computed only when called)."""
    if not positive:
        raise ConditioningMismatch("the positive conditioning is empty")
    if span.empty:
        return latent.to("cpu", torch.float32)
    with torch.inference_mode():
        own_schedule = getattr(denoiser, "set_timesteps", None)  # (scheduler, steps, latent shape, device)
        timesteps = select_timesteps(scheduler, span, device, own_schedule and (
            lambda sched, steps, dev: own_schedule(sched, steps, tuple(latent.shape), dev)))
        generator = torch.Generator("cpu").manual_seed(seed)
        x = latent.to(device=device, dtype=dtype)
        # A denoiser may draw per-run randomness of its own (super-resolution noise augmentation), before or after
        # the start noise as the matching diffusers pipeline does, so a seed gives that pipeline's numbers.
        prepare = getattr(denoiser, "prepare", None)
        if prepare is not None and getattr(denoiser, "prepare_draws_first", False):
            prepare(x, generator)
            prepare = None
        noise = None
        if add_noise or (inpainting is not None and inpainting.blend):
            from diffusers.utils.torch_utils import randn_tensor

            # without add_noise the noise only re-noises the kept region (diffusers' SDXL inpaint draws it too)
            noise = randn_tensor(tuple(x.shape), generator=generator, device=torch.device(device), dtype=dtype)
        if add_noise:
            if span.start == 0 and (inpainting is not None or not torch.any(x)):
                x = noise * getattr(scheduler, "init_noise_sigma", 1.0)
            elif hasattr(scheduler, "add_noise"):
                x = scheduler.add_noise(x, noise, timesteps[:1].repeat(x.shape[0]))
            else:  # flow matching
                x = noise_latent(scheduler, x, noise, timesteps[:1].repeat(x.shape[0]))
        if inpainting is not None:
            inpainting = inpainting.to(device, dtype)
        if prepare is not None:
            prepare(x, generator)
        step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}

        use_uncond = cfg_scale != 1.0
        rows = ([(e, "negative") for e in negative] if use_uncond else []) + [(e, "positive") for e in positive]
        if use_uncond and not negative:
            raise ConditioningMismatch("the negative conditioning is empty (CFG needs one; use scale 1 to skip it)", "negative")
        batch = x.shape[0]
        latent_hw = (x.shape[-2], x.shape[-1])
        groups = [(g, condition_batch([e for e, _ in g], denoiser, batch, latent_hw, device, dtype)) for g in _groups(rows)]
        if inpainting is not None and inpainting.concat is not None:  # inpainting models: mask + masked image
            groups = [(g, replace(c, concat=torch.cat([inpainting.concat] * len(g)))) for g, c in groups]

        # A model that learns its variance returns it as extra channels: guidance sees the mean part; schedulers
        # configured for learned variance get the conditional variance back (as diffusers' IF pipelines do).
        channels = x.shape[1] if getattr(denoiser, "learned_variance", False) else None
        keep_variance = channels is not None and scheduler.config.get("variance_type") in ("learned", "learned_range")
        total = len(timesteps)
        stop_early = span.end < span.steps and not return_leftover_noise
        wants_denoised = on_step is not None and len(inspect.signature(on_step).parameters) >= 3
        for i, t in enumerate(timesteps):
            x_in = scheduler.scale_model_input(x, t) if hasattr(scheduler, "scale_model_input") else x
            info = StepInfo(i, total, t)
            preds: dict[str, list[tuple[torch.Tensor, float]]] = {"negative": [], "positive": []}
            variances: list[tuple[torch.Tensor, float]] = []
            for group, cond in groups:
                out = denoiser(torch.cat([x_in] * len(group)) if len(group) > 1 else x_in, t, cond, info)
                if channels is not None:
                    out, variance = out[:, :channels], out[:, channels:]
                for k, (entry, role) in enumerate(group):
                    weight = float(entry.extras.get("strength", 1.0))
                    preds[role].append((out[k * batch : (k + 1) * batch], weight))
                    if channels is not None and role == "positive":
                        variances.append((variance[k * batch : (k + 1) * batch], weight))
            state = GuidanceState(
                cond=_average(preds["positive"]),
                uncond=_average(preds["negative"]) if use_uncond else None,
                guided=_average(preds["positive"]),
                x=x_in,
                timestep=t,
                alpha_prod=vp_alpha(scheduler, t).to(x.device),
                prediction_type=denoiser.prediction_type,
                cfg_scale=cfg_scale,
                step=i,
                total_steps=total,
                sigma=current_sigma(scheduler, t) if denoiser.prediction_type == FLOW_PREDICTION else None,
            )
            guided = run_chain(chain, state)
            if stop_early and i == total - 1:
                x = state.to_x0(guided)
            else:
                model_output = torch.cat([guided, _average(variances)], dim=1) if keep_variance else guided
                x = scheduler.step(model_output, t, x, **step_kwargs, return_dict=False)[0]
            if inpainting is not None and noise is not None:
                x = inpainting.keep_known(x, noise, scheduler, _next_timestep(scheduler, timesteps, i, span, return_leftover_noise))
            if wants_denoised:
                on_step(i + 1, total, lambda state=state, guided=guided: state.to_x0(guided))
            elif on_step is not None:
                on_step(i + 1, total)
    return x.to("cpu", torch.float32)
