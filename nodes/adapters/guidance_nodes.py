"""Guidance nodes: each adds one link to the MODEL's guidance chain (after CFG and rescale), so several
compose in the order they are chained and none overwrites another. The links are in
:mod:`nodes.sampling.thresholding`."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, Float
from nodegraph.types import MODEL

SCHEDULE_CHOICES = ("constant", "linear_down", "cosine_down", "linear_up", "cosine_up")  # thresholding.SCHEDULES


@node(
    "core.DynamicThresholding", name="Dynamic Thresholding", category="sampling/guidance",
    description=(
        "Keeps high CFG scales usable. imagen: Imagen's thresholding of the predicted clean image (percentile p; "
        "s = max(1, quantile(|x0|, p)); clip to [-s, s], divide by s), meant for pixel-space models. latent: per "
        "channel, mean-centred and rescaled to the spread a lower 'mimic' CFG scale would give (for SD latents)."
    ),
    inputs=[Input("model", MODEL, help="The model whose guidance chain gets this step (the input is not changed).")],
    params=[
        Choice("mode", "latent", choices=("latent", "imagen")),
        Float("percentile", 0.995, min=0.0, max=1.0, step=0.001,
              help="imagen: the |x0| percentile that sets s. latent: where the guided spread is clipped (1 = its max)."),
        Float("mimic_scale", 7.0, min=0.0, max=100.0, step=0.5, help="latent: the CFG scale whose spread to keep."),
        Choice("mimic_schedule", "constant", choices=SCHEDULE_CHOICES,
               help="latent: how the mimic scale moves over the steps, between mimic_scale and mimic_scale_min."),
        Float("mimic_scale_min", 0.0, min=0.0, max=100.0, step=0.5, help="latent: the scheduled end (or start) value."),
    ],
    outputs=[Output("model", MODEL)],
)
def dynamic_thresholding(
    ctx: NodeContext, model: Any, mode: str, percentile: float, mimic_scale: float, mimic_schedule: str,
    mimic_scale_min: float,
) -> Any:
    from nodes.sampling.thresholding import ImagenThreshold, MimicThreshold

    if model is None or not hasattr(model, "guidance"):
        raise NodeInputError(f"expected a MODEL from a checkpoint loader, found {type(model).__name__}", "model")
    if mode == "imagen":
        if model.family in ("sd15", "sdxl", "sdxl_refiner"):
            ctx.log("imagen thresholding bounds x0 to [-1, 1], the range of pixel data; latents are not bounded so, "
                    "the 'latent' mode is usually the better fit for this latent model")
        link = ImagenThreshold(percentile)
    else:
        if percentile <= 0.0:
            raise NodeInputError("the latent mode needs a percentile above 0", "percentile")
        link = MimicThreshold(mimic_scale, percentile, mimic_schedule, mimic_scale_min)
    return model.replace(guidance=(*model.guidance, link))
