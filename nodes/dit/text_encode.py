"""Prompt encoding for T5 / mT5 / BERT text encoders as the PixArt, Hunyuan-DiT and IF pipelines do it: pad to
the family's length, keep the attention mask (the transformer masks padded text tokens with it), last hidden
state. PixArt and IF lower-case and strip the prompt first (their pipelines' preprocessing when caption cleaning
is off or its optional packages are missing)."""

from __future__ import annotations

from typing import Any

import torch

LOWERCASE_FAMILIES = frozenset({"pixart_alpha", "pixart_sigma", "if_stage_1", "if_stage_2"})


def encode_text(tokenizer: Any, encoder: Any, text: str, max_length: int, device: Any,
                residency: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(embeds [1, max_length, D] float32 on the CPU, attention mask [1, max_length] int64)``."""
    tokens = tokenizer([text], padding="max_length", max_length=max_length, truncation=True,
                       add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
    if residency is not None:
        residency.load(encoder)
    device = next(encoder.parameters()).device if device is None else device
    mask = tokens.attention_mask
    with torch.inference_mode():
        hidden = encoder(tokens.input_ids.to(device), attention_mask=mask.to(device))[0]
    return hidden.to("cpu", torch.float32), mask


def preprocess(family: str, text: str) -> str:
    return text.lower().strip() if family in LOWERCASE_FAMILIES else text
