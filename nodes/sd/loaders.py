"""Checkpoint and VAE loaders, and Save Checkpoint.

Loaded modules are in eval mode, without gradients, on the CPU, in the runtime's compute dtype (so that
fp32 runs on a CPU keep fp32 weights and a bf16/fp16 run never holds an fp32 copy). Consumers move them
to the compute device with ``ctx.runtime.residency.load(module)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Choice, ModelFile, String
from nodegraph.types import CLIP, MODEL, STRING, VAE

CHECKPOINT_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth")


def _load_error(exc: Exception, field: str) -> NodeInputError:
    return NodeInputError(str(exc), field)


@node(
    "core.CheckpointLoader", name="Load Checkpoint", category="loaders",
    description="Loads an SD1.5, SDXL or SDXL refiner checkpoint: an original single file (.safetensors, or "
                ".ckpt/.pt read without running pickled code) or a diffusers folder. The family is detected "
                "from the weights; tiny and custom architectures load too. A FLUX or SD3 checkpoint is loaded as "
                "Load FLUX / SD3 Checkpoint loads it (as ComfyUI's Load Checkpoint does).",
    params=[ModelFile("ckpt_name", folder="checkpoints", extensions=CHECKPOINT_EXTENSIONS, allow_directories=True,
                      help="A file (or diffusers folder) from the checkpoints folders.")],
    outputs=[Output("model", MODEL), Output("clip", CLIP), Output("vae", VAE),
             Output("family", STRING, help="sd15, sdxl or sdxl_refiner")],
)
def checkpoint_loader(ctx: NodeContext, ckpt_name: str) -> dict[str, Any]:
    from nodes.sd.families import family_label
    from nodes.sd.handles import ClipHandle, ModelHandle, VaeHandle
    from nodes.sd.single_file import load_model
    from nodes.sd.tensor_sources import CheckpointError

    path = ctx.folders.resolve("checkpoints", ckpt_name)
    if flow_family(path) is not None:
        from nodes.mmdit.loader_nodes import flow_checkpoint_loader

        return flow_checkpoint_loader.fn(ctx, ckpt_name, True)
    dtype = ctx.runtime.dtype
    try:
        loaded = load_model(path, dtype)
    except CheckpointError as exc:
        raise _load_error(exc, "ckpt_name") from None
    kind = "diffusers folder" if path.is_dir() else "checkpoint"
    notes = []
    if loaded.inferred:
        notes.append("architecture inferred from tensor shapes")
    channels = loaded.unet.config.in_channels
    if channels == 9:
        notes.append("an inpainting model: 9 input channels for the latent, the mask and the masked image")
    elif channels != 4:
        notes.append(f"{channels} input channels, which no sampler here feeds (4, or 9 for inpainting models)")
    note = f" ({'; '.join(notes)})" if notes else ""
    params = sum(p.numel() for p in loaded.unet.parameters()) / 1e6
    ctx.log(f"loaded {family_label(loaded.family)} {kind} {path.name}{note}: UNet {params:.1f}M parameters, "
            f"{str(dtype).removeprefix('torch.')}")
    vae = None
    vae_factor = 8  # the SD1.5 / SDXL VAE's, for a checkpoint that ships without one
    if loaded.vae is None:
        ctx.warn(f"{path.name} has no VAE (no first_stage_model.* weights): connect a Load VAE node for decoding")
    else:
        config = loaded.vae.config
        vae = VaeHandle(loaded.vae, loaded.family, float(config.scaling_factor),
                        float(getattr(config, "shift_factor", None) or 0.0))
        vae_factor = 2 ** (len(config.block_out_channels) - 1)
    from nodes.sampling.previews import remember_vae

    remember_vae(loaded.unet, vae)  # live previews of this model map latents to RGB through this VAE
    return {
        "model": ModelHandle(loaded.unet, loaded.family, loaded.scheduler_config, loaded.prediction_type,
                             vae_scale_factor=vae_factor),
        "clip": ClipHandle(loaded.family, loaded.tokenizers, loaded.text_encoders),
        "vae": vae,
        "family": loaded.family,
    }


def flow_family(path: Path) -> str | None:
    """"flux" / "sd3" when a checkpoint (a .safetensors file or a diffusers folder) holds a FLUX / SD3 model."""
    if path.is_dir():
        from nodes.mmdit.folders import folder_family

        return folder_family(path)
    if path.suffix.lower() != ".safetensors":
        return None  # a pickle is not opened twice: the SD loader's error names the FLUX / SD3 loader
    from nodegraph.model_probe import safetensors_keys
    from nodes.mmdit.checkpoint_file import detect_transformer

    found = detect_transformer(set(safetensors_keys(path) or ()))
    return found[0] if found else None


_SCALES = ("auto", "sd15", "sdxl", "flux", "sd3")
_FLOW_SCALES = ("flux", "sd3")  # 16-channel VAEs (nodes.mmdit)


@node(
    "core.VAELoader", name="Load VAE", category="loaders",
    description="Loads a VAE on its own to replace a checkpoint's: an original-layout or diffusers-layout "
                ".safetensors/.ckpt file, the VAE inside a whole checkpoint, or a diffusers VAE folder.",
    params=[
        ModelFile("vae_name", folder="vae", extensions=CHECKPOINT_EXTENSIONS, allow_directories=True,
                  help="A file (or diffusers VAE folder) from the vae folders."),
        Choice("latent_scale", choices=_SCALES,
               help="Which family's latent scaling the VAE uses. auto: the file's own metadata or config, else "
                    "for a 16-channel VAE SD3's if the name contains 'sd3', else FLUX's; for a 4-channel one SDXL's "
                    "if the name contains 'xl', else SD1.5's."),
    ],
    outputs=[Output("vae", VAE)],
)
def vae_loader(ctx: NodeContext, vae_name: str, latent_scale: str) -> Any:
    from nodes.sd.architecture import SCALING_FACTORS
    from nodes.sd.handles import VaeHandle
    from nodes.sd.single_file import load_vae
    from nodes.sd.tensor_sources import CheckpointError

    path = ctx.folders.resolve("vae", vae_name)
    guess = "sdxl" if "xl" in path.name.lower() else "sd15"
    try:
        loaded = load_vae(path, guess if latent_scale in ("auto", *_FLOW_SCALES) else latent_scale, ctx.runtime.dtype)
    except CheckpointError as exc:
        raise _load_error(exc, "vae_name") from None
    vae = loaded.vae
    if latent_scale in _FLOW_SCALES or (vae.config.latent_channels == 16 and latent_scale == "auto"):
        from nodes.mmdit.assemble import vae_handle

        family = latent_scale if latent_scale in _FLOW_SCALES else "sd3" if "sd3" in path.name.lower() else "flux"
        handle = vae_handle(family, vae, own_config=loaded.own_config and latent_scale == "auto")
        ctx.log(f"loaded VAE {path.name} with {family} latent scaling {handle.scaling_factor}, shift {handle.shift_factor}")
        return handle
    if latent_scale == "auto" and loaded.own_config:
        family, scale = loaded.family or guess, float(vae.config.scaling_factor)
    else:
        family = guess if latent_scale == "auto" else latent_scale
        scale = SCALING_FACTORS[family]
    family = "sdxl" if family == "sdxl_refiner" else family  # one latent space for base and refiner
    ctx.log(f"loaded VAE {path.name} with {family} latent scaling {scale}")
    return VaeHandle(vae, family, scale, float(getattr(vae.config, "shift_factor", None) or 0.0))


_DTYPES = ("keep", "fp16", "bf16", "fp32")
_NAME = re.compile(r"^(?P<stem>.+)_(?P<n>\d{5,})\.safetensors$")


def _next_number(folder: Path, stem: str) -> int:
    highest = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            match = _NAME.match(entry.name)
            if match and match["stem"] == stem:
                highest = max(highest, int(match["n"]))
    return highest + 1


@node(
    "core.SaveCheckpoint", name="Save Checkpoint", category="loaders",
    description="Saves a model, its text encoder(s) and a VAE as one original-layout .safetensors checkpoint "
                "(the layout SD1.5/SDXL checkpoints are shared in), with the architecture in its metadata, as "
                "<output folder>/<prefix>_NNNNN.safetensors. LoRAs applied to the model or CLIP are merged "
                "into the saved weights. Never overwrites a file.",
    inputs=[Input("model", MODEL), Input("clip", CLIP), Input("vae", VAE)],
    params=[
        String("filename_prefix", "checkpoints/nodegraph",
               help="File name inside the output folder; subfolders allowed, leaving the folder is not."),
        Choice("dtype", choices=_DTYPES, help="Weight precision in the file; keep = as loaded."),
    ],
    outputs=[Output("path", STRING)],
    output_node=True,
)
def save_checkpoint(ctx: NodeContext, model: Any, clip: Any, vae: Any, filename_prefix: str, dtype: str) -> str:
    from nodegraph.runtime import torch_dtype
    from nodes.image.output_files import resolve_prefix
    from nodes.sd.convert_to_ldm import ConversionError
    from nodes.sd.families import family_label
    from nodes.sd.save_checkpoint import publish, write_temp_checkpoint
    from nodes.sd.tensor_sources import CheckpointError

    for name, value, attribute in (("model", model, "unet"), ("clip", clip, "encoders"), ("vae", vae, "vae")):
        if getattr(value, attribute, None) is None:
            raise NodeInputError(f"'{name}' must be a {name.upper()} from a loader, found {type(value).__name__}",
                                 name)
    if model.family != clip.family:
        raise NodeInputError(f"the model is {family_label(model.family)} but the CLIP is {family_label(clip.family)}",
                             "clip")
    if model.guidance:
        ctx.warn("the model's extra guidance steps act while sampling and are not part of a checkpoint: not saved")
    folder, stem = resolve_prefix(ctx.output_dir, filename_prefix)
    ctx.check_cancelled()
    try:
        temp = write_temp_checkpoint(folder, model.family, model.unet, vae.vae, tuple(clip.encoders),
                                     model.scheduler_config, model.prediction_type,
                                     None if dtype == "keep" else torch_dtype(dtype),
                                     unet_patches=model.patches, text_patches=clip.patches)
    except (CheckpointError, ConversionError) as exc:
        raise NodeInputError(f"this model cannot be written in the original layout: {exc}", "model") from None
    start = _next_number(folder, stem)
    # a name taken meanwhile (another run saving with the same prefix) moves on to the next number
    target = publish(temp, (folder / f"{stem}_{n:05d}.safetensors" for n in range(start, start + 1000)))
    ctx.log(f"saved {family_label(model.family)} checkpoint {target}")
    return str(target)
