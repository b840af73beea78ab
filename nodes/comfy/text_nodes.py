"""ComfyUI's CLIP Text Encode: the prompt read with ComfyUI's weight syntax and chunking
(:mod:`nodes.comfy.prompt`), encoded by the product's text encoders as ``core.CLIPTextEncode`` encodes."""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Text
from nodegraph.types import CLIP, CONDITIONING

PROMPT_HELP = ("The prompt, in ComfyUI's syntax: (words) weights by 1.1, (words:1.3) sets the weight to 1.3; "
               "\\( and \\) are literal brackets; square brackets are plain text.")


def encode_comfy_prompt(clip: Any, text: str, device: Any, residency: Any = None, warn: Any = None) -> Any:
    """A CONDITIONING entry for ``text`` with ``clip``'s encoders (SD1.5: CLIP-L; SDXL: CLIP-L and bigG)."""
    import torch

    from nodes.comfy.prompt import comfy_token_chunks
    from nodes.sd.conditioning import ConditioningEntry
    from nodes.sd.text_encode import encode_chunks, patches_applied

    tokenized = [comfy_token_chunks(tok, text, warn) for tok in clip.tokenizers]
    empties = [comfy_token_chunks(tok, "") for tok in clip.tokenizers]
    count = max(len(t.ids) for t in tokenized)
    tokenized = [t.padded_to(count, e) for t, e in zip(tokenized, empties)]
    states, pooled = [], None
    with torch.inference_mode():
        for encoder, chunks, empty in zip(clip.encoders, tokenized, empties):
            if residency is not None:
                residency.load(encoder)
            with patches_applied(encoder, clip.patches):
                hidden, pool = encode_chunks(encoder, chunks, empty, clip.family, clip.clip_skip, device)
            states.append(hidden)
            pooled = pool if pool is not None else pooled
    embeds = torch.cat(states, dim=-1) if len(states) > 1 else states[0]
    return ConditioningEntry(embeds=embeds.to("cpu"), pooled=pooled.to("cpu") if pooled is not None else None)


@node(
    "comfy.CLIPTextEncode", name="CLIP Text Encode (ComfyUI)", category="conditioning/comfyui",
    description="ComfyUI's CLIP Text Encode: the prompt read as ComfyUI reads it, encoded by the model's text "
                "encoder(s).",
    inputs=[Input("clip", CLIP, help="Text encoder(s) from a checkpoint loader.")],
    params=[Text("text", "", help=PROMPT_HELP)],
    outputs=[Output("conditioning", CONDITIONING)],
)
def clip_text_encode(ctx: NodeContext, clip: Any, text: str) -> tuple:
    if clip is None or not hasattr(clip, "encoders"):
        raise NodeInputError(f"expected a CLIP from a checkpoint loader, found {type(clip).__name__}", "clip")
    runtime = ctx.runtime
    return (encode_comfy_prompt(clip, text, runtime.device, runtime.residency, ctx.warn),)
