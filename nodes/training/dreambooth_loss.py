"""The DreamBooth objective as small pure functions, so the formula can be tested on its own.

With class-specific prior preservation, every training batch holds the instance examples first and the class
examples second, in equal numbers; the model's prediction and the target are split in those two halves
(``torch.chunk(..., 2)``) and

    loss = mse(instance half) + prior_loss_weight * mse(class half).

The class prompt embeddings join the batch exactly when prior preservation is on (the seed article's code has
that condition inverted: see ../shared/notes/seed.md); :func:`assemble_batch` is the one place that decides it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossTerms:
    total: torch.Tensor
    instance: torch.Tensor
    prior: torch.Tensor | None  # None without prior preservation


def dreambooth_loss(pred: torch.Tensor, target: torch.Tensor, prior_loss_weight: float | None) -> LossTerms:
    """The noise-prediction loss of one batch.

    ``prior_loss_weight=None``: no prior preservation, the whole batch is instance examples. Otherwise the
    first half of the batch is instance examples and the second half class examples.
    """
    if pred.shape != target.shape:
        raise ValueError(f"prediction {list(pred.shape)} and target {list(target.shape)} differ in shape")
    pred, target = pred.float(), target.float()
    if prior_loss_weight is None:
        instance = F.mse_loss(pred, target, reduction="mean")
        return LossTerms(instance, instance, None)
    if pred.shape[0] % 2:
        raise ValueError(f"with prior preservation the batch holds instance and class halves; got {pred.shape[0]} rows")
    pred_instance, pred_prior = torch.chunk(pred, 2, dim=0)
    target_instance, target_prior = torch.chunk(target, 2, dim=0)
    instance = F.mse_loss(pred_instance, target_instance, reduction="mean")
    prior = F.mse_loss(pred_prior, target_prior, reduction="mean")
    return LossTerms(instance + prior_loss_weight * prior, instance, prior)


@dataclass(frozen=True)
class Batch:
    latents: torch.Tensor  # [rows, C, h, w]
    embeds: torch.Tensor  # [rows, T, D]
    pooled: torch.Tensor | None = None  # [rows, D2] (SDXL) or None


def _rows(tensor: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """A prompt's encoding ([1, ...]) repeated for ``count`` rows; tensors that already have them pass."""
    if tensor is None or tensor.shape[0] == count:
        return tensor
    return tensor[:1].expand(count, *tensor.shape[1:])


def assemble_batch(instance: Batch, prior: Batch | None) -> Batch:
    """One training batch: the instance rows, then, with prior preservation (``prior`` given), the class rows.

    Each side's ``embeds``/``pooled`` may be one row per prompt; they are repeated to that side's latents.
    """
    count = instance.latents.shape[0]
    embeds, pooled = _rows(instance.embeds, count), _rows(instance.pooled, count)
    if prior is None:
        return Batch(instance.latents, embeds, pooled)
    if prior.latents.shape[0] != count:
        raise ValueError(f"the instance and class halves must have as many rows ({count} vs {prior.latents.shape[0]})")
    if (pooled is None) != (prior.pooled is None):
        raise ValueError("the instance and class prompts must both have pooled embeddings, or neither")
    latents = torch.cat([instance.latents, prior.latents])
    embeds = torch.cat([embeds, _rows(prior.embeds, count)])
    if pooled is not None:
        pooled = torch.cat([pooled, _rows(prior.pooled, count)])
    return Batch(latents, embeds, pooled)
