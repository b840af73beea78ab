"""Node types that exist only for the editor's tests: an image source, a slow loop, an image-file loader."""

from __future__ import annotations

import time

from nodegraph.context import NodeContext
from nodegraph.node import Output, node
from nodegraph.params import Float, ImageFile, Int
from nodegraph.types import IMAGE, INT


@node(
    "test.Gradient", name="Gradient", category="test",
    params=[Int("width", 16, min=1, max=256), Int("height", 8, min=1, max=256)],
    outputs=[Output("image", IMAGE)],
)
def gradient(ctx: NodeContext, width: int, height: int):
    import torch

    ramp = torch.linspace(0.0, 1.0, width).view(1, 1, width, 1)
    image = ramp.expand(1, height, width, 3).clone()
    image[..., 2] = 0.25
    ctx.progress(1, 1, preview=image)
    return image


@node(
    "test.SlowCount", name="Slow Count", category="test",
    params=[Int("steps", 400, min=1, max=100000), Float("delay", 0.01, min=0.0, max=1.0)],
    outputs=[Output("count", INT)],
    output_node=True,
)
def slow_count(ctx: NodeContext, steps: int, delay: float) -> int:
    for step in range(1, steps + 1):
        time.sleep(delay)
        ctx.progress(step, steps)
    return steps


@node(
    "test.OpenImage", name="Open Image", category="test",
    params=[ImageFile("image", "")],
    outputs=[Output("image", IMAGE)],
)
def open_image(ctx: NodeContext, image: str):
    raise NotImplementedError("only dropped onto the canvas in tests")
