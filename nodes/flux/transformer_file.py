"""FLUX transformer weights in single files: which layout a file uses, the model config its tensor shapes imply, and
the original (Black Forest Labs / ComfyUI) layout converted to diffusers' FluxTransformer2DModel names.

Files come in two layouts: the original one (``double_blocks.N.img_attn.qkv`` ..., possibly under
``model.diffusion_model.``; flux1-dev.safetensors, ComfyUI's diffusion_models) and diffusers' own
(``transformer_blocks.N.attn.to_q`` ...). diffusers' converter (``convert_flux_transformer_checkpoint_to_diffusers``)
hard-codes the released width (3072), so :func:`original_to_diffusers` is the same mapping with the width read from
the file; tests check it against diffusers' converter key for key and row for row at the released width.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ORIGINAL_MARK = "double_blocks.0.img_attn.norm.key_norm.scale"  # diffusers' own detection key
DIFFUSERS_MARK = "transformer_blocks.0.attn.norm_added_k.weight"  # FLUX's joint blocks (SD3.5 has no norm_added_k)
SINGLE_MARK = "single_transformer_blocks.0.proj_mlp.weight"
CHECKPOINT_PREFIX = "model.diffusion_model."
MLP_RATIO = 4  # FluxSingleTransformerBlock's fixed MLP width


def layout(keys: Any, prefix: str = "") -> str | None:
    """"original" / "diffusers" when the keys (under ``prefix``) hold a FLUX transformer, else None."""
    if prefix + ORIGINAL_MARK in keys:
        return "original"
    if prefix + DIFFUSERS_MARK in keys and prefix + SINGLE_MARK in keys:
        return "diffusers"
    return None


def _count(keys: Any, start: str) -> int:
    indices = {int(k[len(start):].split(".", 1)[0]) for k in keys if k.startswith(start)}
    return max(indices) + 1 if indices else 0


def rope_axes(head_dim: int) -> tuple[int, int, int]:
    """The rotary axes of a head: FLUX.1 splits 128 into (16, 56, 56); other widths in the same proportions."""
    axes = (head_dim // 8, 7 * head_dim // 16, 7 * head_dim // 16)
    if sum(axes) != head_dim or any(a % 2 for a in axes):
        raise ValueError(f"cannot split an attention head of {head_dim} into FLUX's rotary axes (16:56:56)")
    return axes


def infer_config(shapes: Mapping[str, tuple[int, ...]], kind: str) -> dict[str, Any]:
    """FluxTransformer2DModel's config from the shapes of a file's tensors (``kind``: its layout, keys unprefixed)."""
    if kind == "original":
        inner, in_channels = shapes["img_in.weight"]
        head_dim = shapes["double_blocks.0.img_attn.norm.query_norm.scale"][0]
        layers, single = _count(shapes, "double_blocks."), _count(shapes, "single_blocks.")
        joint = shapes["txt_in.weight"][1]
        pooled = shapes["vector_in.in_layer.weight"][1]
        out = shapes["final_layer.linear.weight"][0]
        guidance = "guidance_in.in_layer.weight" in shapes
    else:
        inner, in_channels = shapes["x_embedder.weight"]
        head_dim = shapes["transformer_blocks.0.attn.norm_q.weight"][0]
        layers, single = _count(shapes, "transformer_blocks."), _count(shapes, "single_transformer_blocks.")
        joint = shapes["context_embedder.weight"][1]
        pooled = shapes["time_text_embed.text_embedder.linear_1.weight"][1]
        out = shapes["proj_out.weight"][0]
        guidance = "time_text_embed.guidance_embedder.linear_1.weight" in shapes
    return {
        "_class_name": "FluxTransformer2DModel",
        "patch_size": 1,
        "in_channels": in_channels,
        "out_channels": out,
        "num_layers": layers,
        "num_single_layers": single,
        "attention_head_dim": head_dim,
        "num_attention_heads": inner // head_dim,
        "joint_attention_dim": joint,
        "pooled_projection_dim": pooled,
        "guidance_embeds": guidance,
        "axes_dims_rope": list(rope_axes(head_dim)),
    }


def swap_halves(tensor: Any) -> Any:
    """The original adaLN output is (shift, scale); diffusers' AdaLayerNormContinuous wants (scale, shift)."""
    import torch

    shift, scale = tensor.chunk(2, dim=0)
    return torch.cat([scale, shift], dim=0)


