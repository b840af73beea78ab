"""Checks and places shared by the training nodes (DreamBooth, ControlNet, T2I-Adapter): the base model
handles they train on, a resolution the model can take, and the user's model folder a result is saved into
(never the models shipped with the product). Torch-free at import."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError

RESULT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,119}$")


def check_handles(model: Any, clip: Any, vae: Any) -> None:
    """MODEL / CLIP / VAE from a checkpoint loader, of one family, without LoRA patches."""
    from nodes.sd.families import family_label

    for name, value, attribute in (("model", model, "unet"), ("clip", clip, "encoders"), ("vae", vae, "vae")):
        if getattr(value, attribute, None) is None:
            raise NodeInputError(f"expected a {name.upper()} from a checkpoint loader, found {type(value).__name__}",
                                 name)
    if model.family != clip.family:
        raise NodeInputError(
            f"the model is {family_label(model.family)} but the CLIP is {family_label(clip.family)}", "clip")
    if model.patches or clip.patches:
        raise NodeInputError(
            "the model or CLIP already carries LoRA patches; train on the checkpoint loader's outputs and stack "
            "LoRAs afterwards", "model" if model.patches else "clip")


def check_resolution(model: Any, vae: Any, resolution: int) -> None:
    from nodes.latent.codec import spatial_factor

    levels = len(model.unet.config.block_out_channels) - 1
    multiple = spatial_factor(vae.vae) * 2**levels
    if resolution % multiple:
        raise NodeInputError(
            f"resolution {resolution} is not a multiple of {multiple} (this model's VAE factor x its UNet's "
            "downsampling)", "resolution")


def result_name(text: str, field: str, suffixes: tuple[str, ...] = ()) -> str:
    """A plain file or folder name for a training result (no folders, no '..')."""
    name = text.strip()
    for suffix in suffixes:
        name = name.removesuffix(suffix)
    if not RESULT_NAME.match(name) or ".." in name:
        raise NodeInputError(
            f"name {text!r} must be a plain file name (letters, digits, space, '_', '-', '.'; no folders)", field)
    return name


def user_model_folder(ctx: NodeContext, kind: str, field: str) -> Path:
    """The first of the user's ``kind`` model folders (created if needed); the shipped models' folder is never
    written into."""
    from nodegraph.model_folders import BUILTIN_ROOT

    folders = [f for f in ctx.folders.folders(kind) if not f.resolve().is_relative_to(BUILTIN_ROOT.resolve())]
    if not folders:
        raise NodeInputError(f"no writable {kind} model folder is configured", field)
    # the kind's own folder of the first root (t2i_adapter/, not the controlnet/ alias it also reads)
    target = next((f for f in folders if f.name == kind), next((f for f in folders if f.is_dir()), folders[0]))
    target.mkdir(parents=True, exist_ok=True)
    return target
