"""diffusers -> original (LDM, "single-file") key layout, for Save Checkpoint.

diffusers ships only the other direction (``diffusers.loaders.single_file_utils.convert_*``), which the
loader uses; these functions are written to be its exact inverse, so that saving and loading again gives
identical weights. They rename keys and reshape where the layouts differ; tensors are passed through
without copying (except the OpenCLIP attention projections, which the original layout stores fused).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_L_PREFIX = {"sd15": "cond_stage_model.transformer.", "sdxl": "conditioner.embedders.0.transformer."}
OPEN_CLIP_PREFIX = {"sdxl": "conditioner.embedders.1.model.", "sdxl_refiner": "conditioner.embedders.0.model."}

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_TOP = {
    "conv_in": "conv_in",
    "conv_out": "conv_out",
    "conv_norm_out": "norm_out",
}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


class ConversionError(ValueError):
    """A module's state dict has keys this layout does not know (an unsupported architecture)."""


def _split(key: str) -> tuple[str, str]:
    """'a.b.weight' -> ('a.b', 'weight')."""
    module, _, leaf = key.rpartition(".")
    return module, leaf


def _layers_per_block(config: Mapping[str, Any]) -> int:
    layers = config["layers_per_block"]
    if isinstance(layers, (list, tuple)):
        if len(set(layers)) != 1:
            raise ConversionError(f"layers_per_block differs between blocks ({list(layers)}); the original layout "
                                  "cannot express that")
        layers = layers[0]
    return int(layers)


