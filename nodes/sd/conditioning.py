"""The value on CONDITIONING sockets: a tuple of entries, each an encoded prompt plus what goes with it.

An entry holds

- ``embeds``: the text encoder hidden states the UNet cross-attends to, ``[B, T, D]`` (T = 77 per chunk);
- ``pooled``: the pooled text embedding SDXL feeds to its added-condition embedding, ``[B, D2]``, or None;
- ``extras``: everything else, by name. Keys read by the sampler today:

  * ``original_size`` (height, width), ``crop_top_left`` (top, left), ``target_size`` (height, width):
    SDXL micro-conditioning in pixels; a 0 in a size means "the latent's size at sampling time";
  * ``aesthetic_score``: the SDXL refiner's score;
  * ``strength``: weight of this entry when several entries are averaged (default 1.0);
  * ``residuals``: a tuple of :class:`nodes.sampling.denoiser.ResidualSource` callables, the hook through
    which ControlNet and T2I-Adapter add their down/mid block residuals to the UNet call;
  * ``concat_latent_image`` ``[B, 4, h, w]`` and ``concat_mask`` ``[B, H, W]``: the masked image's latents and
    the mask an inpainting UNet gets appended to its input (Inpaint Conditioning; :mod:`nodes.sampling.masking`).

Entries are frozen and the consumer never mutates a tensor in them (DESIGN contract 3): nodes that change
conditioning build new entries with :meth:`ConditioningEntry.with_extras`.

This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

Conditioning = tuple["ConditioningEntry", ...]


@dataclass(frozen=True, eq=False)
class ConditioningEntry:
    """One encoded prompt. See the module docstring for the meaning of ``extras`` keys."""

    embeds: Any
    pooled: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def with_extras(self, **changes: Any) -> ConditioningEntry:
        """A new entry with ``extras`` updated (the tensors are shared, never copied or modified)."""
        return dataclasses.replace(self, extras={**self.extras, **changes})

    def cache_nbytes(self) -> int:
        total = 0
        for tensor in (self.embeds, self.pooled, self.extras.get("concat_latent_image"), self.extras.get("concat_mask")):
            if tensor is not None:
                total += tensor.numel() * tensor.element_size()
        return total


def conditioning_nbytes(conditioning: Conditioning) -> int:
    return sum(entry.cache_nbytes() for entry in conditioning)
