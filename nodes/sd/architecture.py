"""What a single-file checkpoint is: its family from the key names, and each component's diffusers config,
from the metadata Save Checkpoint wrote or inferred from the tensor shapes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nodes.sd.convert_to_ldm import (
    CLIP_L_PREFIX,
    OPEN_CLIP_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
)
from nodes.sd.families import FAMILIES, family_label, load_config
from nodes.sd.tensor_sources import CheckpointError, TensorSource

META_FAMILY = "nodegraph.family"
META_CONFIG = "nodegraph.config."  # + component name: that component's diffusers config as JSON
META_PREDICTION = "nodegraph.prediction_type"
SCALING_FACTORS = {"sd15": 0.18215, "sdxl": 0.13025, "sdxl_refiner": 0.13025}
# Number of SDXL micro-conditioning values embedded next to the pooled text embedding
# (base: original size, crop top-left, target size; refiner: original size, crop, aesthetic score).
TIME_IDS = {"sdxl": 6, "sdxl_refiner": 5}
REOPEN_BYTES = 256 << 20


# ------------------------------------------------------------------------------------- family detection


def has_prefix(shapes: Mapping[str, Any], prefix: str) -> bool:
    return any(k.startswith(prefix) for k in shapes)


def describe_keys(shapes: Mapping[str, Any], limit: int = 6) -> str:
    """'model.diffusion_model (686 tensors), first_stage_model (248 tensors)': what a file holds."""
    groups: dict[str, int] = {}
    for key in shapes:
        parts = key.split(".")
        head = ".".join(parts[:2]) if parts[0] in ("model", "conditioner", "cond_stage_model") else parts[0]
        groups[head] = groups.get(head, 0) + 1
    listed = sorted(groups.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{name} ({count} tensors)" for name, count in listed[:limit])
    if len(listed) > limit:
        text += f", and {len(listed) - limit} more groups"
    return text or "no tensors at all"


def detect_family(shapes: Mapping[str, Any], name: str = "the file") -> str:
    """'sd15', 'sdxl' or 'sdxl_refiner' from the key names; anything else is a :class:`CheckpointError`."""
    has_unet = has_prefix(shapes, UNET_PREFIX)
    if has_unet and has_prefix(shapes, "cond_stage_model.transformer."):
        return "sd15"
    if has_unet and has_prefix(shapes, OPEN_CLIP_PREFIX["sdxl"]) and has_prefix(shapes, CLIP_L_PREFIX["sdxl"]):
        return "sdxl"
    if has_unet and has_prefix(shapes, OPEN_CLIP_PREFIX["sdxl_refiner"]) and not has_prefix(shapes, "conditioner.embedders.1."):
        return "sdxl_refiner"
    # not one of ours: say what it looks like
    if has_unet and has_prefix(shapes, "cond_stage_model.model."):
        found = "a Stable Diffusion 2.x checkpoint (OpenCLIP-H text encoder)"
    elif has_prefix(shapes, "double_blocks.") or has_prefix(shapes, "model.diffusion_model.double_blocks."):
        found = "a FLUX model (load it with Load FLUX / SD3 Checkpoint, or Load Diffusion Model for a transformer alone)"
    elif has_prefix(shapes, "joint_blocks.") or has_prefix(shapes, "model.diffusion_model.joint_blocks."):
        found = "a Stable Diffusion 3 model (load it with Load FLUX / SD3 Checkpoint)"
    elif has_prefix(shapes, "lora_unet_") or any(".lora_" in k or "lora_down" in k for k in shapes):
        found = "a LoRA (load it with a LoRA loader)"
    elif has_prefix(shapes, "encoder.down.") and has_prefix(shapes, "decoder.up.") and not has_unet:
        found = "a VAE on its own (load it with the VAE loader)"
    elif has_prefix(shapes, "control_model.") or has_prefix(shapes, "input_hint_block."):
        found = "a ControlNet"
    elif has_prefix(shapes, "down_blocks.") and has_prefix(shapes, "conv_in."):
        found = "a diffusers-format UNet or VAE file, not a whole checkpoint"
    elif has_unet:
        found = "a UNet without the text encoders of SD1.5 or SDXL"
    else:
        found = "no Stable Diffusion model"
    raise CheckpointError(
        f"{name} is not an SD1.5, SDXL or SDXL refiner checkpoint: it looks like {found}. "
        f"It holds {describe_keys(shapes)}."
    )


# --------------------------------------------------------------------------------- architecture inference


def prefix_indices(shapes: Mapping[str, Any], prefix: str) -> list[int]:
    """The distinct integers that follow ``prefix`` in the keys ('...resblocks.' -> [0, 1, ...])."""
    found = set()
    for key in shapes:
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _groups(channels: list[int], preferred: int) -> int:
    """GroupNorm group counts are not stored in a checkpoint: keep the family's value when it divides
    every channel count, else the largest count that does."""
    common = math.gcd(*channels)
    if common % preferred == 0:
        return preferred
    return max(g for g in range(1, min(preferred, common) + 1) if common % g == 0)


def _heads(width: int) -> int:
    """Head counts are not stored either: heads of 64 channels (as in CLIP-L, bigG and SDXL's UNet), else
    the largest count up to 8 that divides the width. Used only where the width is not the family's."""
    if width % 64 == 0:
        return width // 64
    return max(h for h in range(1, 9) if width % h == 0)


def _class_defaults(cls: Any) -> dict[str, Any]:
    import inspect

    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _update(config: dict[str, Any], defaults: Mapping[str, Any], **values: Any) -> None:
    """Set only what differs from the config as it stands (or the class default where it is silent), so
    that a standard checkpoint infers exactly its family's shipped config."""
    for key, value in values.items():
        if _plain(config.get(key, defaults.get(key))) != _plain(value):
            config[key] = value


def infer_unet_config(shapes: Mapping[str, tuple], family: str, pooled_dim: int | None = None) -> dict[str, Any]:
    """The diffusers UNet config that fits the original-layout tensor shapes, starting from the family's."""
    p = UNET_PREFIX
    config = load_config(family, "unet")
    conv_in = shapes[p + "input_blocks.0.0.weight"]
    levels: list[list[int]] = [[]]
    blocks = prefix_indices(shapes, p + "input_blocks.")
    for i in blocks[1:]:
        if p + f"input_blocks.{i}.0.op.weight" in shapes:
            levels.append([])
        else:
            levels[-1].append(i)
    per_level = {len(level) for level in levels}
    if len(per_level) != 1 or 0 in per_level:
        raise CheckpointError(f"the UNet's levels have different numbers of layers ({[len(x) for x in levels]})")
    channels = [shapes[p + f"input_blocks.{level[0]}.0.in_layers.2.weight"][0] for level in levels]
    attention = [p + f"input_blocks.{level[0]}.1.proj_in.weight" in shapes for level in levels]
    depth = [
        max(1, len(prefix_indices(shapes, p + f"input_blocks.{level[0]}.1.transformer_blocks."))) for level in levels
    ]
    from diffusers import UNet2DConditionModel

    defaults = _class_defaults(UNet2DConditionModel)
    for key, shape in shapes.items():
        if key.startswith(p) and key.endswith("attn2.to_k.weight"):
            _update(config, defaults, cross_attention_dim=shape[1])
            break
    for key, shape in shapes.items():
        if key.startswith(p) and key.endswith(".proj_in.weight"):
            _update(config, defaults, use_linear_projection=len(shape) == 2)
            break
    mid_depth = len(prefix_indices(shapes, p + "middle_block.1.transformer_blocks."))
    attn_depths = [d for d, a in zip(depth, attention) if a]
    if attn_depths and len(set(attn_depths)) == 1 and mid_depth in (0, attn_depths[0]):
        layers: Any = attn_depths[0]
    else:
        # non-attention levels get 1; the mid block takes the deepest level's count, as SDXL's does
        layers = [d if a else 1 for d, a in zip(depth, attention)]
    template_channels = list(config["block_out_channels"])
    _update(
        config,
        defaults,
        in_channels=conv_in[1],
        out_channels=shapes[p + "out.2.weight"][0],
        block_out_channels=channels,
        layers_per_block=len(levels[0]),
        down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        transformer_layers_per_block=layers,
        norm_num_groups=_groups(channels, config.get("norm_num_groups", 32)),
    )
    if mid_depth == 0:
        config["mid_block_type"] = "UNetMidBlock2D"
    if family == "sd15":
        # SD1.5 counts heads, not head width (diffusers' legacy "attention_head_dim"): 8 where it divides
        if any(c % config["attention_head_dim"] for c in channels):
            config["attention_head_dim"] = 1
    elif channels != template_channels:
        config["attention_head_dim"] = [_heads(c) for c in channels]
    time_dim = shapes[p + "time_embed.0.weight"][0]
    if time_dim != 4 * channels[0]:
        config["time_embedding_dim"] = time_dim
    if p + "label_emb.0.0.weight" in shapes:
        total = shapes[p + "label_emb.0.0.weight"][1]
        config["projection_class_embeddings_input_dim"] = total
        if pooled_dim is not None:
            config["addition_time_embed_dim"] = (total - pooled_dim) // TIME_IDS[family]
    return config


def infer_vae_config(shapes: Mapping[str, tuple], family: str, prefix: str = VAE_PREFIX) -> dict[str, Any]:
    from diffusers import AutoencoderKL

    config = load_config(family, "vae")
    levels = prefix_indices(shapes, prefix + "encoder.down.")
    channels = [shapes[prefix + f"encoder.down.{i}.block.0.conv1.weight"][0] for i in levels]
    _update(
        config,
        _class_defaults(AutoencoderKL),
        in_channels=shapes[prefix + "encoder.conv_in.weight"][1],
        out_channels=shapes[prefix + "decoder.conv_out.weight"][0],
        latent_channels=shapes[prefix + "decoder.conv_in.weight"][1],
        block_out_channels=channels,
        layers_per_block=len(prefix_indices(shapes, prefix + "encoder.down.0.block.")),
        down_block_types=["DownEncoderBlock2D"] * len(levels),
        up_block_types=["UpDecoderBlock2D"] * len(levels),
        norm_num_groups=_groups(channels, config.get("norm_num_groups", 32)),
    )
    if prefix + "encoder.mid.attn_1.q.weight" not in shapes:
        config["mid_block_add_attention"] = False
    if prefix + "quant_conv.weight" not in shapes:
        config["use_quant_conv"] = False
    if prefix + "post_quant_conv.weight" not in shapes:
        config["use_post_quant_conv"] = False
    return config


def infer_clip_l_config(shapes: Mapping[str, tuple], family: str, prefix: str) -> dict[str, Any]:
    """CLIP-L in the transformers layout, under ``prefix`` + 'text_model.'."""
    config = load_config(family, "text_encoder")
    r = prefix + "text_model."
    vocab, width = shapes[r + "embeddings.token_embedding.weight"]
    config.update(
        vocab_size=vocab,
        hidden_size=width,
        max_position_embeddings=shapes[r + "embeddings.position_embedding.weight"][0],
        num_hidden_layers=len(prefix_indices(shapes, r + "encoder.layers.")),
        intermediate_size=shapes[r + "encoder.layers.0.mlp.fc1.weight"][0],
        num_attention_heads=config["num_attention_heads"] if width == config["hidden_size"] else _heads(width),
    )
    if width != load_config(family, "text_encoder")["hidden_size"]:
        config["projection_dim"] = width
    return config


def infer_open_clip_config(shapes: Mapping[str, tuple], family: str, prefix: str) -> dict[str, Any]:
    """OpenCLIP bigG (open_clip layout) as a transformers CLIPTextModelWithProjection config."""
    config = load_config(family, "text_encoder_2")
    vocab, width = shapes[prefix + "token_embedding.weight"]
    config.update(
        vocab_size=vocab,
        hidden_size=width,
        max_position_embeddings=shapes[prefix + "positional_embedding"][0],
        num_hidden_layers=len(prefix_indices(shapes, prefix + "transformer.resblocks.")),
        intermediate_size=shapes[prefix + "transformer.resblocks.0.mlp.c_fc.weight"][0],
        num_attention_heads=config["num_attention_heads"] if width == config["hidden_size"] else _heads(width),
        projection_dim=shapes[prefix + "text_projection"][1],
    )
    return config


# Config fields a checkpoint's tensor shapes fix: a config in the metadata must agree with the tensors on these
# (a forged "100,000 layers" config would otherwise be built before anything is checked).
SHAPE_FIELDS = {
    "text_encoder": ("vocab_size", "hidden_size", "max_position_embeddings", "num_hidden_layers", "intermediate_size"),
    "text_encoder_2": ("vocab_size", "hidden_size", "max_position_embeddings", "num_hidden_layers",
                       "intermediate_size", "projection_dim"),
    "unet": ("in_channels", "out_channels", "block_out_channels", "layers_per_block", "down_block_types",
             "up_block_types", "cross_attention_dim", "projection_class_embeddings_input_dim"),
    "vae": ("in_channels", "out_channels", "latent_channels", "block_out_channels", "layers_per_block"),
}


def _metadata_configs(source: TensorSource, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The component configs in the metadata, each a bounded JSON object."""
    from nodegraph.safe_json import JsonInputError, loads_limited

    configs: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            config = loads_limited(source.metadata[META_CONFIG + name], f"the {name} config in its metadata")
        except JsonInputError as exc:
            raise CheckpointError(f"{source.path.name}: {exc} (damaged or forged metadata)") from None
        if not isinstance(config, dict):
            raise CheckpointError(f"{source.path.name}: the {name} config in its metadata is a "
                                  f"{type(config).__name__}, not an object (damaged or forged metadata)")
        configs[name] = config
    return configs


def _plain_value(value: Any) -> Any:
    return [_plain_value(v) for v in value] if isinstance(value, (list, tuple)) else value


def check_against_shapes(name: str, claimed: dict[str, Any], inferred: dict[str, Any], file: str) -> None:
    """Refuse a metadata config that disagrees with the tensors on a field their shapes fix."""
    defaults = _component_defaults(name)
    for key in SHAPE_FIELDS.get(name, ()):
        said = _plain_value(claimed.get(key, defaults.get(key)))
        found = _plain_value(inferred.get(key, defaults.get(key)))
        if said != found:
            raise CheckpointError(
                f"{file}: the {name} config in its metadata says {key} = {str(said)[:60]}, but its tensors hold "
                f"{str(found)[:60]}: the metadata is damaged or forged (re-save the checkpoint, or remove its "
                "nodegraph.config.* metadata to have the architecture inferred from the tensors)")


def _component_defaults(name: str) -> dict[str, Any]:
    if name in ("unet", "vae"):
        from diffusers import AutoencoderKL, UNet2DConditionModel

        return {k: _plain(v) for k, v in _class_defaults(UNet2DConditionModel if name == "unet" else AutoencoderKL).items()}
    return {}


def component_configs(source: TensorSource, family: str) -> tuple[dict[str, dict[str, Any]], bool]:
    """Every component's diffusers config: from the file's metadata where Save Checkpoint wrote it (checked
    against the tensor shapes), else inferred from the shapes. Returns (configs, inferred)."""
    meta = source.metadata
    fam = FAMILIES[family]
    names = ("unet", *(("vae",) if has_prefix(source.shapes, VAE_PREFIX) else ()), *fam.text_encoders)
    inferred = _inferred_configs(source, family)
    if all(META_CONFIG + n in meta for n in names):
        claimed = _metadata_configs(source, names)
        for name in names:
            check_against_shapes(name, claimed[name], inferred[name], source.path.name)
        return claimed, False
    return inferred, True


def _inferred_configs(source: TensorSource, family: str) -> dict[str, dict[str, Any]]:
    fam = FAMILIES[family]
    shapes = source.shapes
    configs: dict[str, dict[str, Any]] = {}
    pooled = None
    try:
        for name in fam.text_encoders:
            if name == "text_encoder":
                configs[name] = infer_clip_l_config(shapes, family, CLIP_L_PREFIX[family])
            else:
                configs[name] = infer_open_clip_config(shapes, family, OPEN_CLIP_PREFIX[family])
                pooled = configs[name]["projection_dim"]
        configs["unet"] = infer_unet_config(shapes, family, pooled)
        if has_prefix(shapes, VAE_PREFIX):
            configs["vae"] = infer_vae_config(shapes, family)
    except KeyError as exc:
        raise CheckpointError(
            f"{source.path.name} looks like {family_label(family)} but tensor {exc.args[0]} is missing "
            "(a damaged or partial checkpoint?)"
        ) from None
    except (IndexError, ValueError, TypeError, ZeroDivisionError) as exc:
        raise CheckpointError(f"{source.path.name}: its tensors do not form a {family_label(family)} model "
                              f"({type(exc).__name__}: {exc})") from None
    return configs
