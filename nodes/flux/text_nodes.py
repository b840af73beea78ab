"""FLUX prompt nodes: FLUX Text Encode (CLIP-L + T5 with the distilled guidance) and FLUX Guidance (change it)."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, Int, Text
from nodegraph.types import CLIP, CONDITIONING

GUIDANCE_HELP = ("Distilled guidance of FLUX.1 [dev] (FluxPipeline's guidance_scale; 3.5 is its default). [schnell] "
                 "has none and ignores it. This is not CFG: leave the sampler's cfg at 1 for FLUX.")


@node(
    "core.FluxTextEncode", name="FLUX Text Encode", category="conditioning",
    description="Encodes a prompt for FLUX.1 as FluxPipeline does: CLIP-L's pooled embedding (77 tokens) and T5-XXL's "
                "tokens, with the distilled guidance value the model is conditioned on.",
    inputs=[Input("clip", CLIP, help="The CLIP-L + T5 pair of a FLUX loader.")],
    params=[
        Text("text", "", help="The prompt (plain text, no weighting syntax), for both encoders."),
        Text("text_t5", "", help="A different prompt for T5 (FluxPipeline's prompt_2); empty = the same prompt."),
        Float("guidance", 3.5, min=0.0, max=100.0, step=0.1, help=GUIDANCE_HELP),
        Int("max_length", 512, min=1, max=512, help="T5 tokens to pad / truncate to (512 as FluxPipeline; [schnell] "
                                                     "was trained with 256)."),
    ],
    outputs=[Output("conditioning", CONDITIONING)],
)
def flux_text_encode(ctx: NodeContext, clip: Any, text: str, text_t5: str, guidance: float, max_length: int) -> tuple:
    from nodes.flux.text_encode import encode
    from nodes.mmdit.checks import text_encoders

    clip = text_encoders(clip, "flux")
    entry = encode(clip, text, text_t5 or text, max_length, guidance, ctx.runtime.device, ctx.runtime.residency)
    return (entry,)


@node(
    "core.FluxGuidance", name="FLUX Guidance", category="conditioning",
    description="Sets the distilled guidance of FLUX conditioning (FLUX.1 [dev] is conditioned on it; higher follows "
                "the prompt more closely). The text embeddings are shared, not copied.",
    inputs=[Input("conditioning", CONDITIONING)],
    params=[Float("guidance", 3.5, min=0.0, max=100.0, step=0.1, help=GUIDANCE_HELP)],
    outputs=[Output("conditioning", CONDITIONING)],
)
def flux_guidance(ctx: NodeContext, conditioning: Any, guidance: float) -> dict:
    if not isinstance(conditioning, tuple) or not conditioning:
        raise NodeInputError(f"expected CONDITIONING from FLUX Text Encode, found {type(conditioning).__name__}",
                             "conditioning")
    return {"conditioning": tuple(entry.with_extras(guidance=float(guidance)) for entry in conditioning)}
