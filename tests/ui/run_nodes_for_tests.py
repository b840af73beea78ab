"""Node types for the editor's run tests: seeded images in batches, a node that fails after some steps."""

from __future__ import annotations

import time

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, Int, Seed
from nodegraph.types import IMAGE


@node(
    "test.SeededImages", name="Seeded Images", category="test",
    params=[Seed("seed", 0), Int("count", 1, min=1, max=16), Int("steps", 3, min=1, max=1000),
            Float("delay", 0.0, min=0.0, max=1.0)],
    outputs=[Output("image", IMAGE)],
    work=lambda p: p.get("steps", 3),
)
def seeded_images(ctx: NodeContext, seed: int, count: int, steps: int, delay: float):
    import torch

    for step in range(1, steps + 1):
        time.sleep(delay)
        ctx.progress(step, steps)
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, 8, 8, 3, generator=generator)


@node(
    "test.FailLater", name="Fail Later", category="test",
    inputs=[Input("image", IMAGE)],
    params=[Int("steps", 5, min=1, max=1000), Float("delay", 0.01, min=0.0, max=1.0)],
    outputs=[Output("image", IMAGE)],
)
def fail_later(ctx: NodeContext, image, steps: int, delay: float):
    for step in range(1, steps + 1):
        time.sleep(delay)
        ctx.progress(step, steps)
    raise NodeInputError("this node always fails\nafter its last step\n(a message of three lines)", "steps")
