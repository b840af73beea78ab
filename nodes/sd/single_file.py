"""Reading and writing original ("single-file", LDM layout) SD1.5 / SDXL checkpoints, and diffusers folders.

Loading, in order: open the file without reading the weights (safetensors header, or a weights-only
unpickle for .ckpt/.pt), detect the family from the key names, take the architecture from the metadata
Save Checkpoint wrote or infer it from tensor shapes, then build each module on the meta device and assign
the converted tensors into it (diffusers' own ``convert_ldm_*`` functions do the key conversion). The
weights are never held twice: a safetensors tensor already in the compute dtype stays backed by the file's
memory map (no copy at all); one in another dtype is converted as it is read, and the map is reopened
every few hundred MB so that the pages read for the conversion do not pile up as a second copy.

Files are opened by :mod:`nodes.sd.tensor_sources`, their architecture found by :mod:`nodes.sd.architecture`;
saving is :mod:`nodes.sd.save_checkpoint`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.sd.architecture import (
    META_CONFIG,
    META_FAMILY,
    META_PREDICTION,
    component_configs,
    describe_keys,
    detect_family,
    has_prefix,
    infer_vae_config,
    prefix_indices,
)
from nodes.sd.convert_to_ldm import (
    CLIP_L_PREFIX,
    OPEN_CLIP_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    ConversionError,
    vae_to_ldm,
)
from nodes.sd.families import FAMILIES, load_config, load_tokenizer
from nodes.sd.tensor_sources import CheckpointError, SubsetSource, open_source

# ------------------------------------------------------------------------------------------ building


def vae_dtype(dtype: Any, vae_config: Mapping[str, Any]) -> Any:
    """The dtype a VAE is kept in: the compute dtype, except fp16 for a VAE whose config says
    ``force_upcast`` (SDXL's overflows in fp16), which stays fp32 rather than have every decode upcast. A config
    without the key (SD1.5's) gets diffusers' class default, True, as diffusers' pipelines do."""
    import torch

    if dtype == torch.float16 and vae_config.get("force_upcast", True):
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
    # A config file's torch_dtype (float16 in SDXL's) is dropped: transformers 5 would build the model in it,
    # and the dtype is the runtime's choice, applied as the tensors are read.
    skip = {"architectures", "torch_dtype", "dtype"}
    with init_empty_weights():
        model = cls(CLIPTextConfig(**{k: v for k, v in config.items() if k not in skip}))
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
    """Load an original-layout SD1.5 / SDXL / SDXL refiner checkpoint (.safetensors, or .ckpt/.pt). Whatever
    is wrong with the file is a :class:`CheckpointError` naming it."""
    source = open_source(path, dtype)
    try:
        return _load_single_file(source, path, dtype)
    except CheckpointError:
        raise
    except Exception as exc:  # any library's error: the file is what is wrong
        # a config from the metadata that passed the shape checks but that diffusers or transformers cannot use
        # (they raise TypeError, ValueError, KeyError or huggingface_hub's own validation errors)
        raise CheckpointError(f"{path.name} cannot be built from its configs: {type(exc).__name__}: {exc} (damaged "
                              "or forged metadata? re-save the checkpoint)") from None
    finally:
        source.close()


def _load_single_file(source: Any, path: Path, dtype: Any) -> LoadedModel:
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

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
    scheduler = scheduler_config(source, family)
    prediction = source.metadata.get(META_PREDICTION) or scheduler.get("prediction_type", "epsilon")
    if prediction not in PREDICTION_TYPES:
        raise CheckpointError(f"{path.name}: its metadata names the prediction type {str(prediction)[:40]!r}; "
                              f"expected one of {', '.join(PREDICTION_TYPES)} (damaged or forged metadata)")
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


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def scheduler_config(source: Any, family: str) -> dict[str, Any]:
    """The scheduler config in the file's metadata (Save Checkpoint writes it), else the family's shipped one
    (the real model folder's file). A metadata config diffusers cannot build a scheduler from is refused here,
    naming the checkpoint, rather than failing later in the sampler."""
    import diffusers

    from nodegraph.safe_json import JsonInputError, loads_limited

    raw = source.metadata.get(META_CONFIG + "scheduler")
    if raw is None:
        return load_config(family, "scheduler")
    name = source.path.name
    try:
        config = loads_limited(raw, "the scheduler config in its metadata")
    except JsonInputError as exc:
        raise CheckpointError(f"{name}: {exc} (damaged or forged metadata)") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{name}: the scheduler config in its metadata is not an object (damaged or forged)")
    cls = getattr(diffusers, str(config.get("_class_name", "")), None) or diffusers.EulerDiscreteScheduler
    try:
        scheduler = cls.from_config({k: v for k, v in config.items() if not k.startswith("_")})
        scheduler.set_timesteps(2)
    except Exception as exc:  # any way a forged config breaks diffusers' scheduler
        raise CheckpointError(f"{name}: the scheduler config in its metadata cannot be used: {type(exc).__name__}: "
                              f"{exc} (damaged or forged metadata)") from None
    return config


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
    if unet is None and (folder / "transformer").is_dir():
        raise CheckpointError(f"{folder.name} is a diffusers folder of a transformer model: load FLUX / SD3 folders with "
                              "Load FLUX / SD3 Checkpoint, PixArt / Hunyuan-DiT / DiT folders with Load DiT / IF Model")
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
        prefix = next((p for p in (VAE_PREFIX, "vae.") if has_prefix(shapes, p + "encoder.")), "")
        meta = source.metadata.get(META_CONFIG + "vae")
        parts = tuple(prefix + p for p in ("encoder.", "decoder.", "quant_conv.", "post_quant_conv."))
        if has_prefix(shapes, prefix + "encoder.down."):
            config = json.loads(meta) if meta else infer_vae_config(shapes, family, prefix)
            source.dtype = vae_dtype(dtype, config)
            state = convert_ldm_vae_checkpoint(SubsetSource(source, parts), config)
        elif has_prefix(shapes, "encoder.down_blocks.") and has_prefix(shapes, "decoder.up_blocks."):
            # diffusers layout: infer the config from the shapes the original layout would have
            if meta:
                config = json.loads(meta)
            else:
                n_up = len(prefix_indices(shapes, "decoder.up_blocks."))
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


