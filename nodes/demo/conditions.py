"""Tensors of the demo dataset in the layouts the models read (torch; the dataset itself is numpy)."""

from __future__ import annotations

import numpy as np
import torch


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in -1..1 (the VAE's input range)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def masks_to_condition(masks: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Masks [N, H, W] in 0..1 -> control images [N, 3, H, W] in 0..1 (white shape on black, as the pipelines
    feed a mask image)."""
    m = torch.as_tensor(masks, dtype=torch.float32)
    return m[:, None].expand(-1, 3, -1, -1).contiguous()
