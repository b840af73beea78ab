"""The class-conditional DiT (DiTTransformer2DModel) behind the sampler's one denoiser interface.

Conditioning entries carry a class id (``extras["class_label"]``) or None for the null class, the extra embedding
row the model was trained to see in place of a label (1000 for the ImageNet models: DiTPipeline's ``class_null``),
which is what classifier-free guidance compares against. The model predicts noise and, in as many more channels,
its variance (the learned sigma); the sampler guides the noise part and drops the variance unless the scheduler is
configured for learned variance, as DiTPipeline does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from nodes.sampling.denoiser import CondBatch, StepInfo
from nodes.sampling.loop import ConditioningMismatch
from nodes.sd.conditioning import ConditioningEntry


def class_rows(entries: Sequence[ConditioningEntry], classes: int, batch: int) -> list[int]:
    """One class id per model row: each entry's label (an id, a tuple of one id per image of the batch, or None
    for the null class ``classes``) repeated over the batch. ConditioningMismatch for text conditioning, an id the
    model has no embedding for, or a list of labels that does not match the batch."""
    out: list[int] = []
    for entry in entries:
        if "class_label" not in entry.extras:
            raise ConditioningMismatch("a class-conditional DiT is conditioned on class labels, not text: use Class "
                                       "Label, ImageNet Class or Null Class nodes")
        label = entry.extras["class_label"]
        labels = [classes] * batch if label is None else list(label) if isinstance(label, (tuple, list)) else [label]
        if len(labels) == 1:
            labels = labels * batch
        if len(labels) != batch:
            raise ConditioningMismatch(f"the conditioning names {len(labels)} classes (one per image) but the latent "
                                       f"batch has {batch} images: make them equal", "latent_image")
        for value in labels if label is not None else ():
            if not 0 <= int(value) < classes:
                raise ConditioningMismatch(f"class {value} does not exist: this model knows classes 0 to {classes - 1}")
        out.extend(int(v) for v in labels)
    return out


class ClassDiTDenoiser:
    def __init__(self, transformer: Any, prediction_type: str, autocast: torch.dtype | None = None) -> None:
        self.network = transformer
        self.prediction_type = prediction_type
        self.autocast = autocast
        config = transformer.config
        self.learned_variance = (config.out_channels or config.in_channels) == 2 * config.in_channels

    def condition_batch(self, entries: Sequence[ConditioningEntry], batch: int, latent_hw: tuple[int, int],
                        device: Any, dtype: torch.dtype) -> CondBatch:
        labels = class_rows(entries, int(self.network.config.num_embeds_ada_norm), batch)
        return CondBatch(torch.tensor(labels, device=device), {})

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: CondBatch, step: StepInfo) -> torch.Tensor:
        timestep = t.reshape(1).to(x.device).expand(x.shape[0]) if torch.is_tensor(t) else torch.full((x.shape[0],), t)
        if self.autocast is not None:
            with torch.autocast(x.device.type, dtype=self.autocast):
                out = self.network(x, timestep=timestep, class_labels=cond.embeds, return_dict=False)[0]
            return out.to(x.dtype)
        return self.network(x, timestep=timestep, class_labels=cond.embeds, return_dict=False)[0]
