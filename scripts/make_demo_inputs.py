"""Writes the input images of the demo workflows (examples/images/) from the demo dataset's renderer.

    python scripts/make_demo_inputs.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from nodes.demo import dataset

OUT = Path(__file__).resolve().parent.parent / "examples" / "images"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # img2img source: a yellow square on purple, to be turned into another colour scheme
    square = dataset.render("yellow", "square", "purple", 30.0, 34.0, 34.0)
    Image.fromarray(square.image).save(OUT / "demo_yellow_square.png")
    # control mask: a triangle in the lower left; the prompt decides colours, the mask where and what
    mask = dataset.shape_mask("triangle", 22.0, 40.0, 36.0)
    Image.fromarray(np.rint(np.repeat(mask[..., None], 3, axis=2) * 255).astype(np.uint8)).save(OUT / "demo_mask_triangle.png")


if __name__ == "__main__":
    main()
