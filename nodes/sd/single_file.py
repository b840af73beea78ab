"""Reading and writing original ("single-file", LDM layout) SD1.5 / SDXL checkpoints, and diffusers folders.

Loading, in order: open the file without reading the weights (safetensors header, or a weights-only
unpickle for .ckpt/.pt), detect the family from the key names, take the architecture from the metadata
Save Checkpoint wrote or infer it from tensor shapes, then build each module on the meta device and assign
the converted tensors into it (diffusers' own ``convert_ldm_*`` functions do the key conversion). The
weights are never held twice: a safetensors tensor already in the compute dtype stays backed by the file's
memory map (no copy at all); one in another dtype is converted as it is read, and the map is reopened
every few hundred MB so that the pages read for the conversion do not pile up as a second copy.

Saving writes the reverse layout (``convert_to_ldm``) plus the diffusers configs as JSON in the
safetensors metadata, so that custom and tiny architectures load back exactly.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.sd.convert_to_ldm import (
    CLIP_L_PREFIX,
    OPEN_CLIP_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    ConversionError,
    clip_l_to_ldm,
    open_clip_to_ldm,
    unet_to_ldm,
    vae_to_ldm,
)
from nodes.sd.families import FAMILIES, family_label, load_config, load_tokenizer

META_FAMILY = "nodegraph.family"
META_CONFIG = "nodegraph.config."  # + component name: that component's diffusers config as JSON
META_PREDICTION = "nodegraph.prediction_type"
SCALING_FACTORS = {"sd15": 0.18215, "sdxl": 0.13025, "sdxl_refiner": 0.13025}
# Number of SDXL micro-conditioning values embedded next to the pooled text embedding
# (base: original size, crop top-left, target size; refiner: original size, crop, aesthetic score).
TIME_IDS = {"sdxl": 6, "sdxl_refiner": 5}
REOPEN_BYTES = 256 << 20


class CheckpointError(ValueError):
    """A model file cannot be loaded; the message says what was expected and what was found."""


# --------------------------------------------------------------------------------------------- sources


class TensorSource(Mapping):
    """A read-only ``{key: tensor}`` view of a checkpoint that loads each tensor only when asked for, in
    ``dtype`` (floating tensors only). diffusers' converters take it for a state dict."""

    def __init__(self, path: Path, dtype: Any = None) -> None:
        self.path = path
        self.dtype = dtype
        self.metadata: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self.shapes)

    def __len__(self) -> int:
        return len(self.shapes)

    def __contains__(self, key: object) -> bool:
        return key in self.shapes

    def _cast(self, tensor: Any) -> Any:
        if self.dtype is not None and tensor.is_floating_point() and tensor.dtype != self.dtype:
            return tensor.to(self.dtype)
        return tensor

    def close(self) -> None:
        pass


class SafetensorsSource(TensorSource):
    def __init__(self, path: Path, dtype: Any = None) -> None:
        from safetensors import SafetensorError, safe_open

        super().__init__(path, dtype)
        self._safe_open = safe_open
        try:
            handle = safe_open(str(path), framework="pt")
        except SafetensorError as exc:
            raise CheckpointError(
                f"{path.name} is not a readable safetensors file (truncated or corrupted?): {exc}"
            ) from None
        except OSError as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        self.metadata = dict(handle.metadata() or {})
        self.shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
        self._handle: Any = handle
        self._converted = 0

    def __getitem__(self, key: str) -> Any:
        if key not in self.shapes:
            raise KeyError(key)
        if self._handle is None:
            self._handle = self._safe_open(str(self.path), framework="pt")
        try:
            mapped = self._handle.get_tensor(key)
        except Exception as exc:  # safetensors raises its own error types for a damaged body
            raise CheckpointError(f"{self.path.name}: cannot read tensor {key}: {exc}") from None
        tensor = self._cast(mapped)
        if tensor is mapped:
            # Kept as it is: backed by the file's (private, copy-on-write) memory map, as diffusers and
            # ComfyUI keep safetensors weights. Nothing is copied; pages are read when first used and
            # count as page cache, not as a second copy. The same file maps at the same alignment every
            # time, so results do not depend on where a load happened to put the weights.
            return mapped
        self._converted += mapped.numel() * mapped.element_size()
        del mapped
        if self._converted > REOPEN_BYTES:
            # the converted copy is what stays; dropping the handle unmaps the pages read for it
            self._handle = None
            self._converted = 0
        return tensor

    def close(self) -> None:
        self._handle = None


