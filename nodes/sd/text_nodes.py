"""Text encoder nodes: prompt text -> CONDITIONING, and the CLIP layer setting.

Encoding itself lives in :mod:`nodes.sd.text_encode` (imported inside the node functions: it needs torch).
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Float, Int, Text
from nodegraph.types import CLIP, CONDITIONING

PROMPT_HELP = (
    "The prompt. (word) weights a word by 1.1, [word] by 1/1.1, (word:1.3) by 1.3; groups nest; \\( is a literal "
    "bracket. Longer than 75 tokens is encoded in chunks of 75; BREAK starts a new chunk."
)
SIZE_HELP = "{what} in pixels for SDXL's micro-conditioning; 0 = the latent's size at sampling time."


def _encode(ctx: NodeContext, clip: Any, texts: tuple[str, ...], **extras: Any) -> tuple:
    from nodes.sd.text_encode import encode_entry

    runtime = ctx.runtime
    return (encode_entry(clip, texts, runtime.device, residency=runtime.residency, **extras),)


def _require_clip(clip: Any, field: str = "clip") -> None:
    if clip is None or not hasattr(clip, "encoders"):
        hint = {"flux": ": use FLUX Text Encode", "sd3": ": use SD3 Text Encode"}.get(getattr(clip, "family", None), "")
        raise NodeInputError(f"expected a CLIP from a checkpoint loader, found {type(clip).__name__}{hint}", field)


@node(
    "core.CLIPTextEncode", name="CLIP Text Encode", category="conditioning",
    description="Encodes a prompt with the model's text encoder(s) (SD1.5: CLIP-L; SDXL: CLIP-L and bigG).",
    inputs=[Input("clip", CLIP, help="Text encoder(s) from a checkpoint loader.")],
    params=[Text("text", "", help=PROMPT_HELP)],
    outputs=[Output("conditioning", CONDITIONING)],
)
def clip_text_encode(ctx: NodeContext, clip: Any, text: str) -> tuple:
    _require_clip(clip)
    return _encode(ctx, clip, (text,) * len(clip.encoders))


@node(
    "core.CLIPTextEncodeSDXL", name="CLIP Text Encode (SDXL)", category="conditioning",
    description=(
        "SDXL base prompt: CLIP-L and OpenCLIP bigG hidden states concatenated (2048 wide) plus bigG's pooled "
        "embedding, with the micro-conditioning sizes SDXL was trained with."
    ),
    inputs=[Input("clip", CLIP, help="An SDXL base CLIP (two text encoders).")],
    params=[
        Text("text_g", "", help="Prompt for OpenCLIP bigG. " + PROMPT_HELP),
        Text("text_l", "", help="Prompt for CLIP-L (often the same text)."),
        Int("original_width", 0, min=0, max=16384, step=8, help=SIZE_HELP.format(what="Original image width")),
        Int("original_height", 0, min=0, max=16384, step=8, help=SIZE_HELP.format(what="Original image height")),
        Int("crop_top", 0, min=0, max=16384, step=8, help="Crop offset from the top, in pixels."),
        Int("crop_left", 0, min=0, max=16384, step=8, help="Crop offset from the left, in pixels."),
        Int("target_width", 0, min=0, max=16384, step=8, help=SIZE_HELP.format(what="Target width")),
        Int("target_height", 0, min=0, max=16384, step=8, help=SIZE_HELP.format(what="Target height")),
    ],
    outputs=[Output("conditioning", CONDITIONING)],
)
def clip_text_encode_sdxl(
    ctx: NodeContext, clip: Any, text_g: str, text_l: str, original_width: int, original_height: int,
    crop_top: int, crop_left: int, target_width: int, target_height: int,
) -> tuple:
    _require_clip(clip)
    if len(clip.encoders) != 2:
        raise NodeInputError(
            f"expected an SDXL base CLIP (CLIP-L and bigG), found a {clip.family} CLIP with {len(clip.encoders)} "
            "encoder(s); use CLIP Text Encode (or the refiner node for a refiner)", "clip"
        )
    return _encode(
        ctx, clip, (text_l, text_g),
        original_size=(original_height, original_width),
        crop_top_left=(crop_top, crop_left),
        target_size=(target_height, target_width),
    )


@node(
    "core.CLIPTextEncodeSDXLRefiner", name="CLIP Text Encode (SDXL Refiner)", category="conditioning",
    description="SDXL refiner prompt: OpenCLIP bigG only, with the aesthetic score the refiner was trained with.",
    inputs=[Input("clip", CLIP, help="The refiner's CLIP (or an SDXL base CLIP: its bigG encoder is used).")],
    params=[
        Text("text", "", help=PROMPT_HELP),
        Float("aesthetic_score", 6.0, min=0.0, max=1000.0, step=0.1,
              help="Aesthetic score: about 6 for a positive prompt, 2.5 for a negative one (diffusers' defaults)."),
        Int("original_width", 0, min=0, max=16384, step=8, help=SIZE_HELP.format(what="Original image width")),
        Int("original_height", 0, min=0, max=16384, step=8, help=SIZE_HELP.format(what="Original image height")),
        Int("crop_top", 0, min=0, max=16384, step=8, help="Crop offset from the top, in pixels."),
        Int("crop_left", 0, min=0, max=16384, step=8, help="Crop offset from the left, in pixels."),
    ],
    outputs=[Output("conditioning", CONDITIONING)],
)
def clip_text_encode_sdxl_refiner(
    ctx: NodeContext, clip: Any, text: str, aesthetic_score: float, original_width: int, original_height: int,
    crop_top: int, crop_left: int,
) -> tuple:
    _require_clip(clip)
    if len(clip.encoders) == 2:  # an SDXL base CLIP: the refiner conditions on bigG alone
        clip = clip.replace(family="sdxl_refiner", tokenizers=clip.tokenizers[1:], encoders=clip.encoders[1:])
    elif clip.family not in ("sdxl_refiner", "sdxl"):
        raise NodeInputError(f"expected an SDXL refiner CLIP, found a {clip.family} CLIP", "clip")
    return _encode(
        ctx, clip, (text,),
        original_size=(original_height, original_width),
        crop_top_left=(crop_top, crop_left),
        aesthetic_score=aesthetic_score,
    )


@node(
    "core.CLIPSetLastLayer", name="CLIP Set Last Layer", category="conditioning",
    description=(
        "Stops the text encoder early (\"clip skip\"): -1 uses the last layer, -2 the one before it, and so on. "
        "SDXL counts from its usual penultimate layer."
    ),
    inputs=[Input("clip", CLIP)],
    params=[Int("stop_at_clip_layer", -1, min=-24, max=-1, help="-1 = last layer; -2 = penultimate (clip skip 2).")],
    outputs=[Output("clip", CLIP)],
)
def clip_set_last_layer(ctx: NodeContext, clip: Any, stop_at_clip_layer: int) -> Any:
    _require_clip(clip)
    layers = min(getattr(e.config, "num_hidden_layers", 1 << 30) for e in clip.encoders)
    if -stop_at_clip_layer > layers - (1 if clip.family in ("sdxl", "sdxl_refiner") else 0):
        raise NodeInputError(
            f"this CLIP has {layers} layers; layer {stop_at_clip_layer} does not exist", "stop_at_clip_layer"
        )
    return clip.replace(clip_skip=-stop_at_clip_layer)
