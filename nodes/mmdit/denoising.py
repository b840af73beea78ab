"""Parts of the FLUX and SD3 denoisers: batching conditioning entries, width checks, autocast.

A FLUX / SD3 conditioning entry holds the joint text embedding (``embeds``: T5 tokens, for SD3 after the padded CLIP
tokens) and the pooled CLIP embedding (``pooled``); FLUX entries also carry their distilled guidance
(``extras["guidance"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nodes.sampling.flow_matching import FLOW_PREDICTION
from nodes.sampling.loop import ConditioningMismatch
from nodes.sd.conditioning import ConditioningEntry


def rows(tensor: torch.Tensor, batch: int) -> torch.Tensor:
    """``tensor`` with its first dimension repeated to ``batch`` rows (one prompt for a batch of images)."""
    if tensor.shape[0] == batch:
        return tensor
    return tensor[:1].repeat(batch, *([1] * (tensor.ndim - 1)))


def stack(entries: Sequence[ConditioningEntry], which: str, batch: int, device: Any, dtype: Any,
          width: int, family: str) -> torch.Tensor:
    """The entries' ``embeds`` or ``pooled``, each repeated to the batch, checked against the model's width."""
    parts = []
    for entry in entries:
        value = getattr(entry, which)
        if value is None or value.ndim != (3 if which == "embeds" else 2):
            raise ConditioningMismatch(f"this {family} model needs a {'pooled ' if which == 'pooled' else ''}text "
                                       f"embedding from the {family} text encode node; the conditioning has none")
        if value.shape[-1] != width:
            raise ConditioningMismatch(
                f"the {family} model expects {'pooled ' if which == 'pooled' else ''}text embeddings {width} wide, the "
                f"conditioning's are {value.shape[-1]} wide: was the prompt encoded with another model's text encoders?")
        parts.append(rows(value, batch).to(device=device, dtype=dtype))
    return torch.cat(parts)


class FlowDenoiser:
    """Shared parts of the FLUX and SD3 denoisers: the network, flow prediction, optional autocast."""

    prediction_type = FLOW_PREDICTION
    learned_variance = False

    def __init__(self, network: Any, autocast: torch.dtype | None = None) -> None:
        self.network = network
        self.autocast = autocast

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: Any, step: Any) -> torch.Tensor:
        if self.autocast is not None:
            with torch.autocast(x.device.type, dtype=self.autocast):
                return self._forward(x, t, cond).to(x.dtype)
        return self._forward(x, t, cond)

    def _forward(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        raise NotImplementedError