class PickleSource(TensorSource):
    """A .ckpt/.pt file, unpickled with ``weights_only=True`` (no code runs). Tensors are cast in place in
    the loaded dict so that a dtype change never keeps both versions."""

    def __init__(self, path: Path, dtype: Any = None) -> None:
        import pickle

        import torch

        super().__init__(path, dtype)
        try:
            try:
                # memory-mapped where the format allows: what is not used (an EMA copy) is never read
                data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                data = torch.load(str(path), map_location="cpu", weights_only=True)  # legacy tar format
        except pickle.UnpicklingError as exc:
            raise CheckpointError(
                f"{path.name} holds more than plain weights, and pickled code is never run (weights_only=True):"
                f" {str(exc).splitlines()[0]}. Convert it to .safetensors with a tool you trust."
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint: {exc}") from None
        while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
            data = data["state_dict"]
        if not isinstance(data, dict):
            raise CheckpointError(f"{path.name} does not hold a state dict (found {type(data).__name__})")
        self._tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
        self.shapes = {k: tuple(v.shape) for k, v in self._tensors.items()}

    def __getitem__(self, key: str) -> Any:
        tensor = self._tensors[key]
        cast = self._cast(tensor)
        if cast is not tensor:
            self._tensors[key] = cast
        return cast

    def close(self) -> None:
        self._tensors = {}


class SubsetSource(Mapping):
    """Only the keys of ``source`` that start with one of ``prefixes`` (so converters that take every key
    of a file do not read the parts they will not use)."""

    def __init__(self, source: TensorSource, prefixes: tuple[str, ...]) -> None:
        self.source = source
        self._keys = [k for k in source.shapes if k.startswith(prefixes)]
        self._set = set(self._keys)

    def __getitem__(self, key: str) -> Any:
        if key not in self._set:
            raise KeyError(key)
        return self.source[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._set


def open_source(path: Path, dtype: Any = None) -> TensorSource:
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return SafetensorsSource(path, dtype)
    if suffix in (".ckpt", ".pt", ".pth", ".bin"):
        return PickleSource(path, dtype)
    raise CheckpointError(f"{path.name}: unknown model file type {suffix!r} (expected .safetensors, .ckpt or .pt)")


# ------------------------------------------------------------------------------------- family detection


def _has(shapes: Mapping[str, Any], prefix: str) -> bool:
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
    has_unet = _has(shapes, UNET_PREFIX)
    if has_unet and _has(shapes, "cond_stage_model.transformer."):
        return "sd15"
    if has_unet and _has(shapes, OPEN_CLIP_PREFIX["sdxl"]) and _has(shapes, CLIP_L_PREFIX["sdxl"]):
        return "sdxl"
    if has_unet and _has(shapes, OPEN_CLIP_PREFIX["sdxl_refiner"]) and not _has(shapes, "conditioner.embedders.1."):
        return "sdxl_refiner"
    # not one of ours: say what it looks like
    if has_unet and _has(shapes, "cond_stage_model.model."):
        found = "a Stable Diffusion 2.x checkpoint (OpenCLIP-H text encoder)"
    elif _has(shapes, "double_blocks.") or _has(shapes, "model.diffusion_model.double_blocks."):
        found = "a FLUX transformer"
    elif _has(shapes, "joint_blocks.") or _has(shapes, "model.diffusion_model.joint_blocks."):
        found = "a Stable Diffusion 3 transformer"
    elif _has(shapes, "lora_unet_") or any(".lora_" in k or "lora_down" in k for k in shapes):
        found = "a LoRA (load it with a LoRA loader)"
    elif _has(shapes, "encoder.down.") and _has(shapes, "decoder.up.") and not has_unet:
        found = "a VAE on its own (load it with the VAE loader)"
    elif _has(shapes, "control_model.") or _has(shapes, "input_hint_block."):
        found = "a ControlNet"
    elif _has(shapes, "down_blocks.") and _has(shapes, "conv_in."):
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


def _indices(shapes: Mapping[str, Any], prefix: str) -> list[int]:
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
    blocks = _indices(shapes, p + "input_blocks.")
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
        max(1, len(_indices(shapes, p + f"input_blocks.{level[0]}.1.transformer_blocks."))) for level in levels
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
    mid_depth = len(_indices(shapes, p + "middle_block.1.transformer_blocks."))
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
    levels = _indices(shapes, prefix + "encoder.down.")
    channels = [shapes[prefix + f"encoder.down.{i}.block.0.conv1.weight"][0] for i in levels]
    _update(
        config,
        _class_defaults(AutoencoderKL),
        in_channels=shapes[prefix + "encoder.conv_in.weight"][1],
        out_channels=shapes[prefix + "decoder.conv_out.weight"][0],
        latent_channels=shapes[prefix + "decoder.conv_in.weight"][1],
        block_out_channels=channels,
        layers_per_block=len(_indices(shapes, prefix + "encoder.down.0.block.")),
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
        num_hidden_layers=len(_indices(shapes, r + "encoder.layers.")),
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
        num_hidden_layers=len(_indices(shapes, prefix + "transformer.resblocks.")),
        intermediate_size=shapes[prefix + "transformer.resblocks.0.mlp.c_fc.weight"][0],
        num_attention_heads=config["num_attention_heads"] if width == config["hidden_size"] else _heads(width),
        projection_dim=shapes[prefix + "text_projection"][1],
    )
    return config


def component_configs(source: TensorSource, family: str) -> tuple[dict[str, dict[str, Any]], bool]:
    """Every component's diffusers config: from the file's metadata where Save Checkpoint wrote it, else
    inferred from the shapes. Returns (configs, inferred)."""
    meta = source.metadata
    fam = FAMILIES[family]
    names = ("unet", *(("vae",) if _has(source.shapes, VAE_PREFIX) else ()), *fam.text_encoders)
    if all(META_CONFIG + n in meta for n in names):
        try:
            return {n: json.loads(meta[META_CONFIG + n]) for n in names}, False
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{source.path.name}: the model configs in its metadata are damaged: {exc}") from None
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
        if _has(shapes, VAE_PREFIX):
            configs["vae"] = infer_vae_config(shapes, family)
    except KeyError as exc:
        raise CheckpointError(
            f"{source.path.name} looks like {family_label(family)} but tensor {exc.args[0]} is missing "
            "(a damaged or partial checkpoint?)"
        ) from None
    return configs, True


# ------------------------------------------------------------------------------------------ building


def vae_dtype(dtype: Any, vae_config: Mapping[str, Any]) -> Any:
    """The dtype a VAE is kept in: the compute dtype, except fp16 for a VAE whose config says
    ``force_upcast`` (SDXL's overflows in fp16), which stays fp32 rather than have every decode upcast."""
    import torch

    if dtype == torch.float16 and vae_config.get("force_upcast", False):
        return torch.float32
    return dtype


def _assign(module: Any, state: Mapping[str, Any], what: str, name: str) -> Any:
    """Put the converted tensors into a module built on the meta device (no second copy: assign=True)."""
    try:
        missing, unexpected = module.load_state_dict(dict(state), strict=False, assign=True)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{name}: the {what} weights do not fit its architecture: {exc}") from None
    # position ids are a constant buffer that some files carry and some models do not keep in their state
    missing = [k for k in missing if not k.endswith("position_ids")]
    unexpected = [k for k in unexpected if not k.endswith("position_ids")]
    if missing or unexpected:
        raise CheckpointError(
            f"{name}: the {what} weights do not match its architecture: "
            f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
    if any(t.is_meta for t in (*module.parameters(), *module.buffers())):
        raise CheckpointError(f"{name}: some {what} weights were not in the file")
    return module.eval().requires_grad_(False)


def build_unet(config: Mapping[str, Any], state: Mapping[str, Any], name: str) -> Any:
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(dict(config))
    return _assign(unet, state, "UNet", name)


def build_vae(config: Mapping[str, Any], state: Mapping[str, Any], name: str) -> Any:
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL

    with init_empty_weights():
        vae = AutoencoderKL.from_config(dict(config))
    return _assign(vae, state, "VAE", name)


def build_text_encoder(config: Mapping[str, Any], state: Mapping[str, Any], name: str, projection: bool) -> Any:
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cls = CLIPTextModelWithProjection if projection else CLIPTextModel
    with init_empty_weights():
        model = cls(CLIPTextConfig(**{k: v for k, v in config.items() if k != "architectures"}))
    if not hasattr(model, "text_model"):
        # transformers >= 5.6 flattened CLIPTextModel; the converters produce 'text_model.*'
        state = {k.removeprefix("text_model."): v for k, v in state.items()}
    return _assign(model, state, "text encoder", name)


@dataclass
class LoadedModel:
    """The parts of a checkpoint, ready to go into handles."""

    family: str
    unet: Any
    vae: Any  # None when the file has no VAE
    text_encoders: tuple
    tokenizers: tuple
    scheduler_config: dict[str, Any]
    prediction_type: str
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    inferred: bool = False


def load_single_file(path: Path, dtype: Any = None) -> LoadedModel:
    """Load an original-layout SD1.5 / SDXL / SDXL refiner checkpoint (.safetensors, or .ckpt/.pt)."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

    source = open_source(path, dtype)
    try:
        family = detect_family(source.shapes, path.name)
        meta_family = source.metadata.get(META_FAMILY)
        if meta_family and meta_family != family:
            raise CheckpointError(f"{path.name}: its metadata says {meta_family} but its tensors are {family}")
        configs, inferred = component_configs(source, family)
        fam = FAMILIES[family]
        encoders = []
        for name in fam.text_encoders:
            if name == "text_encoder":
                prefix = CLIP_L_PREFIX[family]
                state = convert_ldm_clip_checkpoint(SubsetSource(source, (prefix,)))
                encoders.append(build_text_encoder(configs[name], state, path.name, projection=False))
            else:
                prefix = OPEN_CLIP_PREFIX[family]
                view = SubsetSource(source, (prefix,))
                state = convert_open_clip_checkpoint(_ProjectionWidth(configs[name]), view, prefix=prefix)
                encoders.append(build_text_encoder(configs[name], state, path.name, projection=True))
            del state
        state = convert_ldm_unet_checkpoint(SubsetSource(source, (UNET_PREFIX,)), configs["unet"])
        unet = build_unet(configs["unet"], state, path.name)
        del state
        vae = None  # some checkpoints ship without one: a Load VAE node supplies it
        if "vae" in configs:
            source.dtype = vae_dtype(dtype, configs["vae"])
            state = convert_ldm_vae_checkpoint(SubsetSource(source, (VAE_PREFIX,)), configs["vae"])
            vae = build_vae(configs["vae"], state, path.name)
            del state
    finally:
        source.close()
    scheduler = json.loads(source.metadata[META_CONFIG + "scheduler"]) if (
        META_CONFIG + "scheduler" in source.metadata) else load_config(family, "scheduler")
    prediction = source.metadata.get(META_PREDICTION) or scheduler.get("prediction_type", "epsilon")
    return LoadedModel(
        family=family,
        unet=unet,
        vae=vae,
        text_encoders=tuple(encoders),
        tokenizers=tuple(load_tokenizer(kind) for kind in fam.tokenizers),
        scheduler_config=scheduler,
        prediction_type=prediction,
        configs=configs,
        inferred=inferred,
    )


class _ProjectionWidth:
    """diffusers' OpenCLIP converter reads the attention width from ``text_model.config.hidden_size``
    when the file has no text projection; give it the config without building a model for that."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        from types import SimpleNamespace

        self.config = SimpleNamespace(hidden_size=config["hidden_size"])


# ---------------------------------------------------------------------------------- diffusers folders


def detect_folder_family(folder: Path) -> str:
    def read(component: str) -> dict[str, Any] | None:
        path = folder / component / "config.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    unet = read("unet")
    if unet is None:
        raise CheckpointError(f"{folder.name} is a diffusers folder without a unet/ (found: "
                              f"{', '.join(sorted(p.name for p in folder.iterdir()))})")
    has_l, has_g = (folder / "text_encoder").is_dir(), (folder / "text_encoder_2").is_dir()
    if unet.get("addition_embed_type") == "text_time":
        if has_l and has_g:
            return "sdxl"
        if has_g:
            return "sdxl_refiner"
    elif has_l and not has_g:
        text = read("text_encoder") or {}
        if text.get("hidden_act", "quick_gelu") == "quick_gelu":
            return "sd15"
        raise CheckpointError(f"{folder.name} looks like Stable Diffusion 2.x (OpenCLIP-H text encoder), "
                              "which is not supported: SD1.5, SDXL and SDXL refiner are")
    raise CheckpointError(f"{folder.name} is a diffusers folder of an unsupported model "
                          f"(UNet config: {json.dumps({k: unet.get(k) for k in ('cross_attention_dim', 'addition_embed_type')})})")


def load_diffusers_folder(folder: Path, dtype: Any = None) -> LoadedModel:
    """Load a diffusers-format folder (model_index.json, unet/, vae/, text_encoder*/)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    family = detect_folder_family(folder)
    fam = FAMILIES[family]
    common = {"local_files_only": True}
    try:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype, **common)
        vae_config = AutoencoderKL.load_config(folder, subfolder="vae", **common)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=vae_dtype(dtype, vae_config),
                                            **common)
        encoders, tokenizers = [], []
        for name, kind in zip(fam.text_encoders, fam.tokenizers):
            cls = CLIPTextModel if name == "text_encoder" else CLIPTextModelWithProjection
            encoders.append(cls.from_pretrained(folder, subfolder=name, dtype=dtype, **common))
            token_dir = folder / name.replace("text_encoder", "tokenizer")
            if (token_dir / "vocab.json").is_file():
                tokenizers.append(CLIPTokenizer.from_pretrained(token_dir, local_files_only=True))
            else:
                tokenizers.append(load_tokenizer(kind))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load the diffusers folder {folder.name}: {exc}") from None
    scheduler_path = folder / "scheduler" / "scheduler_config.json"
    scheduler = (json.loads(scheduler_path.read_text(encoding="utf-8")) if scheduler_path.is_file()
                 else load_config(family, "scheduler"))
    for module in (unet, vae, *encoders):
        module.eval().requires_grad_(False)
    return LoadedModel(
        family=family,
        unet=unet,
        vae=vae,
        text_encoders=tuple(encoders),
        tokenizers=tuple(tokenizers),
        scheduler_config=scheduler,
        prediction_type=scheduler.get("prediction_type", "epsilon"),
        configs={"unet": dict(unet.config), "vae": dict(vae.config)},
    )


def load_model(path: Path, dtype: Any = None) -> LoadedModel:
    """A single file or a diffusers folder."""
    if path.is_dir():
        if not (path / "model_index.json").is_file() and not (path / "unet").is_dir():
            raise CheckpointError(f"{path} is a folder but not a diffusers model (no model_index.json)")
        return load_diffusers_folder(path, dtype)
    return load_single_file(path, dtype)


# ---------------------------------------------------------------------------------------- VAE files


@dataclass
class LoadedVae:
    vae: Any
    family: str | None  # as recorded in the file (Save Checkpoint metadata), else None
    own_config: bool  # the file carried its config (diffusers folder or our metadata): trust its scaling


def load_vae(path: Path, family: str, dtype: Any = None) -> LoadedVae:
    """A VAE on its own: an original-layout file (keys ``encoder.down.*``, possibly under
    ``first_stage_model.``), a whole checkpoint (its VAE is taken), a diffusers-layout file
    (``encoder.down_blocks.*``) or a diffusers folder with config.json. ``family`` picks the config template
    when the file carries no config."""
    import torch
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    if path.is_dir():
        try:
            config = AutoencoderKL.load_config(path, local_files_only=True)
            vae = AutoencoderKL.from_pretrained(path, local_files_only=True, torch_dtype=vae_dtype(dtype, config))
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot load the VAE folder {path.name}: {exc}") from None
        return LoadedVae(vae.eval().requires_grad_(False), None, True)
    source = open_source(path, dtype)
    try:
        shapes = source.shapes
        prefix = next((p for p in (VAE_PREFIX, "vae.") if _has(shapes, p + "encoder.")), "")
        meta = source.metadata.get(META_CONFIG + "vae")
        parts = tuple(prefix + p for p in ("encoder.", "decoder.", "quant_conv.", "post_quant_conv."))
        if _has(shapes, prefix + "encoder.down."):
            config = json.loads(meta) if meta else infer_vae_config(shapes, family, prefix)
            source.dtype = vae_dtype(dtype, config)
            state = convert_ldm_vae_checkpoint(SubsetSource(source, parts), config)
        elif _has(shapes, "encoder.down_blocks.") and _has(shapes, "decoder.up_blocks."):
            # diffusers layout: infer the config from the shapes the original layout would have
            if meta:
                config = json.loads(meta)
            else:
                n_up = len(_indices(shapes, "decoder.up_blocks."))
                # rename shapes alone: meta tensors hold no memory
                empty = {k: torch.empty(v, device="meta") for k, v in shapes.items() if k.startswith(parts)}
                try:
                    ldm = dict(vae_to_ldm(empty, {"up_block_types": [None] * n_up}, ""))
                except ConversionError as exc:
                    raise CheckpointError(f"{path.name}: an unknown VAE layout ({exc})") from None
                config = infer_vae_config({k: v.shape for k, v in ldm.items()}, family, "")
            source.dtype = vae_dtype(dtype, config)
            state = {k: source[k] for k in SubsetSource(source, parts)}
        else:
            raise CheckpointError(f"{path.name} holds no VAE: it holds {describe_keys(shapes)}")
        try:
            vae = build_vae(config, state, path.name)
        except KeyError as exc:
            raise CheckpointError(f"{path.name}: VAE tensor {exc.args[0]} is missing") from None
    finally:
        source.close()
    return LoadedVae(vae, source.metadata.get(META_FAMILY), bool(meta))


# -------------------------------------------------------------------------------------------- saving


def merged_state(module: Any, patches: tuple = ()) -> dict[str, Any]:
    """``module``'s state dict with LoRA-style patches merged into the weights they change.

    Each patch follows the patch protocol (``patch.applied(module)``: a context manager that adds it and
    takes it out again). While they are applied, every peft LoRA layer's weight plus its active adapters'
    deltas (peft's own ``get_delta_weight``, which includes the strength) is computed into a new tensor; the
    shared module itself ends as it began (DESIGN contract 3).
    """
    import contextlib

    import torch

    state = {k: v.detach() for k, v in module.state_dict().items()}
    if not patches:
        return state
    from peft.tuners.tuners_utils import BaseTunerLayer

    with torch.no_grad(), contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch.applied(module))
        for name, layer in module.named_modules():
            if isinstance(layer, BaseTunerLayer):
                weight = layer.get_base_layer().weight
                merged = weight.clone()
                for adapter in layer.active_adapters:
                    if adapter in layer.lora_A:
                        merged += layer.get_delta_weight(adapter).to(weight.dtype)
                state[f"{name}.weight"] = merged
    return state


def checkpoint_state(
    family: str, unet: Any, vae: Any, text_encoders: tuple, dtype: Any = None,
    unet_patches: tuple = (), text_patches: tuple = (),
) -> Iterator[tuple[str, Any]]:
    """(original key, CPU tensor) for every weight of the model, in the original single-file layout, with
    the patches (LoRAs) merged in."""
    fam = FAMILIES[family]
    if len(text_encoders) != len(fam.text_encoders):
        raise CheckpointError(
            f"{family_label(family)} needs {len(fam.text_encoders)} text encoder(s), found {len(text_encoders)}")
    parts: list[Iterator[tuple[str, Any]]] = [
        unet_to_ldm(merged_state(unet, unet_patches), unet.config),
        vae_to_ldm(merged_state(vae), vae.config),
    ]
    for name, encoder in zip(fam.text_encoders, text_encoders):
        state = merged_state(encoder, text_patches)
        if name == "text_encoder":
            parts.append(clip_l_to_ldm(state, CLIP_L_PREFIX[family]))
        else:
            parts.append(open_clip_to_ldm(state, OPEN_CLIP_PREFIX[family]))
    for part in parts:
        for key, tensor in part:
            tensor = tensor.to("cpu")
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            yield key, tensor.contiguous()


def checkpoint_metadata(
    family: str, unet: Any, vae: Any, text_encoders: tuple, scheduler_config: Mapping[str, Any],
    prediction_type: str,
) -> dict[str, str]:
    """safetensors metadata (all strings): the family and every component's diffusers config."""
    fam = FAMILIES[family]
    meta = {
        "format": "pt",
        META_FAMILY: family,
        META_PREDICTION: prediction_type,
        META_CONFIG + "unet": json.dumps(_plain_config(unet.config)),
        META_CONFIG + "vae": json.dumps(_plain_config(vae.config)),
        META_CONFIG + "scheduler": json.dumps(_plain_config(scheduler_config)),
    }
    for name, encoder in zip(fam.text_encoders, text_encoders):
        meta[META_CONFIG + name] = json.dumps(encoder.config.to_diff_dict())
    return meta


def _plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A diffusers FrozenDict as JSON-ready data: the class name stays, other private bookkeeping goes."""
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in dict(config).items()
        if k == "_class_name" or not k.startswith("_")
    }


def write_temp_checkpoint(
    folder: Path,
    family: str,
    unet: Any,
    vae: Any,
    text_encoders: tuple,
    scheduler_config: Mapping[str, Any],
    prediction_type: str = "epsilon",
    dtype: Any = None,
    unet_patches: tuple = (),
    text_patches: tuple = (),
) -> Path:
    """Write the model as an original-layout .safetensors file under a temporary name in ``folder``;
    :func:`publish` then gives it its final name."""
    import uuid

    from safetensors.torch import save_file

    state = dict(checkpoint_state(family, unet, vae, text_encoders, dtype, unet_patches, text_patches))
    meta = checkpoint_metadata(family, unet, vae, text_encoders, scheduler_config, prediction_type)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".checkpoint.{uuid.uuid4().hex}.partial"
    try:
        save_file(state, str(temp), metadata=meta)
        # safetensors creates its files private (0600); a saved checkpoint gets the usual permissions
        os.chmod(temp, 0o666 & ~_umask())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, briefly, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def publish(temp: Path, candidates: Iterable[Path]) -> Path:
    """Give a finished temporary file the first of ``candidates`` that does not exist yet: atomically (a
    reader never sees half a file; a hard link fails rather than replace) and never replacing an existing
    file. :class:`FileExistsError` when every candidate exists. The temporary name is gone afterwards."""
    target = None
    try:
        for target in candidates:
            try:
                os.link(temp, target)
                return target
            except FileExistsError:
                continue
            except OSError:  # file systems without hard links
                if target.exists():
                    continue
                os.replace(temp, target)
                return target
        raise FileExistsError(f"every candidate name exists (last: {target})")
    finally:
        temp.unlink(missing_ok=True)


def save_single_file(
    path: Path,
    family: str,
    unet: Any,
    vae: Any,
    text_encoders: tuple,
    scheduler_config: Mapping[str, Any],
    prediction_type: str = "epsilon",
    dtype: Any = None,
) -> Path:
    """Write the model to ``path`` (.safetensors) in the original layout, configs in the metadata. An
    existing file is never replaced: :class:`FileExistsError`."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(str(path))
    temp = write_temp_checkpoint(path.parent, family, unet, vae, text_encoders, scheduler_config,
                                 prediction_type, dtype)
    return publish(temp, [path])
