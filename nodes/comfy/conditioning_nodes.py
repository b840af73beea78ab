"""ComfyUI's conditioning nodes: combine, zero out, and apply a ControlNet or T2I-Adapter.

Conditioning is a tuple of entries; combining concatenates them (the sampler averages the predictions of
several entries, as ComfyUI does). ComfyUI's old Apply ControlNet attaches the control to one conditioning
and lets it act on the unconditional side too; that is marked on the entries
(``control_apply_to_uncond``) and honoured by the ComfyUI-semantics samplers.
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float
from nodegraph.types import CONDITIONING, CONTROL_NET, IMAGE

APPLY_TO_UNCOND = "control_apply_to_uncond"


def _conditioning(value: Any, field: str) -> tuple:
    if not isinstance(value, tuple) or not value:
        raise NodeInputError(f"expected CONDITIONING from a text encoder, found {type(value).__name__}", field)
    return value


@node(
    "comfy.ConditioningCombine", name="Conditioning (Combine) (ComfyUI)", category="conditioning/comfyui",
    description="Both conditionings at once: the sampler averages their predictions.",
    inputs=[Input("conditioning_1", CONDITIONING), Input("conditioning_2", CONDITIONING)],
    outputs=[Output("conditioning", CONDITIONING)],
)
def conditioning_combine(ctx: NodeContext, conditioning_1: Any, conditioning_2: Any) -> tuple:
    return _conditioning(conditioning_1, "conditioning_1") + _conditioning(conditioning_2, "conditioning_2")


@node(
    "comfy.ConditioningZeroOut", name="ConditioningZeroOut (ComfyUI)", category="conditioning/comfyui",
    description="The same conditioning with its text embeddings (and pooled embedding) set to zero.",
    inputs=[Input("conditioning", CONDITIONING)],
    outputs=[Output("conditioning", CONDITIONING)],
)
def conditioning_zero_out(ctx: NodeContext, conditioning: Any) -> tuple:
    import dataclasses

    import torch

    out = []
    for entry in _conditioning(conditioning, "conditioning"):
        pooled = torch.zeros_like(entry.pooled) if entry.pooled is not None else None
        out.append(dataclasses.replace(entry, embeds=torch.zeros_like(entry.embeds), pooled=pooled))
    return tuple(out)


def _source(ctx: NodeContext, control_net: Any, image: Any, strength: float, start: float, end: float) -> Any:
    from nodes.adapters.control_nodes import _check_image

    _check_image(image)
    if hasattr(control_net, "adapter"):
        from nodes.adapters.t2i_adapter import AdapterSource

        if (start, end) != (0.0, 1.0):
            ctx.warn("a T2I-Adapter acts on every step here: start_percent and end_percent are ignored")
        return AdapterSource(control_net, image, strength)
    if not hasattr(control_net, "model"):
        raise NodeInputError(f"expected a CONTROL_NET from Load ControlNet Model, found {type(control_net).__name__}",
                             "control_net")
    from nodes.comfy.controlnet import ComfyControlNetSource

    return ComfyControlNetSource(control_net, image, strength, percent_start=start, percent_end=end)


def _attach(conditioning: tuple, source: Any, **extras: Any) -> tuple:
    return tuple(entry.with_extras(residuals=(*entry.extras.get("residuals", ()), source), **extras)
                 for entry in conditioning)


@node(
    "comfy.ControlNetApply", name="Apply ControlNet (OLD) (ComfyUI)", category="conditioning/comfyui",
    description=("ComfyUI's old Apply ControlNet: attaches the control to one conditioning; as in ComfyUI it also "
                 "acts on the negative side when that has no control of its own."),
    inputs=[Input("conditioning", CONDITIONING), Input("control_net", CONTROL_NET), Input("image", IMAGE)],
    params=[Float("strength", 1.0, min=0.0, max=10.0, step=0.01, help="Scale of the control's effect.")],
    outputs=[Output("conditioning", CONDITIONING)],
)
def controlnet_apply(ctx: NodeContext, conditioning: Any, control_net: Any, image: Any, strength: float) -> tuple:
    conditioning = _conditioning(conditioning, "conditioning")
    if strength == 0:
        return conditioning
    return _attach(conditioning, _source(ctx, control_net, image, strength, 0.0, 1.0), **{APPLY_TO_UNCOND: True})


@node(
    "comfy.ControlNetApplyAdvanced", name="Apply ControlNet (ComfyUI)", category="conditioning/comfyui",
    description="ComfyUI's Apply ControlNet: attaches a ControlNet or T2I-Adapter to both conditionings.",
    inputs=[Input("positive", CONDITIONING), Input("negative", CONDITIONING), Input("control_net", CONTROL_NET),
            Input("image", IMAGE)],
    params=[
        Float("strength", 1.0, min=0.0, max=10.0, step=0.01, help="Scale of the control's effect."),
        Float("start_percent", 0.0, min=0.0, max=1.0, step=0.001, help="Fraction of the run before it starts."),
        Float("end_percent", 1.0, min=0.0, max=1.0, step=0.001, help="Fraction of the run after which it stops."),
    ],
    outputs=[Output("positive", CONDITIONING), Output("negative", CONDITIONING)],
)
def controlnet_apply_advanced(ctx: NodeContext, positive: Any, negative: Any, control_net: Any, image: Any,
                              strength: float, start_percent: float, end_percent: float) -> dict[str, Any]:
    positive, negative = _conditioning(positive, "positive"), _conditioning(negative, "negative")
    if strength == 0:
        return {"positive": positive, "negative": negative}
    if start_percent > end_percent:
        raise NodeInputError(f"start_percent {start_percent} is after end_percent {end_percent}", "start_percent")
    source = _source(ctx, control_net, image, strength, start_percent, end_percent)
    return {"positive": _attach(positive, source), "negative": _attach(negative, source)}


def with_uncond_control(positive: tuple, negative: tuple) -> tuple:
    """ComfyUI's ``control_apply_to_uncond``: negative entries without control get the positive's."""
    sources = [s for e in positive if e.extras.get(APPLY_TO_UNCOND) for s in e.extras.get("residuals", ())]
    if not sources or any(e.extras.get("residuals") for e in negative):
        return negative
    return tuple(entry.with_extras(residuals=tuple(dict.fromkeys(sources))) for entry in negative)
