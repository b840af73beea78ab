"""Conversions between Pillow images, numpy arrays and the IMAGE / MASK tensors that travel on sockets.

Quantisation follows diffusers (``VaeImageProcessor``): loading divides 8-bit values by 255, saving rounds
``x * 255`` to the nearest integer, so an image that goes through load -> save comes back byte for byte and a
decoded image is saved exactly as diffusers' ``output_type="pil"`` would save it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nodegraph.errors import NodeInputError

if TYPE_CHECKING:
    import torch
    from PIL import Image


def pil_to_tensors(pil: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """An ``[1, H, W, 3]`` image and an ``[1, H, W]`` mask from a Pillow image.

    The mask is 1 where the image is transparent and 0 where it is opaque (ComfyUI's convention: white marks
    the area to repaint when the mask feeds inpainting). Images without alpha get an all-zero mask.
    """
    import torch

    if pil.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale PNG: keep its precision instead of truncating to 8 bits.
        grey = np.asarray(pil, dtype=np.uint16).astype(np.float32) / 65535.0
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        alpha = None
    else:
        has_alpha = "A" in pil.getbands() or (pil.mode == "P" and "transparency" in pil.info)
        if has_alpha:
            rgba = np.asarray(pil.convert("RGBA"))
            rgb = rgba[..., :3].astype(np.float32) / 255.0
            alpha = rgba[..., 3].astype(np.float32) / 255.0
        else:
            rgb = np.asarray(pil.convert("RGB")).astype(np.float32) / 255.0
            alpha = None
    image = torch.from_numpy(np.ascontiguousarray(rgb))[None]
    if alpha is None:
        mask = torch.zeros(image.shape[:3], dtype=torch.float32)
    else:
        mask = torch.from_numpy(1.0 - alpha)[None]
    return image, mask


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[B, H, W, C]`` in 0..1 -> uint8 array, rounding as diffusers' ``numpy_to_pil`` does."""
    import torch

    array = image.detach().to("cpu", dtype=torch.float32).numpy()
    # NaN and infinities (kept on purpose with --allow-nonfinite) become black and white, not a cast warning
    array = np.nan_to_num(array, nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)


def tensor_to_pils(image: torch.Tensor) -> list[Image.Image]:
    """One RGB Pillow image per batch entry."""
    from PIL import Image

    return [Image.fromarray(frame, "RGB") for frame in to_uint8(image)]


def check_image(value: Any, field: str) -> torch.Tensor:
    """The IMAGE on ``field``, or a NodeInputError saying what was found instead."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise NodeInputError(f"{field!r} must be an IMAGE tensor [B, H, W, 3], found {type(value).__name__}", field)
    if value.ndim != 4 or value.shape[-1] != 3:
        raise NodeInputError(f"{field!r} must be an IMAGE tensor [B, H, W, 3], found shape {list(value.shape)}", field)
    return value


def luminance(image: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` luma with the ITU-R 601 weights Pillow's ``convert("L")`` uses."""
    weights = image.new_tensor([0.299, 0.587, 0.114])
    return (image * weights).sum(dim=-1)


def grey_to_image(grey: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` -> ``[B, H, W, 3]`` (a new tensor, never a view of the input)."""
    return grey[..., None].repeat(1, 1, 1, 3).contiguous()
