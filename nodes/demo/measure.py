"""Classify a demo-model image by measurement, with no learned part: background colour from the border,
foreground as the largest connected region that differs from it, its colour (nearest palette entry), and its
shape from the fill ratio of its bounding box and how much of the box's corners it covers.

Benchmarks and tests use it to score generated images against their prompt (numpy only, no torch).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from nodes.demo.dataset import COLOURS, PALETTE

_PALETTE_ARRAY = np.asarray([PALETTE[c] for c in COLOURS], dtype=np.float32)
# Half the smallest distance between two palette colours (red/orange, about 104) is the margin by which a pixel
# must differ from the background to count as foreground.
_FOREGROUND_DISTANCE = 50.0
_MIN_AREA = 24  # pixels; a smaller region is noise, not a drawn shape
_CORNER = 0.2  # corner patches are this fraction of the bounding box per side

# (fill ratio of the bounding box, fill of its two top corner patches, fill of its two bottom corner patches)
_PROTOTYPES = {
    "square": (1.0, 1.0, 1.0),
    "circle": (np.pi / 4, 0.0, 0.0),
    "triangle": (0.5, 0.0, 0.45),
}


@dataclass(frozen=True)
class Measurement:
    colour: str | None  # None when no foreground region was found
    shape: str | None
    background: str
    mask: np.ndarray  # bool [H, W]: the measured foreground region

    def matches(self, colour: str, shape: str, background: str) -> tuple[bool, bool, bool]:
        return self.colour == colour, self.shape == shape, self.background == background


def nearest_colour(rgb: np.ndarray) -> str:
    return COLOURS[int(np.argmin(((_PALETTE_ARRAY - np.asarray(rgb, dtype=np.float32)) ** 2).sum(-1)))]


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """4-connected largest component of a boolean mask (breadth-first; images are at most a few thousand pixels)."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    best_label, best_size, label = 0, 0, 0
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        label += 1
        labels[y0, x0] = label
        queue, size = deque([(y0, x0)]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = label
                    queue.append((ny, nx))
        if size > best_size:
            best_label, best_size = label, size
    return labels == best_label if best_size else np.zeros_like(mask)


def _erode(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def shape_features(mask: np.ndarray) -> tuple[float, float, float]:
    """(fill ratio of the bounding box, top-corner fill, bottom-corner fill) of a boolean region."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = mask[y0:y1, x0:x1].astype(np.float32)
    bh, bw = box.shape
    ch, cw = max(1, round(bh * _CORNER)), max(1, round(bw * _CORNER))
    top = (box[:ch, :cw].mean() + box[:ch, -cw:].mean()) / 2
    bottom = (box[-ch:, :cw].mean() + box[-ch:, -cw:].mean()) / 2
    return float(box.mean()), float(top), float(bottom)


def corner_fill(mask: np.ndarray) -> float:
    """How square the corners of a region's bounding box are: the mean fill of a small patch (a tenth of the
    box's side, at least 2 px) in each of its four corners. A drawn square scores about 1; rounded corners
    leave the patches partly empty (a circle scores 0)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return 0.0
    box = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
    k = max(2, round(min(box.shape) * 0.1))
    return float(np.mean([box[:k, :k].mean(), box[:k, -k:].mean(), box[-k:, :k].mean(), box[-k:, -k:].mean()]))


def classify_shape(mask: np.ndarray) -> str:
    features = np.asarray(shape_features(mask))
    weights = np.asarray([2.0, 1.0, 1.0])  # the fill ratio separates best; corners settle the close calls
    scores = {name: float((weights * (features - np.asarray(p)) ** 2).sum()) for name, p in _PROTOTYPES.items()}
    return min(scores, key=scores.__getitem__)


def measure(image: np.ndarray) -> Measurement:
    """Classify one image: uint8 or float (0..1) array [H, W, 3]."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"expected an image [H, W, 3], got shape {img.shape}")
    if img.max() <= 1.0 + 1e-6 and np.asarray(image).dtype != np.uint8:
        img = img * 255.0
    border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3),
                             img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)])
    bg_rgb = np.median(border, axis=0)
    background = nearest_colour(bg_rgb)
    different = np.sqrt(((img - bg_rgb) ** 2).sum(-1)) > _FOREGROUND_DISTANCE
    region = _largest_component(different)
    if region.sum() < _MIN_AREA:
        return Measurement(None, None, background, region)
    core = _erode(region)  # leave out the anti-aliased / blurred edge when reading the colour
    pixels = img[core] if core.sum() >= 4 else img[region]
    return Measurement(nearest_colour(np.median(pixels, axis=0)), classify_shape(region), background, region)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0
