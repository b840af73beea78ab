"""ComfyUI's CLIP Text Encode on the text encoders of FLUX.1 and SD3 / 3.5.

The encoders run as the product's FLUX / SD3 text nodes run them (:mod:`nodes.flux.text_encode`,
:mod:`nodes.sd3.text_encode`); what ComfyUI does differently is the T5 length:

- ComfyUI pads T5's tokens to at least 256 for FLUX and 77 for SD3 and never cuts a longer prompt (diffusers pads
  and cuts at 512 and 256);
- SD3 without T5: ComfyUI's conditioning is the CLIP tokens alone (diffusers appends zeros for T5's tokens).

One prompt feeds every encoder, as ComfyUI's CLIP Text Encode does. Its weight syntax (``(word:1.2)``) is read and
the brackets removed, but the weights are not applied to these encoders (the node says so in a warning).
"""

from __future__ import annotations

from typing import Any

T5_MIN_TOKENS = {"flux": 256, "sd3": 77}


def t5_length(tokenizer: Any, text: str, minimum: int) -> int:
    """ComfyUI's T5 length for ``text``: its tokens with the end token, at least ``minimum``."""
    return max(minimum, len(tokenizer([text], add_special_tokens=True).input_ids[0]))


def encode_flow_prompt(clip: Any, text: str, device: Any, residency: Any = None, warn: Any = None) -> Any:
    """A CONDITIONING entry for ``text`` with FLUX's or SD3's encoders, as ComfyUI encodes it."""
    from nodes.comfy.prompt import unweighted

    plain, weighted = unweighted(text)
    if weighted and warn is not None:
        warn("prompt weights such as (word:1.2) are not applied to FLUX / SD3 text encoders here: the words are "
             "encoded with weight 1")
    if clip.family == "flux":
        from nodes.flux.text_encode import encode

        length = t5_length(clip.text_tokenizers[1], plain, T5_MIN_TOKENS["flux"])
        return encode(clip, plain, plain, length, 3.5, device, residency)  # ComfyUI's default FLUX guidance
    from nodes.sd3.text_encode import encode as encode_sd3

    length = t5_length(clip.text_tokenizers[2], plain, T5_MIN_TOKENS["sd3"]) if clip.has_t5 else 0
    return encode_sd3(clip, (plain, plain, plain), length, 0, device, residency)
