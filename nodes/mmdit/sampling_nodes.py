"""Sampling set-up nodes of the flow-matching families: an empty 16-channel latent (ComfyUI's EmptySD3LatentImage) and
the schedule's shift (ComfyUI's ModelSamplingSD3 / ModelSamplingFlux)."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, Float, Int
from nodegraph.types import LATENT, MODEL

MULTIPLE = 16  # pixels: 8 per latent cell, and FLUX packs / SD3 patches 2x2 cells


@node(
    "core.EmptyFlowLatent", name="Empty Latent (FLUX / SD3)", category="latent",
    description="A batch of all-zero 16-channel latents at 1/8 of the image size, for FLUX and SD3 text-to-image "
                "(sides multiples of 16 pixels). Empty Latent (model's space) does the same from the model.",
    params=[Int("width", 1024, min=16, max=16384, step=16), Int("height", 1024, min=16, max=16384, step=16),
            Int("batch_size", 1, min=1, max=4096)],
    outputs=[Output("latent", LATENT)],
)
def empty_flow_latent(ctx: NodeContext, width: int, height: int, batch_size: int) -> dict:
    import torch

    for name, value in (("width", width), ("height", height)):
        if value % MULTIPLE:
            low = value - value % MULTIPLE
            raise NodeInputError(f"{name} must be a multiple of {MULTIPLE} for FLUX and SD3, found {value} (nearest: "
                                 f"{low or MULTIPLE} or {low + MULTIPLE})", name)
    return {"latent": {"samples": torch.zeros(batch_size, 16, height // 8, width // 8)}}


@node(
    "core.FlowShift", name="Flow Shift (FLUX / SD3)", category="sampling",
    description="Changes how far a flow-matching model's schedule is shifted towards noise (more shift: more steps "
                "spent on composition). fixed: one shift for every size (SD3's is 3.0, FLUX schnell's 1.0). "
                "resolution: FLUX dev's, growing from base_shift at 256 image tokens to max_shift at 4096 (a 1024 px "
                "image). The incoming model is not changed.",
    inputs=[Input("model", MODEL, help="A FLUX or SD3 model.")],
    params=[
        Choice("mode", "fixed", choices=("fixed", "resolution")),
        Float("shift", 3.0, min=0.01, max=100.0, step=0.01, help="fixed: the shift (1 = none)."),
        Float("base_shift", 0.5, min=0.0, max=10.0, step=0.01, help="resolution: log-shift at 256 image tokens."),
        Float("max_shift", 1.15, min=0.0, max=10.0, step=0.01, help="resolution: log-shift at 4096 image tokens."),
    ],
    outputs=[Output("model", MODEL)],
)
def flow_shift(ctx: NodeContext, model: Any, mode: str, shift: float, base_shift: float, max_shift: float) -> Any:
    from nodes.mmdit.checks import flow_model

    model = flow_model(model, ("flux", "sd3"))
    config = dict(model.scheduler_config)
    if mode == "fixed":
        config.update(shift=float(shift), use_dynamic_shifting=False)
    else:
        config.update(use_dynamic_shifting=True, base_shift=float(base_shift), max_shift=float(max_shift),
                      base_image_seq_len=256, max_image_seq_len=4096)
    return model.replace(scheduler_config=config)
