"""The one denoiser interface (DESIGN contract 7).

The sampler talks to a :class:`Denoiser`: a callable predicting, for a batch of (scaled) latents, a
timestep and a :class:`CondBatch`, the model's raw output (noise, v or x0 as ``prediction_type`` says).
A UNet is one implementation (:class:`UNetDenoiser`); a DiT is another (later issue).

ControlNet and T2I-Adapter enter through the same interface: a conditioning entry may carry
``extras["residuals"]``, a tuple of :class:`ResidualSource` callables. The denoiser calls each with the
same inputs the model sees and adds what they return to the UNet's down/mid blocks. Entries are batched
together only when their residual sources are the same objects, so one source sees a batch whose
conditioning it was attached to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class StepInfo:
    """Where the loop stands: ``index`` of ``total`` model evaluations in this run (ControlNet's start/end
    percent are fractions of ``total``), and the timestep being evaluated."""

    index: int
    total: int
    timestep: Any = None

    @property
    def fraction(self) -> float:
        return self.index / self.total if self.total else 0.0


@dataclass(frozen=True)
class CondBatch:
    """Conditioning for one model call, already batched to match the latents.

    ``added`` holds the UNet's added conditions (SDXL: ``text_embeds`` and ``time_ids``) or is None.
    ``residuals`` are the :class:`ResidualSource` hooks shared by every row of the batch. ``concat`` holds
    channels appended to the model's input (an inpainting UNet's mask and masked-image latents), or is None;
    residual sources see the latents without them, as diffusers' ControlNet inpaint pipelines feed them.
    """

    embeds: torch.Tensor
    added: dict[str, torch.Tensor] | None = None
    residuals: tuple[Any, ...] = ()
    concat: torch.Tensor | None = None


@dataclass(frozen=True)
class Residuals:
    """Block residuals a control model adds to the UNet: ControlNet gives ``down`` + ``mid``; T2I-Adapter
    gives ``intrablock`` (added inside the down blocks)."""

    down: tuple[torch.Tensor, ...] | None = None
    mid: torch.Tensor | None = None
    intrablock: tuple[torch.Tensor, ...] | None = None

    def __add__(self, other: Residuals) -> Residuals:
        return Residuals(_sum_tuples(self.down, other.down), _sum(self.mid, other.mid), _sum_tuples(self.intrablock, other.intrablock))


def _sum(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _sum_tuples(a: tuple | None, b: tuple | None) -> tuple | None:
    if a is None:
        return b
    if b is None:
        return a
    return tuple(x + y for x, y in zip(a, b))


class ResidualSource(Protocol):
    """A control model attached to conditioning: returns residuals for this call (or ``Residuals()``)."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> Residuals: ...


class Denoiser(Protocol):
    """A model predicting ``prediction_type`` ("epsilon", "v_prediction" or "sample") for latents ``x`` (already
    scaled by the scheduler's ``scale_model_input``) at timestep ``t``."""

    prediction_type: str

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> torch.Tensor: ...


class UNetDenoiser:
    """A diffusers ``UNet2DConditionModel`` behind the :class:`Denoiser` interface.

    ``autocast`` (a dtype or None) computes under ``torch.autocast`` when the weights are kept in another
    dtype than the compute dtype, so the shared module is never converted in place. ``vae_scale_factor``: pixels
    per latent cell of the model's VAE (SDXL's default micro-conditioning sizes are counted in pixels).
    """

    def __init__(
        self, unet: Any, prediction_type: str = "epsilon", autocast: torch.dtype | None = None, vae_scale_factor: int = 8
    ) -> None:
        self.unet = unet
        self.prediction_type = prediction_type
        self.autocast = autocast
        self.vae_scale_factor = vae_scale_factor

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> torch.Tensor:
        residuals = Residuals()
        for source in cond.residuals:
            residuals = residuals + source(x, t, cond, step)
        kwargs: dict[str, Any] = {}
        if residuals.down is not None:
            kwargs["down_block_additional_residuals"] = residuals.down
        if residuals.mid is not None:
            kwargs["mid_block_additional_residual"] = residuals.mid
        if residuals.intrablock is not None:
            kwargs["down_intrablock_additional_residuals"] = list(residuals.intrablock)
        if self.autocast is not None:
            with torch.autocast(x.device.type, dtype=self.autocast):
                out = self._forward(x, t, cond, kwargs)
            return out.to(x.dtype)
        return self._forward(x, t, cond, kwargs)

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, kwargs: dict[str, Any]) -> torch.Tensor:
        if cond.concat is not None:
            x = torch.cat([x, cond.concat.to(x.dtype)], dim=1)
        return self.unet(
            x,
            t,
            encoder_hidden_states=cond.embeds,
            timestep_cond=None,
            cross_attention_kwargs=None,
            added_cond_kwargs=cond.added,
            return_dict=False,
            **kwargs,
        )[0]


def added_condition_layout(unet: Any, pooled_dim: int) -> str | None:
    """Which SDXL micro-conditioning the UNet expects, given the pooled embedding's width: ``"size"``
    (original, crop, target: 6 ids), ``"aesthetic"`` (original, crop, aesthetic score: 5 ids, the refiner)
    or None (no added conditions)."""
    config = unet.config
    if getattr(config, "addition_embed_type", None) != "text_time":
        return None
    count = (unet.add_embedding.linear_1.in_features - pooled_dim) // config.addition_time_embed_dim
    if count not in (5, 6):
        raise ValueError(
            f"the model expects {unet.add_embedding.linear_1.in_features} added-condition features, which fits "
            f"no SDXL layout with a pooled embedding of {pooled_dim} (is the CLIP from another model family?)"
        )
    return "aesthetic" if count == 5 else "size"
