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

# The original layouts are written by the product's own converters (what Train ControlNet / T2I-Adapter use for
# single files); the tests that read them compare against the diffusers models they came from.
from nodes.training.control_models import adapter_original_state, controlnet_original_state

__all__ = ["controlnet_original_state", "make_adapter", "make_controlnet", "write_adapter_original",
           "write_controlnet_original"]


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

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(adapter_original_state(adapter), str(path))
    return path
