"""Test nodes for the server's tests, loaded as a plugin folder (NODEGRAPH_PLUGIN_PATH) by server
subprocesses and registered directly by in-process tests. No torch: jobs run in milliseconds unless asked
to take their time."""

from __future__ import annotations

import time
from pathlib import Path

from nodegraph.context import NodeContext
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Float, Int, String
from nodegraph.types import STRING

NAMESPACE = "servetest"


@node(
    "servetest.Steps", name="Steps", category="test", output_node=True,
    description="Counts steps with progress (and a preview each step if asked), optionally writing a file first.",
    inputs=[Input("text", STRING, optional=True)],
    params=[Int("steps", 3, min=1, max=100_000), Float("delay", 0.0, min=0.0, max=10.0),
            Bool("preview", False), String("write", "", help="write a text file of this name into the output folder first")],
    outputs=[Output("text", STRING), Output("paths", STRING)],
)
def steps(ctx: NodeContext, text: str | None, steps: int, delay: float, preview: bool, write: str) -> dict:
    paths = ""
    if write:
        target = Path(ctx.output_dir) / write
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{text or ''} {steps}\n")
        paths = str(target)
    for step in range(1, steps + 1):
        if delay:
            time.sleep(delay)
        image = None
        if preview:
            from PIL import Image

            image = Image.new("RGB", (16, 16), (step * 10 % 256, 0, 0))
        ctx.progress(step, steps, preview=image)
    return {"text": f"{text or 'done'} after {steps} steps", "paths": paths}


@node(
    "servetest.Fail", name="Fail", category="test", output_node=True,
    description="Always fails, with a message.",
    inputs=[Input("text", STRING, optional=True)],
    outputs=[Output("text", STRING)],
)
def fail(ctx: NodeContext, text: str | None) -> str:
    raise RuntimeError("this node always fails")
