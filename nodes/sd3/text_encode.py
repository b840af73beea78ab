"""SD3 prompt encoding (StableDiffusion3Pipeline.encode_prompt): CLIP-L and CLIP-G each give their penultimate hidden
state (``clip_skip`` more layers back) and their projected pooled output; the two hidden states are joined along the
features, zero-padded to T5's width and put before T5-XXL's tokens (zeros of the MMDiT's width when the model runs
without T5, as diffusers allows); the pooled outputs are joined into one vector."""

from __future__ import annotations

from typing import Any

import torch

from nodes.mmdit.text_encode import cpu, run_encoder, tokens
from nodes.sd.conditioning import ConditioningEntry


def encode(clip: Any, texts: tuple[str, str, str], max_length: int, clip_skip: int, device: Any,
           residency: Any = None) -> ConditioningEntry:
    """``texts``: the prompts for CLIP-L, CLIP-G and T5."""
    hidden, pooled = [], []
    for index in (0, 1):
        ids = tokens(clip.text_tokenizers[index], texts[index], clip.max_lengths[index])
        output = run_encoder(clip, index, ids, device, residency, hidden_states=True)
        pooled.append(cpu(output[0]))
        hidden.append(cpu(output.hidden_states[-(clip_skip + 2)]))
    clip_embeds = torch.cat(hidden, dim=-1)
    if clip.has_t5:
        t5 = cpu(run_encoder(clip, 2, tokens(clip.text_tokenizers[2], texts[2], max_length), device, residency)[0])
    else:
        t5 = torch.zeros(1, max_length, clip.joint_width)
    clip_embeds = torch.nn.functional.pad(clip_embeds, (0, t5.shape[-1] - clip_embeds.shape[-1]))
    return ConditioningEntry(torch.cat([clip_embeds, t5], dim=-2), torch.cat(pooled, dim=-1))
