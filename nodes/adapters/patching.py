"""Putting a LoRA into a shared module for one block of code, and taking it out again (DESIGN contract 3).

The layers are peft's own LoRA layers (``inject_adapter_in_model`` + ``set_peft_model_state_dict``, as
diffusers' ``load_lora_weights`` uses them), so a patched forward is computed exactly as diffusers computes
it: ``base(x) + lora_B(lora_A(x)) * strength * alpha / rank``. Several patches nest: each injects its own
adapter name, every adapter present in a layer is active, and on exit each removes its adapter; a layer
left without adapters is replaced by its original base layer, so the module ends as it began (same
submodule objects, same state-dict keys, no ``peft_config`` attribute unless it had one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from nodes.adapters.lora_weights import LoraPart


def _prepared_state(module: torch.nn.Module, part: LoraPart) -> dict[str, torch.Tensor]:
    """The part's peft state dict on each target layer's device and in its dtype."""
    modules = dict(module.named_modules())
    out: dict[str, torch.Tensor] = {}
    for key, tensor in part.peft_state_dict().items():
        base = modules[key.rsplit(".lora_", 1)[0]].weight
        out[key] = tensor.to(device=base.device, dtype=base.dtype)
    return out


@contextlib.contextmanager
def lora_applied(module: Any, part: LoraPart | None, adapter_name: str) -> Iterator[Any]:
    """``module`` with ``part``'s LoRA active for the block (a no-op without a part or at strength 0)."""
    if part is None or part.strength == 0.0 or not part.weights:
        yield module
        return
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    previous_config = getattr(module, "peft_config", None)
    state = _prepared_state(module, part)
    config = part.peft_config()
    if previous_config is not None:  # peft would warn about it; the merged dict is put back below
        del module.peft_config
    try:
        # low_cpu_mem_usage: layers are created on the meta device and then take the file's tensors, so no
        # random initialisation runs (it would also consume the global RNG)
        inject_adapter_in_model(config, module, adapter_name=adapter_name, low_cpu_mem_usage=True)
        result = set_peft_model_state_dict(module, state, adapter_name=adapter_name, low_cpu_mem_usage=True)
        missing = [k for k in getattr(result, "missing_keys", ()) if adapter_name in k]
        if missing:
            raise RuntimeError(f"peft did not load {len(missing)} LoRA tensors, e.g. {missing[:2]}")
        module.peft_config = {**(previous_config or {}), adapter_name: config}
        _activate(module, adapter_name, part.strength)
        yield module
    finally:
        _remove(module, adapter_name)
        if previous_config is None:
            if "peft_config" in vars(module):
                del module.peft_config
        else:
            module.peft_config = previous_config


def _lora_layers(module: torch.nn.Module) -> Iterator[tuple[str, Any]]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, sub in list(module.named_modules()):
        if isinstance(sub, BaseTunerLayer):
            yield name, sub


def _activate(module: torch.nn.Module, adapter_name: str, strength: float) -> None:
    """Every adapter present in a layer takes part (stacked LoRAs add up, as diffusers' ``set_adapters``
    with several names); this one at ``strength``."""
    for _, layer in _lora_layers(module):
        if adapter_name in layer.lora_A:
            # inference_mode=False leaves requires_grad on the LoRA weights, as diffusers' set_adapters does: no
            # gradient is ever taken (the sampler runs under inference mode), but torch's matmul folds 3-D inputs
            # differently for weights that require grad, and parity with diffusers is bit-exact only this way
            layer.set_adapter(list(layer.lora_A.keys()), inference_mode=False)
            layer.set_scale(adapter_name, strength)


def _remove(module: torch.nn.Module, adapter_name: str) -> None:
    for name, layer in _lora_layers(module):
        if adapter_name in layer.lora_A or adapter_name in getattr(layer, "lora_B", {}):
            layer.delete_adapter(adapter_name)
        if not layer.lora_A:  # no adapters left: put the original layer back
            parent_name, _, child = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, child, layer.get_base_layer())
