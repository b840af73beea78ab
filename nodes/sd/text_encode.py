"""Text encoding: prompt -> CONDITIONING with the transformers CLIP encoders held by a ClipHandle.

Which hidden state (matching diffusers' ``encode_prompt``; the handle's ``clip_skip`` N is diffusers'
``clip_skip`` N - 1, ComfyUI's "stop at layer -N"):

- SD1.5 (CLIP-L alone): the last layer through the final layer norm (``last_hidden_state``); with clip
  skip N > 1, hidden state ``-N`` through the final layer norm.
- SDXL base (CLIP-L + OpenCLIP bigG) and refiner (bigG alone): hidden state ``-(N + 1)``, no final norm
  (the penultimate layer by default), the encoders' states concatenated along the feature axis (768 + 1280
  = 2048); the pooled embedding is bigG's projected ``text_embeds`` of the first chunk.

Prompt weighting (method chosen: ComfyUI's, relative to the empty prompt): a token of weight w becomes
``empty + (z - empty) * w`` where ``empty`` is the same encoder's output for the empty prompt at that
position. Weight 1 leaves a token bit-identical, which is why an unweighted prompt equals diffusers
exactly. Pooled embeddings are not weighted.

Long prompts: chunks of 75 tokens (see :mod:`nodes.sd.prompt`) are encoded as one batch and their hidden
states concatenated along the token axis.

No negative prompt is ever zeroed here: an empty prompt is encoded like any other (diffusers' SDXL
pipelines zero the negative only when ``negative_prompt is None`` and ``force_zeros_for_empty_prompt``;
the parity tests pass ``negative_prompt=""`` to get the encoded empty prompt, which is what ComfyUI does).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from nodes.sd.conditioning import ConditioningEntry
from nodes.sd.prompt import TokenChunks, tokenize_weighted

PENULTIMATE_FAMILIES = ("sdxl", "sdxl_refiner")


@contextlib.contextmanager
def patches_applied(module: Any, patches: tuple) -> Iterator[Any]:
    """Apply LoRA-style patches to ``module`` for the duration of the block.

    Patch protocol (for the adapter nodes): a patch object offers ``applied(module)``, a context manager
    that patches ``module`` (or leaves it alone when the patch is not for it) and restores it on exit, so
    a shared module is unchanged once the block ends (DESIGN contract 3).
    """
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch.applied(module))
        yield module


def select_hidden_state(encoder: Any, output: Any, family: str, clip_skip: int) -> torch.Tensor:
    """The hidden state a family's UNet cross-attends to, for ``clip_skip`` (1 = last layer)."""
    if family in PENULTIMATE_FAMILIES:
        return output.hidden_states[-(clip_skip + 1)]
    if clip_skip <= 1:
        return output.last_hidden_state
    norm = getattr(encoder, "final_layer_norm", None)
    if norm is None:  # transformers < 5.6 nests the text model one level deeper
        norm = encoder.text_model.final_layer_norm
    return norm(output.hidden_states[-clip_skip])


def encode_chunks(
    encoder: Any,
    chunks: TokenChunks,
    empty: TokenChunks,
    family: str,
    clip_skip: int,
    device: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode token chunks: ``([1, 77 * chunks, D], pooled [1, D2] of the first chunk or None)``."""
    ids = torch.tensor(chunks.ids, dtype=torch.long, device=device)
    output = encoder(ids, output_hidden_states=True)
    hidden = select_hidden_state(encoder, output, family, clip_skip)
    if chunks.weighted:
        empty_out = encoder(torch.tensor(empty.ids, dtype=torch.long, device=device), output_hidden_states=True)
        reference = select_hidden_state(encoder, empty_out, family, clip_skip)  # [1, 77, D]
        weights = torch.tensor(chunks.weights, dtype=hidden.dtype, device=hidden.device).unsqueeze(-1)
        # only weighted tokens change: ref + (z - ref) * 1 is not always exactly z in floating point
        hidden = torch.where(weights != 1.0, reference + (hidden - reference) * weights, hidden)
    pooled = getattr(output, "text_embeds", None)
    hidden = hidden.reshape(1, -1, hidden.shape[-1])
    return hidden, (pooled[:1] if pooled is not None else None)


def encode_prompt(
    clip: Any,
    texts: tuple[str, ...],
    device: str,
    dtype: torch.dtype | None = None,
    residency: Any = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode ``texts[i]`` with ``clip.encoders[i]``; return ``(embeds [1, T, sum D], pooled or None)``.

    Both SDXL encoders must yield the same number of positions: the one with fewer chunks is padded with
    empty-prompt chunks. Output tensors are float32 on the CPU (the sampler moves and casts them).
    """
    if len(texts) != len(clip.encoders):
        raise ValueError(f"{len(clip.encoders)} text(s) expected for {clip.family}, got {len(texts)}")
    tokenized = [tokenize_weighted(tok, text) for tok, text in zip(clip.tokenizers, texts)]
    empties = [tokenize_weighted(tok, "") for tok in clip.tokenizers]
    count = max(len(t.ids) for t in tokenized)
    tokenized = [t.padded_to(count, e) for t, e in zip(tokenized, empties)]

    states: list[torch.Tensor] = []
    pooled: torch.Tensor | None = None
    with torch.inference_mode():
        for encoder, chunks, empty in zip(clip.encoders, tokenized, empties):
            if residency is not None:
                residency.load(encoder)
            with patches_applied(encoder, clip.patches):
                hidden, pool = encode_chunks(encoder, chunks, empty, clip.family, clip.clip_skip, device)
            states.append(hidden)
            if pool is not None:
                pooled = pool  # the last encoder with a projection (bigG) provides the pooled embedding
    embeds = torch.cat(states, dim=-1) if len(states) > 1 else states[0]
    if dtype is not None:
        embeds = embeds.to(dtype)
        pooled = pooled.to(dtype) if pooled is not None else None
    return embeds.to("cpu"), (pooled.to("cpu") if pooled is not None else None)


def encode_entry(clip: Any, texts: tuple[str, ...], device: str, residency: Any = None, **extras: Any) -> ConditioningEntry:
    embeds, pooled = encode_prompt(clip, texts, device, residency=residency)
    return ConditioningEntry(embeds=embeds, pooled=pooled, extras=dict(extras))
