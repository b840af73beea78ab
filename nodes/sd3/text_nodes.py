"""SD3 Text Encode: one prompt through CLIP-L, CLIP-G and T5-XXL, as StableDiffusion3Pipeline encodes it."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.node import Input, Output, node
from nodegraph.params import Int, Text
from nodegraph.types import CLIP, CONDITIONING


@node(
    "core.SD3TextEncode", name="SD3 Text Encode", category="conditioning",
    description="Encodes a prompt for Stable Diffusion 3 / 3.5 as StableDiffusion3Pipeline does: the penultimate "
                "layers of CLIP-L and CLIP-G joined and padded to T5's width, then T5-XXL's tokens (zeros when the "
                "model is loaded without T5), and the two CLIP pooled embeddings.",
    inputs=[Input("clip", CLIP, help="The text encoders of an SD3 loader.")],
    params=[
        Text("text", "", help="The prompt (plain text), for all three encoders."),
        Text("text_g", "", help="A different prompt for CLIP-G (the pipeline's prompt_2); empty = the same prompt."),
        Text("text_t5", "", help="A different prompt for T5 (the pipeline's prompt_3); empty = the same prompt."),
        Int("clip_skip", 0, min=0, max=10, help="CLIP layers to skip beyond the penultimate one (0 as the pipeline)."),
        Int("max_length", 256, min=1, max=512, help="T5 tokens to pad / truncate to (256 as the pipeline)."),
    ],
    outputs=[Output("conditioning", CONDITIONING)],
)
def sd3_text_encode(ctx: NodeContext, clip: Any, text: str, text_g: str, text_t5: str, clip_skip: int,
                    max_length: int) -> tuple:
    from nodes.mmdit.checks import text_encoders
    from nodes.sd3.text_encode import encode

    clip = text_encoders(clip, "sd3")
    entry = encode(clip, (text, text_g or text, text_t5 or text), max_length, clip_skip, ctx.runtime.device,
                   ctx.runtime.residency)
    return (entry,)
