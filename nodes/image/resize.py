"""Resampling shared by the image and latent scale nodes (torch's interpolate; Pillow for Lanczos)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_nchw(x: torch.Tensor, height: int, width: int, method: str) -> torch.Tensor:
    """``[N, C, H, W]`` resampled to ``height x width``; returns a new tensor."""
    if method == "lanczos":
        return _lanczos(x, height, width)
    if method == "nearest":
        # "nearest-exact" samples pixel centres (as Pillow does); plain "nearest" is shifted by half a pixel.
        return F.interpolate(x, size=(height, width), mode="nearest-exact")
    if method == "area":
        return F.interpolate(x, size=(height, width), mode="area")
    if method in ("bilinear", "bicubic"):
        # Antialiasing filters what a downscale would otherwise alias; it is a no-op when enlarging.
        return F.interpolate(x, size=(height, width), mode=method, align_corners=False, antialias=True)
    raise ValueError(f"unknown resampling method {method!r}")


def _lanczos(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    from PIL import Image

    # Pillow resamples 32-bit float images ("F" mode) channel by channel without quantising to 8 bits.
    source = x.detach().to("cpu", torch.float32).numpy()
    out = np.empty((*source.shape[:2], height, width), dtype=np.float32)
    for n in range(source.shape[0]):
        for c in range(source.shape[1]):
            plane = Image.fromarray(source[n, c], mode="F")
            out[n, c] = np.asarray(plane.resize((width, height), Image.Resampling.LANCZOS))
    return torch.from_numpy(out).to(x.device, x.dtype)


def center_crop_to_aspect(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The largest centred window of ``[N, C, H, W]`` with the aspect ratio ``width / height``."""
    src_h, src_w = x.shape[-2:]
    if src_w * height > width * src_h:  # too wide: trim the sides
        keep = max(1, round(src_h * width / height))
        left = (src_w - keep) // 2
        return x[..., :, left : left + keep]
    keep = max(1, round(src_w * height / width))
    top = (src_h - keep) // 2
    return x[..., top : top + keep, :]


def target_size(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int]:
    """Fill a 0 in ``height`` / ``width`` from the other side, keeping the aspect ratio."""
    if width == 0 and height == 0:
        return src_h, src_w
    if width == 0:
        width = max(1, round(src_w * height / src_h))
    elif height == 0:
        height = max(1, round(src_h * width / src_w))
    return height, width
