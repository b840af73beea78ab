"""ComfyUI's resizing of latents and images (``comfy.utils.common_upscale``): a centre crop to the target's
aspect ratio (when asked), then torch's interpolation in the named mode (``nearest-exact``, ``bilinear``,
``area``, ``bicubic``), spherical interpolation of channel vectors (``bislerp``) or Pillow's Lanczos on
8-bit copies (``lanczos``)."""

from __future__ import annotations

import numpy as np
import torch

LATENT_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
IMAGE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")


def center_crop(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Trim ``x`` [N, C, H, W] evenly to the aspect ratio of width x height (ComfyUI's rounding)."""
    old_w, old_h = x.shape[-1], x.shape[-2]
    old_aspect, new_aspect = old_w / old_h, width / height
    left = top = 0
    if old_aspect > new_aspect:
        left = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        top = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return x.narrow(-2, top, old_h - top * 2).narrow(-1, left, old_w - left * 2)


def _slerp(a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the rows of ``a`` and ``b`` [M, C] at ratios ``r`` [M, 1]; the length is
    interpolated linearly. Parallel rows keep ``a``; opposite rows fall back to a straight line."""
    channels = a.shape[-1]
    a_len, b_len = torch.norm(a, dim=-1, keepdim=True), torch.norm(b, dim=-1, keepdim=True)
    a_dir, b_dir = a / a_len, b / b_len
    a_dir[a_len.expand(-1, channels) == 0.0] = 0.0
    b_dir[b_len.expand(-1, channels) == 0.0] = 0.0
    dot = (a_dir * b_dir).sum(1)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    out = (torch.sin((1.0 - r.squeeze(1)) * omega) / sin_omega).unsqueeze(1) * a_dir
    out = out + (torch.sin(r.squeeze(1) * omega) / sin_omega).unsqueeze(1) * b_dir
    out *= (a_len * (1.0 - r) + b_len * r).expand(-1, channels)
    parallel, opposite = dot > 1 - 1e-5, dot < 1e-5 - 1
    out[parallel] = a[parallel]
    out[opposite] = (a * (1.0 - r) + b * r)[opposite]
    return out


def _neighbours(old: int, new: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each new position along one axis: the fraction between its two source cells, and their indices
    (taken from bilinear interpolation of the index ramps, as ComfyUI does)."""
    first = torch.arange(old, dtype=torch.float32, device=device).reshape((1, 1, 1, -1))
    first = torch.nn.functional.interpolate(first, size=(1, new), mode="bilinear")
    ratios = first - first.floor()
    second = torch.arange(old, dtype=torch.float32, device=device).reshape((1, 1, 1, -1)) + 1
    second[:, :, :, -1] -= 1
    second = torch.nn.functional.interpolate(second, size=(1, new), mode="bilinear")
    return ratios, first.to(torch.int64), second.to(torch.int64)


def bislerp(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize by slerping channel vectors along the width, then along the height."""
    dtype = x.dtype
    x = x.float()
    n, c, h, w = x.shape
    ratios, i1, i2 = _neighbours(w, width, x.device)
    a = x.gather(-1, i1.expand((n, c, h, -1))).movedim(1, -1).reshape((-1, c))
    b = x.gather(-1, i2.expand((n, c, h, -1))).movedim(1, -1).reshape((-1, c))
    r = ratios.expand((n, 1, h, -1)).movedim(1, -1).reshape((-1, 1))
    x = _slerp(a, b, r).reshape(n, h, width, c).movedim(-1, 1)
    ratios, i1, i2 = _neighbours(h, height, x.device)
    a = x.gather(-2, i1.reshape((1, 1, -1, 1)).expand((n, c, -1, width))).movedim(1, -1).reshape((-1, c))
    b = x.gather(-2, i2.reshape((1, 1, -1, 1)).expand((n, c, -1, width))).movedim(1, -1).reshape((-1, c))
    r = ratios.reshape((1, 1, -1, 1)).expand((n, 1, -1, width)).movedim(1, -1).reshape((-1, 1))
    return _slerp(a, b, r).reshape(n, height, width, c).movedim(-1, 1).to(dtype)


def lanczos(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pillow's Lanczos on 8-bit (truncated) copies of each image [N, C, H, W] in 0..1."""
    from PIL import Image

    out = []
    for image in x:
        pixels = np.clip(255.0 * image.movedim(0, -1).cpu().numpy(), 0, 255).astype(np.uint8)
        resized = Image.fromarray(pixels).resize((width, height), resample=Image.Resampling.LANCZOS)
        out.append(torch.from_numpy(np.array(resized).astype(np.float32) / 255.0).movedim(-1, 0))
    return torch.stack(out).to(x.device, x.dtype)


def common_upscale(x: torch.Tensor, width: int, height: int, method: str, crop: str) -> torch.Tensor:
    """Resize ``x`` [N, C, H, W] to width x height with ComfyUI's ``method`` and ``crop`` ("disabled"/"center")."""
    if crop == "center":
        x = center_crop(x, width, height)
    if method == "bislerp":
        return bislerp(x, width, height)
    if method == "lanczos":
        return lanczos(x, width, height)
    return torch.nn.functional.interpolate(x, size=(height, width), mode=method)
