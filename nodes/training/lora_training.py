"""Trainable peft LoRA layers in a shared module for the length of a training run, and the LoRA file they make.

The MODEL and CLIP handles a training node receives share their modules with every other holder (DESIGN
contract 3), and a full UNet is too large to copy for a training run. So the adapter is injected into the
module itself under a name of its own and taken out again when the block ends, whatever happens inside (an
error, a cancellation): every LoRA layer reverts to its base layer, the ``peft_config`` attribute and the
parameters' ``requires_grad`` flags are restored, and the module's state dict is what it was.

The file is written by diffusers' ``save_lora_weights`` (``unet.*`` PEFT keys, text encoder keys converted to
diffusers' spelling, each component's LoRA config, alpha included, in the ``lora_adapter_metadata``), the layout
``core.LoraLoader`` and diffusers' ``load_lora_weights`` read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
TRAINING_METADATA_KEY = "nodegraph.training"


class TargetError(ValueError):
    """The target module names match nothing trainable in the module."""


def lora_config(rank: int, alpha: float, targets: tuple[str, ...]) -> Any:
    from peft import LoraConfig

    # gaussian: lora_A random, lora_B zero, so training starts exactly at the base model
    return LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets),
                      lora_dropout=0.0)


def _tuner_layers(module: torch.nn.Module) -> list[tuple[str, Any]]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, sub) for name, sub in module.named_modules() if isinstance(sub, BaseTunerLayer)]


def _remove_adapter(module: torch.nn.Module, adapter_name: str) -> None:
    for name, layer in _tuner_layers(module):
        if adapter_name in layer.lora_A:
            layer.delete_adapter(adapter_name)
        if not layer.lora_A:  # the layer has no adapter left: put the original layer back
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, layer.get_base_layer())


@contextlib.contextmanager
def trainable_lora(module: torch.nn.Module, config: Any, adapter_name: str, seed: int) -> Iterator[list[torch.nn.Parameter]]:
    """Inject a fresh LoRA adapter into ``module``; yield its parameters (float32, requiring grad); remove it
    on exit. The random initialisation is drawn from ``seed`` and leaves the global RNG as it was."""
    from peft import inject_adapter_in_model

    flags = {name: p.requires_grad for name, p in module.named_parameters()}
    previous_config = vars(module).get("peft_config")
    if previous_config is not None:
        del module.peft_config  # peft would take it for another adapter of its own; restored below
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                inject_adapter_in_model(config, module, adapter_name=adapter_name)
            except ValueError as exc:  # "Target modules {...} not found in the base model", unsupported layer types
                raise TargetError(str(exc).split("\n")[0]) from None
        params = [p for name, p in module.named_parameters() if f".{adapter_name}." in f".{name}."]
        if not params:
            raise TargetError(f"the target modules {sorted(config.target_modules)} matched no layer")
        for p in params:
            p.data = p.data.float()
            p.requires_grad_(True)
        yield params
    finally:
        _remove_adapter(module, adapter_name)
        if "peft_config" in vars(module):
            del module.peft_config
        if previous_config is not None:
            module.peft_config = previous_config
        for name, p in module.named_parameters():
            if name in flags:
                p.requires_grad_(flags[name])


def adapter_state(module: torch.nn.Module, adapter_name: str) -> dict[str, torch.Tensor]:
    """The adapter's weights as a PEFT state dict (``<module>.lora_A.weight`` / ``lora_B.weight``), detached
    float32 copies on the CPU."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(module, adapter_name=adapter_name)
    return {k: v.detach().to("cpu", torch.float32).clone().contiguous() for k, v in state.items()}


@dataclass
class TrainedLora:
    """What a training run produced: per component, the PEFT state dict and its LoraConfig."""

    family: str
    unet: tuple[dict[str, torch.Tensor], Any]
    text_encoders: tuple[tuple[dict[str, torch.Tensor], Any], ...] = ()  # in the CLIP's encoder order

    def nbytes(self) -> int:
        parts = [self.unet, *self.text_encoders]
        return sum(t.numel() * t.element_size() for state, _ in parts for t in state.values())


def save_lora(trained: TrainedLora, path: Path, info: dict[str, Any] | None = None) -> Path:
    """Write ``trained`` to ``path`` (a .safetensors file, replaced atomically) with diffusers' writer and
    the adapter metadata; ``info`` (steps done, prompts, ...) goes into the file's metadata as JSON."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from safetensors import safe_open
    from safetensors.torch import save_file

    from nodes.sd.families import FAMILIES

    unet_state, unet_config = trained.unet
    kwargs: dict[str, Any] = {"unet_lora_layers": unet_state, "unet_lora_adapter_metadata": unet_config.to_dict()}
    names = FAMILIES[trained.family].text_encoders if trained.family in FAMILIES else ("text_encoder",)
    for name, (state, config) in zip(names, trained.text_encoders):
        kwargs[f"{name}_lora_layers"] = convert_state_dict_to_diffusers(state)
        kwargs[f"{name}_lora_adapter_metadata"] = config.to_dict()
    writer = StableDiffusionPipeline if trained.family == "sd15" else StableDiffusionXLPipeline
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tmp_lora_"))
    try:
        writer.save_lora_weights(str(scratch), weight_name="lora.safetensors", **kwargs)
        written = scratch / "lora.safetensors"
        if info:  # add our metadata next to diffusers' own (the tensors are small: a rewrite costs nothing)
            with safe_open(str(written), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            metadata[TRAINING_METADATA_KEY] = json.dumps(info, sort_keys=True)
            save_file(tensors, str(written), metadata=metadata)
        from nodegraph.atomic_files import new_file_mode

        os.chmod(written, new_file_mode())  # the usual permissions of a new file (the temporary one is private)
        os.replace(written, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path
