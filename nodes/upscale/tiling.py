"""Running an upscale model tile by tile, so memory stays bounded at any image size.

The image is cut into overlapping tiles of at most ``tile`` pixels per side; each is upscaled on its own and
the results are blended where they overlap. In an overlap of ``o`` pixels each tile's outermost ``o / 4`` pixels
get weight 0 (a tile's edge pixels are where it differs from an untiled run: the network there sees padding
instead of the neighbouring image), and the weights ramp linearly across the middle half, summing to 1. So
when the overlap is at least four times the network's receptive radius, the tiled result equals the untiled
one up to float rounding; with larger networks the ramp hides the seams.

Tile offsets and sizes are multiples of the model's ``size_requirements.multiple_of`` and of its attention
window (``window_size`` of SwinIR, HAT, ...), so window partitions inside a tile line up with those of an
untiled run. A tile larger than the image means one tile: the whole image at once.

Peak memory: the input image, the output image twice (the float32 accumulator of one batch entry and the
result), its weights, plus one tile's activations, which do not grow with the image.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch


def tile_spans(size: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """(start, end) of tiles covering ``0..size``: starts are multiples of ``align``, neighbours overlap by at
    least ``overlap``, tiles are at most ``tile`` long (the last one may be shorter)."""
    if size <= tile:
        return [(0, size)]
    step = (tile - overlap) // align * align
    if align > 1:  # the last start is rounded up to ``align``: leave room so its overlap stays >= overlap
        step -= align
    step = max(align, step)
    starts = list(range(0, size - tile, step))
    last = -(-(size - tile) // align) * align
    if last > starts[-1]:
        starts.append(last)
    return [(s, min(s + tile, size)) for s in starts]


def _ramp(length: int, lead: int, trail: int) -> torch.Tensor:
    """Weights along one side of a tile of ``length`` output pixels whose first ``lead`` and last ``trail``
    pixels are shared with neighbours (see the module docstring)."""
    weights = torch.ones(length)
    position = torch.arange(length, dtype=torch.float64) + 0.5
    if lead:
        margin = lead // 4
        ramp = ((position - margin) / max(1, lead - 2 * margin)).clamp(0, 1)
        weights = torch.minimum(weights, ramp.float())
    if trail:
        margin = trail // 4
        ramp = ((length - position - margin) / max(1, trail - 2 * margin)).clamp(0, 1)
        weights = torch.minimum(weights, ramp.float())
    return weights


def _axis_weights(spans: list[tuple[int, int]], index: int, scale: int) -> torch.Tensor:
    start, end = spans[index]
    lead = (spans[index - 1][1] - start) * scale if index > 0 else 0
    trail = (end - spans[index + 1][0]) * scale if index + 1 < len(spans) else 0
    return _ramp((end - start) * scale, lead, trail)


def upscale_image(
    model: Any,
    image: torch.Tensor,
    tile: int,
    overlap: int,
    *,
    device: Any = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Upscale IMAGE ``[B, H, W, 3]`` (0..1) with a spandrel ``ImageModelDescriptor``; returns ``[B, sH, sW, 3]``
    float32 on the CPU, clamped to 0..1."""
    scale = int(model.scale)
    align = alignment(model)
    tile = max(align, tile // align * align)
    batch, height, width, _ = image.shape
    rows = tile_spans(height, tile, overlap, align)
    cols = tile_spans(width, tile, overlap, align)
    total, done = batch * len(rows) * len(cols), 0
    compute = torch.autocast(torch.device(device).type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    results = torch.empty((batch, height * scale, width * scale, 3), dtype=torch.float32)
    for b in range(batch):
        source = image[b : b + 1].movedim(-1, 1)
        out = torch.zeros((3, height * scale, width * scale), dtype=torch.float32)
        weight = torch.zeros((height * scale, width * scale), dtype=torch.float32)
        for i, (top, bottom) in enumerate(rows):
            wy = _axis_weights(rows, i, scale)
            for j, (left, right) in enumerate(cols):
                if check_cancelled is not None:
                    check_cancelled()
                piece = source[:, :, top:bottom, left:right].to(device=device, dtype=torch.float32)
                with torch.inference_mode(), compute:
                    result = model(piece)
                result = result[0].to("cpu", torch.float32)
                w = wy[:, None] * _axis_weights(cols, j, scale)[None, :]
                ys, xs = slice(top * scale, bottom * scale), slice(left * scale, right * scale)
                out[:, ys, xs] += result * w
                weight[ys, xs] += w
                done += 1
                if progress is not None:
                    progress(done, total)
        results[b] = out.div_(weight).clamp_(0.0, 1.0).movedim(0, -1)
        del out, weight
    return results


def alignment(model: Any) -> int:
    """Tile offsets and sizes must be multiples of this: the model's size multiple and its attention window."""
    align = max(1, int(getattr(model.size_requirements, "multiple_of", 1) or 1))
    window = getattr(getattr(model, "model", None), "window_size", None)
    windows = window if isinstance(window, (tuple, list)) else (window,)
    for value in windows:
        if isinstance(value, int) and value > 1:
            align = math.lcm(align, value)
    return align
