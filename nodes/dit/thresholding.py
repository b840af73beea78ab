"""The IF folders' own dynamic thresholding as a guidance-chain link.

IF's scheduler configs ask for Imagen's dynamic thresholding inside ``DDPMScheduler.step``. The loader takes it
out of the scheduler (so every scheduler choice behaves alike and no step thresholds twice) and appends this
link to the MODEL's guidance chain instead, which thresholds the predicted clean image with diffusers' own
``_threshold_sample`` (Imagen: per sample, s = the ratio-quantile of |x0| clamped to [1, max]; clip to [-s, s],
divide by s) and converts back to the model's prediction type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from nodes.sampling.guidance import GuidanceState


@dataclass(frozen=True)
class FolderImagenThresholding:
    ratio: float
    max_value: float
    _scheduler: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler(thresholding=True, dynamic_thresholding_ratio=self.ratio, sample_max_value=self.max_value)
        object.__setattr__(self, "_scheduler", scheduler)

    def __call__(self, state: GuidanceState) -> torch.Tensor:
        x0 = state.to_x0(state.guided)
        return state.from_x0(self._scheduler._threshold_sample(x0))

    def cache_nbytes(self) -> int:
        return 0
