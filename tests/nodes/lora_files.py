"""LoRA files for tests, written from a real peft adapter on the tiny models (tests.fixtures.tiny_sd).

``peft_adapter`` injects peft LoRA layers into a copy of a module and gives them random weights (peft
initialises lora_B to zero, which would change nothing); the writers store the adapter in the layouts the
loader reads:

- ``write_diffusers``: diffusers' own ``save_lora_weights`` (``unet.*`` PEFT keys, text encoders in the
  ``lora_linear_layer`` spelling diffusers converts them to, alphas in the adapter metadata);
- ``write_kohya``: the kohya/A1111 layout (``lora_unet_*``, ``lora_te_*`` or ``lora_te1_*``/``lora_te2_*``,
  ``.alpha``); SDXL UNet names in the original ``input_blocks`` spelling, as kohya's SDXL trainer writes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "ff.net.2"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1"]


def peft_adapter(module: Any, targets: list[str], rank: int, alpha: float, seed: int, std: float = 0.3) -> tuple[dict, Any]:
    """(peft state dict ``<module>.lora_A.weight``/``lora_B.weight``, LoraConfig) of a random adapter."""
    from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=targets)
    copied = copy.deepcopy(module)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inject_adapter_in_model(config, copied)
    state = get_peft_model_state_dict(copied)
    return {k: torch.randn(v.shape, generator=generator) * std for k, v in state.items()}, config


def write_diffusers(path: Path, family: str, unet: tuple[dict, Any], encoders: list[tuple[dict, Any]]) -> Path:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    path.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"unet_lora_layers": unet[0], "unet_lora_adapter_metadata": unet[1].to_dict()}
    for name, (state, config) in zip(("text_encoder", "text_encoder_2"), encoders):
        kwargs[f"{name}_lora_layers"] = convert_state_dict_to_diffusers(state)
        kwargs[f"{name}_lora_adapter_metadata"] = config.to_dict()
    cls = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    cls.save_lora_weights(str(path), weight_name="lora.safetensors", **kwargs)
    return path / "lora.safetensors"


def _original_unet_name(name: str, unet_config: Any) -> str:
    from nodes.sd.convert_to_ldm import UNET_PREFIX, unet_to_ldm

    ((key, _),) = list(unet_to_ldm({f"{name}.weight": None}, unet_config))
    return key.removeprefix(UNET_PREFIX).removesuffix(".weight")


def write_kohya(
    path: Path, family: str, unet: tuple[dict, Any], encoders: list[tuple[dict, Any]], unet_config: Any,
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    from safetensors.torch import save_file

    out: dict[str, torch.Tensor] = {}

    def add(prefix: str, state: dict, alpha: float, rename) -> None:
        for key, tensor in state.items():
            module, _, half = key.rpartition(".lora_")
            flat = prefix + rename(module).replace(".", "_")
            out[f"{flat}.{'lora_down' if half.startswith('A') else 'lora_up'}.weight"] = tensor.contiguous()
            out[f"{flat}.alpha"] = torch.tensor(float(alpha))

    rename_unet = (lambda m: _original_unet_name(m, unet_config)) if family == "sdxl" else (lambda m: m)
    add("lora_unet_", unet[0], unet[1].lora_alpha, rename_unet)
    prefixes = ("lora_te1_", "lora_te2_") if family == "sdxl" else ("lora_te_",)
    for prefix, (state, config) in zip(prefixes, encoders):
        # kohya writes transformers names with the text_model level (CLIPTextModel lost it in transformers 5.6)
        add(prefix, state, config.lora_alpha, lambda m: m if m.startswith("text_model.") else f"text_model.{m}")
    out.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(out, str(path))
    return path
