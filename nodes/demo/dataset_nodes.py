"""Demo Shapes: the demo model's procedural dataset as a node (images, shape masks and captions), so a workflow
can make training data for the demo model, e.g. edge maps through Canny Edges for Train ControlNet.

The dataset is numpy only; torch is imported inside the node function."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.node import Output, node
from nodegraph.params import Choice, Int
from nodegraph.types import IMAGE, MASK, STRING

SPLITS = ("train", "heldout")
CAPTION_STYLES = ("varied", "sentence")


@node(
    "core.DemoShapes", name="Demo Shapes", category="training",
    description=(
        "Images of the built-in demo model's world: one flat circle, square or triangle in one of 8 colours on a "
        "plain background, 64x64, with the shape's mask and a caption. 'train' draws the combinations the demo "
        "model was trained on, 'heldout' the 12 it never saw. The same seed gives the same images."
    ),
    params=[
        Int("count", 16, min=1, max=10_000, help="How many images (10,000 take about 0.5 GB as an IMAGE batch)."),
        Int("seed", 0, min=0, max=2**31 - 1, help="Which images (each image is a function of the seed and its index)."),
        Choice("split", SPLITS[0], choices=SPLITS, help="Training combinations or the held-out ones."),
        Choice("captions", CAPTION_STYLES[0], choices=CAPTION_STYLES,
               help="varied: sentences, tag lists and 'a photo of ...' as people type them; sentence: "
                    "'a red circle on a blue background'."),
    ],
    outputs=[
        Output("images", IMAGE),
        Output("masks", MASK, help="Each shape's coverage of each pixel (0..1)."),
        Output("captions", STRING, help="One caption per line."),
    ],
)
def demo_shapes(ctx: NodeContext, count: int, seed: int, split: str, captions: str) -> dict[str, Any]:
    import numpy as np
    import torch

    from nodes.demo import captions as wording
    from nodes.demo import dataset

    images, masks, lines, labels = dataset.batch_arrays(count, seed=seed, split=split)
    if captions == "varied":
        rng = np.random.default_rng([seed, 7])
        lines = [wording.random_caption(rng, *label, partial=False) for label in labels]
    return {
        "images": torch.from_numpy(images.astype(np.float32) / 255.0),
        "masks": torch.from_numpy(masks),
        "captions": "\n".join(lines),
    }
