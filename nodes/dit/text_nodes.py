"""Text encode nodes for the T5 families (PixArt, IF) and Hunyuan-DiT's pair of encoders."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Int, Text
from nodegraph.types import CLIP, CONDITIONING


def _handle(clip: Any, families: tuple[str, ...], other_node: str) -> Any:
    from nodes.dit.handles import FAMILY_LABELS

    if clip is None:
        raise NodeInputError("no text encoder: this model folder has none (an IF stage II folder: connect stage I's "
                             "clip output)", "clip")
    if not hasattr(clip, "text_encoders"):
        raise NodeInputError(f"expected the T5 text encoder of a DiT / IF loader, found {type(clip).__name__} (an SD "
                             "CLIP: use CLIP Text Encode)", "clip")
    if clip.family not in families:
        from nodes.mmdit.handles import FLOW_LABELS, TEXT_NODES

        label = FAMILY_LABELS.get(clip.family) or FLOW_LABELS.get(clip.family, clip.family)
        raise NodeInputError(f"this is the text encoder of {label}: use {TEXT_NODES.get(clip.family, other_node)}",
                             "clip")
    return clip


@node(
    "core.T5TextEncode", name="T5 Text Encode", category="conditioning",
    description="Encodes a prompt with the T5 encoder of PixArt or DeepFloyd IF, padded to the family's length "
                "with its attention mask (PixArt: 120 tokens, PixArt-sigma 300, IF 77); lower-cased as their "
                "pipelines do.",
    inputs=[Input("clip", CLIP, help="The T5 from Load DiT / IF Model.")],
    params=[Text("text", "", help="The prompt (no weighting syntax: T5 prompts are plain text)."),
            Int("max_length", 0, min=0, max=4096, help="Tokens to pad/truncate to; 0 = the family's default.")],
    outputs=[Output("conditioning", CONDITIONING)],
)
def t5_text_encode(ctx: NodeContext, clip: Any, text: str, max_length: int) -> tuple:
    from nodes.dit.text_encode import encode_text, preprocess
    from nodes.sd.conditioning import ConditioningEntry

    clip = _handle(clip, ("pixart_alpha", "pixart_sigma", "if_stage_1", "if_stage_2"), "Hunyuan-DiT Text Encode")
    length = max_length or clip.max_lengths[0]
    embeds, mask = encode_text(clip.text_tokenizers[0], clip.text_encoders[0], preprocess(clip.family, text), length,
                               ctx.runtime.device, ctx.runtime.residency)
    return (ConditioningEntry(embeds, None, {"attention_mask": mask}),)


SIZE_HELP = "{what} in pixels for Hunyuan-DiT's image meta size; {zero}"


@node(
    "core.HunyuanTextEncode", name="Hunyuan-DiT Text Encode", category="conditioning",
    description="Encodes a prompt with both Hunyuan-DiT text encoders (the bilingual CLIP-style BERT, 77 tokens, "
                "and mT5, 256 tokens), each with its attention mask, plus the image meta sizes the model is "
                "conditioned on (used by models that take them, as the pipeline passes them).",
    inputs=[Input("clip", CLIP, help="The BERT + mT5 pair from Load DiT / IF Model.")],
    params=[
        Text("text", "", help="The prompt (Chinese or English)."),
        Int("original_width", 1024, min=0, max=16384, help=SIZE_HELP.format(what="Original width", zero="1024 as the pipeline")),
        Int("original_height", 1024, min=0, max=16384, help=SIZE_HELP.format(what="Original height", zero="1024 as the pipeline")),
        Int("target_width", 0, min=0, max=16384, help=SIZE_HELP.format(what="Target width", zero="0 = the image's")),
        Int("target_height", 0, min=0, max=16384, help=SIZE_HELP.format(what="Target height", zero="0 = the image's")),
        Int("crop_top", 0, min=0, max=16384), Int("crop_left", 0, min=0, max=16384),
    ],
    outputs=[Output("conditioning", CONDITIONING)],
)
def hunyuan_text_encode(ctx: NodeContext, clip: Any, text: str, original_width: int, original_height: int,
                        target_width: int, target_height: int, crop_top: int, crop_left: int) -> tuple:
    from nodes.dit.text_encode import encode_text
    from nodes.sd.conditioning import ConditioningEntry

    clip = _handle(clip, ("hunyuan_dit",), "T5 Text Encode")
    runtime = ctx.runtime
    embeds, mask = encode_text(clip.text_tokenizers[0], clip.text_encoders[0], text, clip.max_lengths[0],
                               runtime.device, runtime.residency)
    embeds_t5, mask_t5 = encode_text(clip.text_tokenizers[1], clip.text_encoders[1], text, clip.max_lengths[1],
                                     runtime.device, runtime.residency)
    extras = {
        "attention_mask": mask, "embeds_t5": embeds_t5, "attention_mask_t5": mask_t5,
        "original_size": (original_height, original_width), "target_size": (target_height, target_width),
        "crop_top_left": (crop_top, crop_left),
    }
    return (ConditioningEntry(embeds, None, extras),)
