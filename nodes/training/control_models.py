"""The trainable ControlNet / T2I-Adapter: built for a base UNet, and written where the loaders find it.

- A new ControlNet is diffusers' ``ControlNetModel.from_unet``: the UNet's encoder half copied, zero
  convolutions on every residual, so the untrained net changes nothing (the paper's point). Its condition
  embedding (strided convolutions from pixels down to the latent grid) has ``len(channels) - 1`` stride-2
  layers, so it must reach the VAE's factor (8: four widths, the default 16,32,96,256).
- A new T2I-Adapter has one feature map per UNet level with the UNet's widths: ``full_adapter`` (SD1.5
  layout: pixel-unshuffle by the VAE factor), ``light_adapter`` (SD1.5, fewer parameters), or
  ``full_adapter_xl`` (SDXL's layout). :func:`check_adapter_fits` runs the UNet once on a tiny input to prove
  the features land where its blocks add them, and says what does not fit otherwise.
- Results are written as a diffusers folder (config.json + safetensors) or one original-layout
  ``.safetensors`` file (lllyasviel / TencentARC key names), atomically, with the usual permissions, never
  over an existing file or folder: a taken name gets a number.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

DEFAULT_EMBEDDING_CHANNELS = (16, 32, 96, 256)
ADAPTER_TYPES = ("full_adapter", "light_adapter", "full_adapter_xl")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,119}$")


class ControlBuildError(ValueError):
    """A control model that cannot be built for this base model; the message says why and what to pick."""


def vae_factor(vae_module: Any) -> int:
    return 2 ** (len(vae_module.config.block_out_channels) - 1)


def new_controlnet(unet: Any, embedding_channels: tuple[int, ...], factor: int, seed: int) -> Any:
    """A ControlNet initialised from ``unet`` (fp32, train mode). The condition embedding's random weights
    come from ``seed``; the global random state is left as it was."""
    from diffusers import ControlNetModel

    if len(embedding_channels) - 1 != factor.bit_length() - 1 or 2 ** (len(embedding_channels) - 1) != factor:
        raise ControlBuildError(
            f"the condition embedding needs {factor.bit_length()} widths to downsample the control image {factor}x "
            f"to the latent grid (one stride-2 layer between each pair); got {len(embedding_channels)}: "
            f"{','.join(map(str, embedding_channels))}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=tuple(embedding_channels))
    return model.float().train()


def adapter_config(unet: Any, family: str, adapter_type: str, factor: int) -> dict[str, Any]:
    """The T2IAdapter config whose features match ``unet``'s levels."""
    widths = [int(c) for c in unet.config.block_out_channels]
    if adapter_type == "full_adapter_xl":
        if family != "sdxl":
            raise ControlBuildError("full_adapter_xl is SDXL's layout; for an SD1.5 model choose full_adapter or "
                                    "light_adapter")
        channels = [*widths, widths[-1]]  # SDXL: three levels and the mid block
        return dict(in_channels=3, channels=channels, num_res_blocks=2, downscale_factor=2 * factor,
                    adapter_type=adapter_type)
    if family == "sdxl":
        raise ControlBuildError(f"{adapter_type} is an SD1.5 layout; for an SDXL model choose full_adapter_xl")
    if adapter_type == "full_adapter":
        return dict(in_channels=3, channels=widths, num_res_blocks=2, downscale_factor=factor,
                    adapter_type=adapter_type)
    if adapter_type == "light_adapter":
        if len(widths) < 2 or widths[-1] != widths[-2]:
            raise ControlBuildError(
                f"a light adapter repeats its last width for the UNet's last level, but this UNet's levels are "
                f"{widths}: choose full_adapter")
        return dict(in_channels=3, channels=widths[:-1], num_res_blocks=4, downscale_factor=factor,
                    adapter_type=adapter_type)
    raise ControlBuildError(f"unknown adapter type {adapter_type!r}; expected one of {', '.join(ADAPTER_TYPES)}")


def new_adapter(config: dict[str, Any], seed: int) -> Any:
    from diffusers import T2IAdapter

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapter = T2IAdapter(**config)
    return adapter.float().train()


