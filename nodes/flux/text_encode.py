"""FLUX prompt encoding (FluxPipeline.encode_prompt): CLIP-L's pooled output (77 tokens) and T5-XXL's last hidden
state (512 tokens by default)."""

from __future__ import annotations

from typing import Any

from nodes.mmdit.text_encode import cpu, run_encoder, tokens
from nodes.sd.conditioning import ConditioningEntry


def encode(clip: Any, text_clip: str, text_t5: str, max_length: int, guidance: float, device: Any,
           residency: Any = None) -> ConditioningEntry:
    clip_tokenizer, t5_tokenizer = clip.text_tokenizers
    pooled = run_encoder(clip, 0, tokens(clip_tokenizer, text_clip, clip.max_lengths[0]), device, residency).pooler_output
    embeds = run_encoder(clip, 1, tokens(t5_tokenizer, text_t5, max_length), device, residency)[0]
    return ConditioningEntry(cpu(embeds), cpu(pooled), {"guidance": float(guidance)})
