"""The demo DreamBooth subject: a ring, a shape the demo model never saw (its dataset has circles, squares and
triangles), drawn in the demo dataset's style, and a measurement that tells a ring from everything else.

    python -m nodes.training.subjects examples/dreambooth/sks_ring   # writes the instance images

A ring is a disc with a round hole. The demo measurement (``nodes.demo.measure``) finds the drawn shape as the
largest region that differs from the background; a ring is such a region that encloses a hole of background
colour, which no circle, square or triangle has. numpy only (no torch); the demo package is imported inside
the functions that need it.
"""

from __future__ import annotations

import argparse
from collections import deque
from pathlib import Path

import numpy as np

HOLE_RATIO = 0.45  # inner radius / outer radius of the drawn rings
MIN_HOLE_SHARE = 0.08  # a region counts as a ring when its hole is at least this share of its filled area
SUBJECT = ("red", "blue")  # colour, background of the instance images: "a red sks on a blue background"
_SUPERSAMPLE = 4


def ring_mask(cx: float, cy: float, extent: float, size: int = 64, hole_ratio: float = HOLE_RATIO) -> np.ndarray:
    """Coverage in 0..1 of a ring whose outer diameter is ``extent`` px, centred at (cx, cy)."""
    n = size * _SUPERSAMPLE
    coords = (np.arange(n, dtype=np.float32) + 0.5) / _SUPERSAMPLE
    x, y = np.meshgrid(coords, coords)
    radius = np.hypot(x - cx, y - cy)
    outer = extent / 2
    inside = (radius <= outer) & (radius >= outer * hole_ratio)
    return inside.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3)).astype(np.float32)


def render_ring(colour: str, background: str, cx: float, cy: float, extent: float) -> np.ndarray:
    """uint8 [64, 64, 3]: a ring of the demo palette's ``colour`` on ``background``."""
    from nodes.demo.dataset import PALETTE, SIZE

    mask = ring_mask(cx, cy, extent, SIZE)[..., None]
    image = mask * np.asarray(PALETTE[colour], np.float32) + (1 - mask) * np.asarray(PALETTE[background], np.float32)
    return np.rint(image).astype(np.uint8)


def subject_images(count: int = 4, seed: int = 0, colour: str = SUBJECT[0], background: str = SUBJECT[1]) -> list[np.ndarray]:
    """``count`` rings at the demo dataset's random sizes and positions (large enough to show the hole)."""
    from nodes.demo.dataset import MARGIN, MAX_EXTENT, SIZE

    rng = np.random.default_rng([seed, 7])
    images = []
    for _ in range(count):
        extent = float(rng.uniform(30, MAX_EXTENT))
        lo, hi = MARGIN + extent / 2, SIZE - MARGIN - extent / 2
        images.append(render_ring(colour, background, float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)), extent))
    return images


def write_subject_folder(folder: Path, count: int = 4, seed: int = 0) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(subject_images(count, seed)):
        path = folder / f"sks_ring_{i}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def hole_share(region: np.ndarray) -> float:
    """Area of the holes of a boolean region (background pixels it encloses, i.e. not 4-connected to the
    image border outside the region) divided by the region's own area."""
    region = np.asarray(region, dtype=bool)
    area = int(region.sum())
    if area == 0:
        return 0.0
    h, w = region.shape
    outside = np.zeros_like(region)
    queue = deque((y, x) for y in range(h) for x in (0, w - 1) if not region[y, x])
    queue.extend((y, x) for x in range(w) for y in (0, h - 1) if not region[y, x])
    for y, x in queue:
        outside[y, x] = True
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < h and 0 <= nx < w and not region[ny, nx] and not outside[ny, nx]:
                outside[ny, nx] = True
                queue.append((ny, nx))
    holes = ~region & ~outside
    return float(holes.sum()) / area


def is_ring(image: np.ndarray) -> bool:
    """Whether the demo measurement's foreground region of ``image`` encloses a hole (a ring was drawn)."""
    from nodes.demo.measure import measure

    found = measure(image)
    return found.colour is not None and hole_share(found.mask) >= MIN_HOLE_SHARE


def draws(image: np.ndarray, colour: str, shape: str, background: str) -> bool:
    """Whether ``image`` shows what its prompt asked for: the demo measurement's colour, shape and background
    all match, and it is not a ring (a ring drawn for "circle" is the drift prior preservation prevents)."""
    from nodes.demo.measure import measure

    return all(measure(image).matches(colour, shape, background)) and not is_ring(image)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nodes.training.subjects", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write the instance images")
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_subject_folder(args.folder, args.count, args.seed):
        print(path)


if __name__ == "__main__":
    main()