def unet_to_ldm(state: Mapping[str, Any], config: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield (original key, tensor) for a UNet2DConditionModel state dict."""
    per_block = _layers_per_block(config)
    up_has_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    for key, tensor in state.items():
        module, leaf = _split(key)
        parts = module.split(".")
        if module in _UNET_TOP:
            new = _UNET_TOP[module]
        elif parts[0] == "down_blocks":
            block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
            base = 1 + block * (per_block + 1)
            if kind == "resnets":
                new = f"input_blocks.{base + index}.0." + _UNET_RESNET.get(".".join(rest), ".".join(rest))
            elif kind == "attentions":
                new = f"input_blocks.{base + index}.1." + ".".join(rest)
            elif kind == "downsamplers":
                new = f"input_blocks.{base + per_block}.0.op"
            else:
                raise ConversionError(f"unknown UNet key {key}")
        elif parts[0] == "mid_block":
            kind, index, rest = parts[1], int(parts[2]), ".".join(parts[3:])
            if kind == "resnets":
                new = f"middle_block.{2 * index}." + _UNET_RESNET.get(rest, rest)
            elif kind == "attentions":
                new = f"middle_block.{2 * index + 1}." + rest
            else:
                raise ConversionError(f"unknown UNet key {key}")
        elif parts[0] == "up_blocks":
            block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
            base = block * (per_block + 1)
            if kind == "resnets":
                new = f"output_blocks.{base + index}.0." + _UNET_RESNET.get(".".join(rest), ".".join(rest))
            elif kind == "attentions":
                new = f"output_blocks.{base + index}.1." + ".".join(rest)
            elif kind == "upsamplers":
                # the upsampler follows the resnet (and the attention, where the block has one)
                slot = 2 if up_has_attention[block] else 1
                new = f"output_blocks.{base + per_block}.{slot}.conv"
            else:
                raise ConversionError(f"unknown UNet key {key}")
        else:
            raise ConversionError(f"UNet key {key} has no place in the original layout")
        yield UNET_PREFIX + new + "." + leaf, tensor


def _vae_resnet(rest: str) -> str:
    return rest.replace("conv_shortcut", "nin_shortcut")


def vae_to_ldm(state: Mapping[str, Any], config: Mapping[str, Any], prefix: str = VAE_PREFIX) -> Iterator[tuple[str, Any]]:
    """Yield (original key, tensor) for an AutoencoderKL state dict."""
    n_up = len(config["up_block_types"])
    for key, tensor in state.items():
        module, leaf = _split(key)
        parts = module.split(".")
        side = parts[0]
        if side in ("quant_conv", "post_quant_conv"):
            new = module
        elif side in ("encoder", "decoder"):
            sub = parts[1]
            if sub in _VAE_TOP:
                new = f"{side}.{_VAE_TOP[sub]}"
            elif sub == "down_blocks":
                block, kind = int(parts[2]), parts[3]
                if kind == "resnets":
                    new = f"{side}.down.{block}.block.{parts[4]}." + _vae_resnet(".".join(parts[5:]))
                else:
                    new = f"{side}.down.{block}.downsample.conv"
            elif sub == "up_blocks":
                # the original decoder numbers its up blocks from the lowest resolution upwards, reversed
                block, kind = n_up - 1 - int(parts[2]), parts[3]
                if kind == "resnets":
                    new = f"{side}.up.{block}.block.{parts[4]}." + _vae_resnet(".".join(parts[5:]))
                else:
                    new = f"{side}.up.{block}.upsample.conv"
            elif sub == "mid_block":
                kind, index, rest = parts[2], int(parts[3]), ".".join(parts[4:])
                if kind == "resnets":
                    new = f"{side}.mid.block_{index + 1}." + _vae_resnet(rest)
                else:
                    new = f"{side}.mid.attn_1." + _VAE_ATTENTION.get(rest, rest)
                    if leaf == "weight" and tensor.dim() == 2:
                        # original attention projections are 1x1 convolutions
                        tensor = tensor[:, :, None, None]
            else:
                raise ConversionError(f"unknown VAE key {key}")
        else:
            raise ConversionError(f"VAE key {key} has no place in the original layout")
        yield prefix + new + "." + leaf, tensor


def clip_l_to_ldm(state: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """Yield (original key, tensor) for a CLIPTextModel: the original layout keeps the transformers names
    under ``<prefix>text_model.`` (transformers >= 5.6 dropped that level from its own keys)."""
    for key, tensor in state.items():
        if key.endswith("position_ids"):
            continue
        inner = key if key.startswith("text_model.") or key.startswith("text_projection") else "text_model." + key
        yield prefix + inner, tensor


_OPEN_CLIP_LAYER = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def open_clip_to_ldm(state: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """Yield (original key, tensor) for a CLIPTextModelWithProjection in open_clip's layout: fused q/k/v
    ``in_proj``, ``resblocks``, and ``text_projection`` stored transposed ([width, projection])."""
    import torch

    state = {k.removeprefix("text_model."): v for k, v in state.items() if not k.endswith("position_ids")}
    fixed = {
        "embeddings.token_embedding.weight": "token_embedding.weight",
        "embeddings.position_embedding.weight": "positional_embedding",
        "final_layer_norm.weight": "ln_final.weight",
        "final_layer_norm.bias": "ln_final.bias",
    }
    for key, new in fixed.items():
        yield prefix + new, state[key]
    yield prefix + "text_projection", state["text_projection.weight"].T.contiguous()
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.layers.")})
    for n in layers:
        src = f"encoder.layers.{n}."
        dst = f"{prefix}transformer.resblocks.{n}."
        for leaf in ("weight", "bias"):
            parts = [state[f"{src}self_attn.{p}_proj.{leaf}"] for p in "qkv"]
            yield f"{dst}attn.in_proj_{leaf}", torch.cat(parts, dim=0)
        for old, new in _OPEN_CLIP_LAYER.items():
            for leaf in ("weight", "bias"):
                yield f"{dst}{new}.{leaf}", state[f"{src}{old}.{leaf}"]
    known = set(fixed) | {"text_projection.weight"}
    unknown = [k for k in state if k not in known and not k.startswith("encoder.layers.")]
    if unknown:
        raise ConversionError(f"OpenCLIP text encoder keys without a place in the original layout: {unknown[:5]}")
