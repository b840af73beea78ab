"""SD3 / SD3.5 transformer weights in single files: layout, the config the tensor shapes imply, and the conversion of
the original layout (``joint_blocks.N.x_block`` ..., under ``model.diffusion_model.`` in whole checkpoints) with
diffusers' own ``convert_sd3_transformer_checkpoint_to_diffusers``.

What the shapes do not say is taken from the released models: a head is 64 wide unless the file has per-head
q/k norms (SD3.5), whose width is the head's; the default sample size is 128 latent cells (1024 px).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

ORIGINAL_MARK = "joint_blocks.0.context_block.adaLN_modulation.1.bias"  # diffusers' own detection key
DIFFUSERS_MARK = "transformer_blocks.0.norm1_context.linear.weight"
DIFFUSERS_SD3_ONLY = "pos_embed.proj.weight"  # FLUX has no patch embedding convolution
RELEASED_HEAD_DIM = 64


def layout(keys: Any, prefix: str = "") -> str | None:
    if prefix + ORIGINAL_MARK in keys:
        return "original"
    if prefix + DIFFUSERS_MARK in keys and prefix + DIFFUSERS_SD3_ONLY in keys:
        return "diffusers"
    return None


def _indices(keys: Any, start: str, contains: str = "") -> list[int]:
    return sorted({int(k[len(start):].split(".", 1)[0]) for k in keys if k.startswith(start) and contains in k})


def infer_config(shapes: Mapping[str, tuple[int, ...]], kind: str) -> dict[str, Any]:
    """SD3Transformer2DModel's config from a file's tensor shapes (``kind``: its layout, keys unprefixed)."""
    if kind == "original":
        inner, in_channels, patch, _ = shapes["x_embedder.proj.weight"]
        layers = _indices(shapes, "joint_blocks.")
        dual = _indices(shapes, "joint_blocks.", ".x_block.attn2.")
        qk = shapes.get("joint_blocks.0.x_block.attn.ln_q.weight")
        positions = shapes["pos_embed"][1]
        joint, caption = shapes["context_embedder.weight"][1], shapes["context_embedder.weight"][0]
        pooled = shapes["y_embedder.mlp.0.weight"][1]
        out = shapes["final_layer.linear.weight"][0] // (patch * patch)
    else:
        inner, in_channels, patch, _ = shapes["pos_embed.proj.weight"]
        layers = _indices(shapes, "transformer_blocks.")
        dual = _indices(shapes, "transformer_blocks.", ".attn2.")
        qk = shapes.get("transformer_blocks.0.attn.norm_q.weight")
        positions = shapes["pos_embed.pos_embed"][1]
        joint, caption = shapes["context_embedder.weight"][1], shapes["context_embedder.weight"][0]
        pooled = shapes["time_text_embed.text_embedder.linear_1.weight"][1]
        out = shapes["proj_out.weight"][0] // (patch * patch)
    head_dim = qk[0] if qk else RELEASED_HEAD_DIM
    if inner % head_dim:
        raise ValueError(f"an SD3 transformer {inner} wide does not split into heads of {head_dim}")
    side = math.isqrt(positions)
    return {
        "_class_name": "SD3Transformer2DModel",
        "sample_size": 128,
        "patch_size": patch,
        "in_channels": in_channels,
        "out_channels": out,
        "num_layers": len(layers),
        "attention_head_dim": head_dim,
        "num_attention_heads": inner // head_dim,
        "joint_attention_dim": joint,
        "caption_projection_dim": caption,
        "pooled_projection_dim": pooled,
        "pos_embed_max_size": side,
        "dual_attention_layers": dual,
        "qk_norm": "rms_norm" if qk else None,
    }


def original_to_diffusers(state: dict[str, Any]) -> dict[str, Any]:
    """diffusers' converter (it consumes ``state``: pass a dict of its own)."""
    from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers

    return convert_sd3_transformer_checkpoint_to_diffusers(state)