@torch.no_grad()
def check_adapter_fits(adapter: Any, unet: Any, factor: int, added: dict | None = None) -> None:
    """Run the UNet once on the smallest latent the adapter accepts, with the adapter's features: a shape
    mismatch becomes a :class:`ControlBuildError` naming the shapes."""
    import math

    # a latent whose innermost level is 2x2 (GroupNorm needs more than one value), divisible as the adapter needs
    side = math.lcm(max(1, adapter.total_downscale_factor // factor), 2 ** len(unet.config.block_out_channels))
    pixels = torch.zeros(1, adapter.config.in_channels, side * factor, side * factor)
    param = next(unet.parameters())
    x = torch.zeros(1, unet.config.in_channels, side, side, device=param.device, dtype=param.dtype)
    text = torch.zeros(1, 1, unet.config.cross_attention_dim, device=param.device, dtype=param.dtype)
    adapter_param = next(adapter.parameters())
    features = adapter(pixels.to(adapter_param.device, adapter_param.dtype))
    if added is not None:
        added = {k: v[:1].to(param.device, param.dtype) for k, v in added.items()}
    try:
        unet(x, torch.tensor([1], device=param.device), encoder_hidden_states=text, added_cond_kwargs=added,
             down_intrablock_additional_residuals=[f.to(param.dtype) for f in features])
    except RuntimeError as exc:
        shapes = [tuple(f.shape[1:]) for f in features]
        raise ControlBuildError(
            f"the {adapter.config.adapter_type} features {shapes} do not fit this UNet's levels "
            f"(block widths {list(unet.config.block_out_channels)}): {str(exc).splitlines()[0]}") from None


# -------------------------------------------------------------------------------------------------- saving


def free_target(folder: Path, name: str, single_file: bool) -> tuple[Path, str]:
    """The path to write ``name`` to in ``folder``: ``name`` (a diffusers folder) or ``name.safetensors``;
    when taken, ``name_2``, ``name_3``, ... (nothing is ever written over)."""
    suffix = ".safetensors" if single_file else ""
    stem, number = name, 1
    while (folder / f"{stem}{suffix}").exists() or (folder / stem).exists() or (folder / f"{stem}.safetensors").exists():
        number += 1
        stem = f"{name}_{number}"
    return folder / f"{stem}{suffix}", f"{stem}{suffix}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(temp: Path, target: Path) -> Path:
    """Move a finished temporary file or folder to ``target``, which must not exist."""
    mask = _umask()
    if temp.is_dir():
        os.chmod(temp, 0o777 & ~mask)
        for item in temp.rglob("*"):
            os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)
    else:
        os.chmod(temp, 0o666 & ~mask)
    if target.exists():
        raise FileExistsError(str(target))
    os.rename(temp, target)
    return target


def save_control(model: Any, target: Path, single_file: bool, info: dict[str, str] | None = None) -> Path:
    """Write ``model`` (ControlNetModel or T2IAdapter) to ``target``: a diffusers folder, or one original-layout
    .safetensors file (configs follow from its shapes; the loaders infer them). ``info`` goes into the
    safetensors metadata."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp_control_"))
    try:
        if single_file:
            from safetensors.torch import save_file

            state = original_state(model)
            written = scratch / "model.safetensors"
            save_file(state, str(written), metadata={"format": "pt", **(info or {})})
            return _publish(written, target)
        folder = scratch / "model"
        model.save_pretrained(str(folder), safe_serialization=True)
        return _publish(folder, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def original_state(model: Any) -> dict[str, torch.Tensor]:
    """The original-layout state dict of a ControlNet (``control_model.*``, lllyasviel) or a full T2I-Adapter
    (TencentARC's flat ``body.<k>``)."""
    from diffusers import ControlNetModel

    if isinstance(model, ControlNetModel):
        return controlnet_original_state(model)
    if model.config.adapter_type == "light_adapter":
        raise ControlBuildError("a light adapter has no original single-file layout: save it as a diffusers folder")
    return adapter_original_state(model)


def controlnet_original_state(controlnet: Any) -> dict[str, torch.Tensor]:
    from nodes.sd.convert_to_ldm import UNET_PREFIX, unet_to_ldm

    config = {"layers_per_block": controlnet.config.layers_per_block, "up_block_types": []}
    out: dict[str, torch.Tensor] = {}
    unet_like = {}
    embedding_blocks = len(controlnet.controlnet_cond_embedding.blocks)
    for key, tensor in controlnet.state_dict().items():
        module, _, leaf = key.rpartition(".")
        parts = module.split(".")
        if parts[0] == "controlnet_down_blocks":
            out[f"zero_convs.{parts[1]}.0.{leaf}"] = tensor
        elif parts[0] == "controlnet_mid_block":
            out[f"middle_block_out.0.{leaf}"] = tensor
        elif parts[0] == "controlnet_cond_embedding":
            # input_hint_block: conv, SiLU, (conv, SiLU) per block, conv_out: convolutions at even indices
            if parts[1] == "conv_in":
                index = 0
            elif parts[1] == "conv_out":
                index = 2 * (embedding_blocks + 1)
            else:
                index = 2 * (int(parts[2]) + 1)
            out[f"input_hint_block.{index}.{leaf}"] = tensor
        else:
            unet_like[key] = tensor
    for key, tensor in unet_to_ldm(unet_like, config):
        out[key.removeprefix(UNET_PREFIX)] = tensor
    return {f"control_model.{k}": v.detach().cpu().contiguous() for k, v in out.items()}


def adapter_original_state(adapter: Any) -> dict[str, torch.Tensor]:
    per_level = adapter.config.num_res_blocks
    out: dict[str, torch.Tensor] = {}
    for key, tensor in adapter.state_dict().items():
        parts = key.split(".")  # adapter.conv_in.w | adapter.body.L.in_conv.w | adapter.body.L.resnets.j.block1.w
        if parts[1] == "conv_in":
            out[f"conv_in.{parts[2]}"] = tensor
        elif parts[3] == "in_conv":
            out[f"body.{int(parts[2]) * per_level}.in_conv.{parts[4]}"] = tensor
        else:
            out[f"body.{int(parts[2]) * per_level + int(parts[4])}.{'.'.join(parts[5:])}"] = tensor
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}
