"""Writing original-layout ("single-file") checkpoints: the reverse key layout (``convert_to_ldm``), LoRAs
merged in, the diffusers configs as JSON in the safetensors metadata, published atomically and never over an
existing file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from nodes.sd.architecture import META_CONFIG, META_FAMILY, META_PREDICTION
from nodes.sd.convert_to_ldm import (
    CLIP_L_PREFIX,
    OPEN_CLIP_PREFIX,
    clip_l_to_ldm,
    open_clip_to_ldm,
    unet_to_ldm,
    vae_to_ldm,
)
from nodes.sd.families import FAMILIES, family_label
from nodes.sd.tensor_sources import CheckpointError

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
    from nodegraph.atomic_files import clean_stale_temps, new_file_mode

    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(folder)  # what a killed save left behind
    temp = folder / f".checkpoint.{uuid.uuid4().hex}.partial"
    try:
        save_file(state, str(temp), metadata=meta)
        # safetensors creates its files private (0600); a saved checkpoint gets the usual permissions
        os.chmod(temp, new_file_mode())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


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