# original -> diffusers names of the parts that are renamed one to one
_EMBEDDERS = {
    "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
    "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
    "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
    "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
    "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
    "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
    "txt_in": "context_embedder",
    "img_in": "x_embedder",
    "final_layer.linear": "proj_out",
}
_DOUBLE = {
    "img_mod.lin": "norm1.linear",
    "txt_mod.lin": "norm1_context.linear",
    "img_attn.proj": "attn.to_out.0",
    "txt_attn.proj": "attn.to_add_out",
    "img_mlp.0": "ff.net.0.proj",
    "img_mlp.2": "ff.net.2",
    "txt_mlp.0": "ff_context.net.0.proj",
    "txt_mlp.2": "ff_context.net.2",
}
_DOUBLE_NORMS = {
    "img_attn.norm.query_norm.scale": "attn.norm_q.weight",
    "img_attn.norm.key_norm.scale": "attn.norm_k.weight",
    "txt_attn.norm.query_norm.scale": "attn.norm_added_q.weight",
    "txt_attn.norm.key_norm.scale": "attn.norm_added_k.weight",
}
_SINGLE = {"modulation.lin": "norm.linear", "linear2": "proj_out"}
_SINGLE_NORMS = {"norm.query_norm.scale": "attn.norm_q.weight", "norm.key_norm.scale": "attn.norm_k.weight"}


def original_to_diffusers(get: Callable[[str], Any], keys: Any, on_tensor: Callable[[], None] | None = None) -> dict[str, Any]:
    """Convert original-layout FLUX weights (``get(key)`` reads one, ``keys`` lists them, unprefixed) to
    FluxTransformer2DModel's state dict: fused q/k/v and q/k/v/MLP projections are split, the final adaLN's halves
    swapped. ``on_tensor`` is called after each tensor (a cancellation check on large files)."""
    import torch

    keys = set(keys)
    out: dict[str, Any] = {}
    inner = int(get("img_in.weight").shape[0])

    def put(target: str, value: Any) -> None:
        out[target] = value
        if on_tensor is not None:
            on_tensor()

    for source, target in _EMBEDDERS.items():
        for part in ("weight", "bias"):
            if f"{source}.{part}" in keys:
                put(f"{target}.{part}", get(f"{source}.{part}"))
    for part in ("weight", "bias"):
        put(f"norm_out.linear.{part}", swap_halves(get(f"final_layer.adaLN_modulation.1.{part}")))
    for i in range(_count(keys, "double_blocks.")):
        src, dst = f"double_blocks.{i}.", f"transformer_blocks.{i}."
        for source, target in _DOUBLE.items():
            for part in ("weight", "bias"):
                put(f"{dst}{target}.{part}", get(f"{src}{source}.{part}"))
        for source, target in _DOUBLE_NORMS.items():
            put(dst + target, get(src + source))
        for stream, names in (("img", ("to_q", "to_k", "to_v")), ("txt", ("add_q_proj", "add_k_proj", "add_v_proj"))):
            for part in ("weight", "bias"):
                for name, piece in zip(names, torch.chunk(get(f"{src}{stream}_attn.qkv.{part}"), 3, dim=0)):
                    put(f"{dst}attn.{name}.{part}", piece)
    split = (inner, inner, inner, MLP_RATIO * inner)
    for i in range(_count(keys, "single_blocks.")):
        src, dst = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        for source, target in _SINGLE.items():
            for part in ("weight", "bias"):
                put(f"{dst}{target}.{part}", get(f"{src}{source}.{part}"))
        for source, target in _SINGLE_NORMS.items():
            put(dst + target, get(src + source))
        for part in ("weight", "bias"):
            fused = get(f"{src}linear1.{part}")
            if fused.shape[0] != sum(split):
                raise ValueError(f"{src}linear1.{part} has {fused.shape[0]} rows; a FLUX block {inner} wide has {sum(split)}")
            for name, piece in zip(("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), torch.split(fused, split, dim=0)):
                put(f"{dst}{name}.{part}", piece)
    return out
