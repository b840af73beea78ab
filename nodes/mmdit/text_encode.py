"""Running the CLIP and T5 encoders of FLUX and SD3 as their diffusers pipelines do: each prompt padded to the
encoder's length (CLIP 77, T5 512 for FLUX / 256 for SD3), no attention mask, outputs float32 on the CPU. LoRA
patches on the CLIP handle are applied while its encoders run."""

from __future__ import annotations

from typing import Any

import torch

from nodes.sd.text_encode import patches_applied


def tokens(tokenizer: Any, text: str, max_length: int) -> torch.Tensor:
    return tokenizer([text], padding="max_length", max_length=max_length, truncation=True,
                     add_special_tokens=True, return_tensors="pt").input_ids


def run_encoder(clip: Any, index: int, ids: torch.Tensor, device: Any, residency: Any = None,
                hidden_states: bool = False) -> Any:
    """The output of ``clip.text_encoders[index]`` for token ids (under the handle's LoRA patches)."""
    encoder = clip.text_encoders[index]
    if residency is not None:
        residency.load(encoder)
    device = next(encoder.parameters()).device if device is None else device
    with torch.inference_mode(), patches_applied(encoder, clip.patches):
        return encoder(ids.to(device), output_hidden_states=hidden_states)


def cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to("cpu", torch.float32)
