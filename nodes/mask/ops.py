"""Mask operations on tensors: fitting a mask to an image, growing and shrinking, feathering, thresholding,
masks from colours, combining, and the bounding box of what a mask covers.

Every function returns a new tensor and leaves its inputs untouched (DESIGN contract 3).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from nodegraph.errors import NodeInputError


def check_mask(value: object, field: str) -> torch.Tensor:
    """The MASK on ``field`` as ``[B, H, W]`` float32 (``[H, W]`` and ``[B, 1, H, W]`` are accepted), or a
    NodeInputError saying what was found instead."""
    if not isinstance(value, torch.Tensor):
        raise NodeInputError(f"{field!r} must be a MASK tensor [B, H, W], found {type(value).__name__}", field)
    if value.ndim == 2:
        value = value[None]
    elif value.ndim == 4 and value.shape[1] == 1:
        value = value[:, 0]
    elif value.ndim == 4 and value.shape[-1] == 3:
        raise NodeInputError(f"{field!r} must be a MASK [B, H, W], found an IMAGE {list(value.shape)}: "
                             "convert it with Image to Mask", field)
    if value.ndim != 3 or 0 in value.shape:
        raise NodeInputError(f"{field!r} must be a MASK tensor [B, H, W], found shape {list(value.shape)}", field)
    return value.to(torch.float32)


def fit_mask(mask: torch.Tensor, height: int, width: int, field: str = "mask") -> tuple[torch.Tensor, str | None]:
    """``mask`` [B, H', W'] at ``height x width``: unchanged when it fits, resized (bilinear) with a note when
    only its size differs, a NodeInputError when its aspect ratio differs by more than a pixel's rounding."""
    mh, mw = mask.shape[-2:]
    if (mh, mw) == (height, width):
        return mask, None
    if abs(mh * width - mw * height) > max(mh, mw, height, width):
        raise NodeInputError(
            f"the mask is {mw}x{mh} but the image is {width}x{height}: their aspect ratios differ, so the mask cannot "
            "be stretched onto it. Draw the mask on this image, or crop/pad one of them first", field,
        )
    resized = F.interpolate(mask[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    return resized.clamp(0.0, 1.0), f"the mask ({mw}x{mh}) was resized to the image's {width}x{height}"


def match_batch(mask: torch.Tensor, batch: int, field: str = "mask") -> torch.Tensor:
    """A mask batch of 1 repeated to ``batch``; equal batches pass; anything else is a clear error."""
    if mask.shape[0] == batch:
        return mask
    if mask.shape[0] == 1:
        return mask.expand(batch, -1, -1).clone()
    raise NodeInputError(f"the mask batch ({mask.shape[0]}) does not match the image batch ({batch})", field)


def dilate_square(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Grey dilation with a ``size x size`` window anchored as ComfyUI's VAE Encode (for Inpainting) anchors
    its kernel (padding ``ceil((size - 1) / 2)``); ``size`` 0 or 1 returns the mask unchanged."""
    if size <= 1:
        return mask.clone()
    pad = math.ceil((size - 1) / 2)
    h, w = mask.shape[-2:]
    x = F.pad(mask[:, None], (pad, pad, pad, pad), value=0.0)
    return F.max_pool2d(x, kernel_size=size, stride=1)[:, 0, :h, :w].contiguous()


def _disk(radius: int, round_shape: bool) -> np.ndarray:
    size = 2 * radius + 1
    if not round_shape:
        return np.ones((size, size), np.uint8)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return ((xx * xx + yy * yy) <= radius * radius + radius).astype(np.uint8)  # + radius: fuller, less jagged


def grow(mask: torch.Tensor, pixels: int, round_shape: bool = True) -> torch.Tensor:
    """Grow the masked area by ``pixels`` (negative: shrink it), with a round or square brush. Soft masks grow
    as grey morphology does (each pixel takes the largest value within reach)."""
    import cv2

    if pixels == 0:
        return mask.clone()
    kernel = _disk(abs(pixels), round_shape)
    frames = []
    for frame in mask.detach().cpu().numpy().astype(np.float32):
        if pixels > 0:
            frames.append(cv2.dilate(frame, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0))
        else:
            frames.append(cv2.erode(frame, kernel, borderType=cv2.BORDER_REPLICATE))
    return torch.from_numpy(np.stack(frames))


def blur(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Soften the mask's edges with a Gaussian of standard deviation ``radius / 2`` pixels (the blur reaches
    about ``radius`` pixels to each side of an edge)."""
    import cv2

    if radius <= 0:
        return mask.clone()
    sigma = radius / 2.0
    frames = [cv2.GaussianBlur(frame, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
              for frame in mask.detach().cpu().numpy().astype(np.float32)]
    return torch.from_numpy(np.stack(frames)).clamp(0.0, 1.0)


def feather_borders(mask: torch.Tensor, left: int, top: int, right: int, bottom: int) -> torch.Tensor:
    """Fade the mask towards the image's borders: within ``left`` pixels of the left edge it is multiplied by a
    linear ramp from 1/(left+1) at the edge to 1 inside, and so on (ComfyUI's Feather Mask)."""
    h, w = mask.shape[-2:]
    ramp_x = torch.ones(w)
    ramp_y = torch.ones(h)
    for ramp, size, start, end in ((ramp_x, w, left, right), (ramp_y, h, top, bottom)):
        start, end = min(start, size), min(end, size)
        if start:
            ramp[:start] = torch.minimum(ramp[:start], torch.arange(1, start + 1) / (start + 1))
        if end:
            ramp[size - end :] = torch.minimum(ramp[size - end :], torch.arange(end, 0, -1) / (end + 1))
    return mask * ramp_y[:, None] * ramp_x[None, :]


def from_color(image: torch.Tensor, color: int, tolerance: int = 0) -> torch.Tensor:
    """1 where the image's 8-bit colour is within ``tolerance`` (per channel) of ``color`` (0xRRGGBB)."""
    rgb = (image.clamp(0, 1) * 255).round().to(torch.int32)
    target = torch.tensor([(color >> 16) & 255, (color >> 8) & 255, color & 255], dtype=torch.int32)
    return ((rgb - target).abs() <= tolerance).all(dim=-1).to(torch.float32)


COMBINE_OPERATIONS = ("multiply", "add", "subtract", "and", "or", "xor", "max", "min")


def combine(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, operation: str) -> torch.Tensor:
    """``source`` combined into ``destination`` with its top-left corner at (x, y); outside the source's
    footprint the destination is unchanged. Results are clamped to 0..1 (ComfyUI's Mask Composite)."""
    out = destination.clone()
    h, w = out.shape[-2:]
    if x >= w or y >= h:
        return out
    sh, sw = min(source.shape[-2], h - y), min(source.shape[-1], w - x)
    region = out[:, y : y + sh, x : x + sw]
    src = match_batch(source, out.shape[0], "source")[:, :sh, :sw]
    if operation == "multiply":
        result = region * src
    elif operation == "add":
        result = region + src
    elif operation == "subtract":
        result = region - src
    elif operation == "and":
        result = ((region > 0.5) & (src > 0.5)).float()
    elif operation == "or":
        result = ((region > 0.5) | (src > 0.5)).float()
    elif operation == "xor":
        result = ((region > 0.5) ^ (src > 0.5)).float()
    elif operation == "max":
        result = torch.maximum(region, src)
    elif operation == "min":
        result = torch.minimum(region, src)
    else:
        raise ValueError(f"unknown operation {operation!r}")
    out[:, y : y + sh, x : x + sw] = result.clamp(0.0, 1.0)
    return out


def bounding_box(mask: torch.Tensor, threshold: float = 0.0) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom), exclusive, of the pixels above ``threshold`` in any batch entry; None when
    the mask is empty."""
    covered = (mask > threshold).any(dim=0)
    rows = torch.nonzero(covered.any(dim=1)).flatten()
    cols = torch.nonzero(covered.any(dim=0)).flatten()
    if rows.numel() == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
