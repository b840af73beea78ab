"""ControlNet and T2I-Adapter models and files for tests, built on the tiny models (tests.fixtures.tiny_sd).

- ``make_controlnet``: diffusers' ``ControlNetModel.from_unet`` on the tiny UNet, with its zero convolutions
  given random weights (a zero-initialised ControlNet changes nothing, which no test could see);
- ``write_controlnet_original``: the same weights in the original (lllyasviel) layout, ``control_model.*``;
- ``make_adapter`` / ``write_adapter_original``: a diffusers ``T2IAdapter`` sized for the tiny SD1.5 UNet and
  its TencentARC layout (``conv_in``, flat ``body.<k>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def make_controlnet(unet: Any, seed: int, std: float = 0.05) -> Any:
    from diffusers import ControlNetModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        controlnet = ControlNetModel.from_unet(unet)
        zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                      controlnet.controlnet_cond_embedding.conv_out]
        with torch.no_grad():
            for conv in zero_convs:
                conv.weight.normal_(0.0, std)
                conv.bias.normal_(0.0, std)
    return controlnet.eval().requires_grad_(False)


def controlnet_original_state(controlnet: Any) -> dict[str, torch.Tensor]:
    from nodes.sd.convert_to_ldm import UNET_PREFIX, unet_to_ldm

    config = {"layers_per_block": controlnet.config.layers_per_block, "up_block_types": []}
    out: dict[str, torch.Tensor] = {}
    unet_like = {}
    for key, tensor in controlnet.state_dict().items():
        module, _, leaf = key.rpartition(".")
        parts = module.split(".")
        if parts[0] == "controlnet_down_blocks":
            out[f"zero_convs.{parts[1]}.0.{leaf}"] = tensor
        elif parts[0] == "controlnet_mid_block":
            out[f"middle_block_out.0.{leaf}"] = tensor
        elif parts[0] == "controlnet_cond_embedding":
            if parts[1] == "conv_in":
                index = 0
            elif parts[1] == "conv_out":
                index = 2 * (len(controlnet.controlnet_cond_embedding.blocks) + 1)
            else:
                index = 2 * (int(parts[2]) + 1)
            out[f"input_hint_block.{index}.{leaf}"] = tensor
        else:
            unet_like[key] = tensor
    for key, tensor in unet_to_ldm(unet_like, config):
        out[key.removeprefix(UNET_PREFIX)] = tensor
    return {f"control_model.{k}": v.contiguous() for k, v in out.items()}


def write_controlnet_original(path: Path, controlnet: Any) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(controlnet_original_state(controlnet), str(path))
    return path


def make_adapter(seed: int, channels: tuple[int, ...] = (32, 64), in_channels: int = 3) -> Any:
    from diffusers import T2IAdapter

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapter = T2IAdapter(in_channels=in_channels, channels=list(channels), num_res_blocks=2, downscale_factor=8,
                             adapter_type="full_adapter")
    return adapter.eval().requires_grad_(False)


def write_adapter_original(path: Path, adapter: Any) -> Path:
    from safetensors.torch import save_file

    per_level = adapter.config.num_res_blocks
    out: dict[str, torch.Tensor] = {}
    for key, tensor in adapter.state_dict().items():
        parts = key.split(".")  # adapter.conv_in.weight | adapter.body.L.in_conv.w | adapter.body.L.resnets.j.block1.w
        if parts[1] == "conv_in":
            out[f"conv_in.{parts[2]}"] = tensor
        elif parts[3] == "in_conv":
            out[f"body.{int(parts[2]) * per_level}.in_conv.{parts[4]}"] = tensor
        else:
            out[f"body.{int(parts[2]) * per_level + int(parts[4])}.{'.'.join(parts[5:])}"] = tensor
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, str(path))
    return path
