"""Deterministic procedural dataset of the demo model: one flat shape on a plain background, 64x64.

Every sample is a function of (seed, index) alone, so a training run, a benchmark and a test all see the same
images. A fixed set of (colour, shape, background) combinations never appears in training; the benchmark
prompts them to measure generalisation. The control condition of the ControlNet / T2I-Adapter is the shape's
(anti-aliased) mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 64

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")

# Held out from training. Chosen so that every colour appears as foreground and background, and every shape
# appears, both among the held-out and (many times) among the training combinations: only the triple is new.
HELD_OUT: frozenset[tuple[str, str, str]] = frozenset(
    {
        ("red", "circle", "green"),
        ("green", "square", "white"),
        ("blue", "triangle", "yellow"),
        ("yellow", "circle", "purple"),
        ("purple", "square", "orange"),
        ("orange", "triangle", "black"),
        ("white", "circle", "red"),
        ("black", "square", "blue"),
        ("red", "triangle", "white"),
        ("blue", "square", "black"),
        ("yellow", "triangle", "green"),
        ("orange", "circle", "blue"),
    }
)

ALL_COMBINATIONS: tuple[tuple[str, str, str], ...] = tuple(
    (c, s, b) for c in COLOURS for s in SHAPES for b in COLOURS if b != c
)
TRAIN_COMBINATIONS: tuple[tuple[str, str, str], ...] = tuple(x for x in ALL_COMBINATIONS if x not in HELD_OUT)
HELD_OUT_COMBINATIONS: tuple[tuple[str, str, str], ...] = tuple(x for x in ALL_COMBINATIONS if x in HELD_OUT)

# Shapes span 18..46 px and always lie fully inside the frame with a small margin, so the background is
# visible on every border (the classifier reads the background colour from the border).
MIN_EXTENT, MAX_EXTENT, MARGIN = 18, 46, 3
_SUPERSAMPLE = 4


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(colour: str, shape: str, background: str) -> str:
    """'a red circle on a blue background', with 'an' before a vowel ('an orange square on a black background')."""
    return f"{_article(colour)} {colour} {shape} on {_article(background)} {background} background"


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # uint8 [64, 64, 3]
    mask: np.ndarray  # float32 [64, 64] in 0..1, the shape's coverage of each pixel
    colour: str
    shape: str
    background: str

    @property
    def caption(self) -> str:
        return caption(self.colour, self.shape, self.background)


def shape_mask(shape: str, cx: float, cy: float, extent: float, size: int = SIZE) -> np.ndarray:
    """Coverage in 0..1 of an axis-aligned shape whose bounding box is ``extent`` px wide, centred at (cx, cy)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    n = size * _SUPERSAMPLE
    coords = (np.arange(n, dtype=np.float32) + 0.5) / _SUPERSAMPLE
    x, y = np.meshgrid(coords, coords)
    half = extent / 2
    if shape == "circle":
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= half**2
    elif shape == "square":
        inside = (np.abs(x - cx) <= half) & (np.abs(y - cy) <= half)
    else:  # upright isosceles triangle: apex at the top centre, base along the bottom of the box
        top, bottom = cy - half, cy + half
        t = (y - top) / extent  # 0 at the apex, 1 at the base
        inside = (y >= top) & (y <= bottom) & (np.abs(x - cx) <= t * half)
    cover = inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    return cover.astype(np.float32)


def render(colour: str, shape: str, background: str, cx: float, cy: float, extent: float) -> Sample:
    mask = shape_mask(shape, cx, cy, extent)
    fg = np.asarray(PALETTE[colour], dtype=np.float32)
    bg = np.asarray(PALETTE[background], dtype=np.float32)
    image = mask[..., None] * fg + (1.0 - mask[..., None]) * bg
    return Sample(np.rint(image).astype(np.uint8), mask, colour, shape, background)


def random_geometry(rng: np.random.Generator) -> tuple[float, float, float]:
    extent = float(rng.uniform(MIN_EXTENT, MAX_EXTENT))
    lo, hi = MARGIN + extent / 2, SIZE - MARGIN - extent / 2
    return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)), extent


def sample(index: int, seed: int = 0, split: str = "train") -> Sample:
    """The ``index``-th sample of a split ("train": training combinations, "heldout": the held-out ones)."""
    combos = {"train": TRAIN_COMBINATIONS, "heldout": HELD_OUT_COMBINATIONS}.get(split)
    if combos is None:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'heldout'")
    rng = np.random.default_rng([seed, index, 0 if split == "train" else 1])
    colour, shape, background = combos[int(rng.integers(len(combos)))]
    return render(colour, shape, background, *random_geometry(rng))


def batch_arrays(count: int, seed: int = 0, split: str = "train", start: int = 0):
    """``count`` consecutive samples as arrays: images uint8 [N, 64, 64, 3], masks float32 [N, 64, 64], captions,
    and the (colour, shape, background) label of each."""
    samples = [sample(start + i, seed, split) for i in range(count)]
    images = np.stack([s.image for s in samples])
    masks = np.stack([s.mask for s in samples])
    return images, masks, [s.caption for s in samples], [(s.colour, s.shape, s.background) for s in samples]
