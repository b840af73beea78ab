"""ComfyUI's LoRA arithmetic: the low-rank update merged into the weights, rounded to the dtype ComfyUI
keeps them in.

Per adapted weight W: ``W' = float32(W) + (strength * alpha / rank) * (up @ down)`` computed in float32,
then stored in the dtype ComfyUI holds that model in: its text encoders always in fp16 (so a patched CLIP
weight is rounded to fp16, which moves images by up to 0.1 of an 8-bit level), the UNet in the module's own
dtype. The product's own LoRA loader instead adds ``B(A(x))`` at run time through peft's layers, as
diffusers does; both agree up to that rounding.

The patch follows the product's patch protocol (``applied(module)`` is a context manager): the shared
module's weights are replaced for the block and put back afterwards, so a cached MODEL or CLIP is never
left changed (DESIGN contract 3).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from nodes.adapters.lora import LoraWeights


@dataclass(frozen=True, eq=False)
class MergePart:
    """The LoRA weights for one module object at one strength; ``store_dtype`` is what W' is rounded to."""

    module: Any
    weights: dict[str, LoraWeights]  # module name inside ``module`` -> weights
    strength: float
    store_dtype: torch.dtype | None = None

    def cache_nbytes(self) -> int:
        return sum(w.down.numel() * w.down.element_size() + w.up.numel() * w.up.element_size() for w in self.weights.values())


def merged_weight(weight: torch.Tensor, lora: LoraWeights, strength: float, store_dtype: torch.dtype | None) -> torch.Tensor:
    """``weight`` with the LoRA merged in, ComfyUI's way (see the module docstring), in ``weight``'s dtype."""
    base = weight.detach().to(torch.float32).clone()
    up = lora.up.to(device=base.device, dtype=torch.float32)
    down = lora.down.to(device=base.device, dtype=torch.float32)
    diff = torch.mm(up.flatten(start_dim=1), down.flatten(start_dim=1)).reshape(base.shape)
    alpha = lora.alpha / lora.rank if lora.alpha is not None else 1.0
    base += ((strength * alpha) * diff).type(base.dtype)
    if store_dtype is not None:
        base = base.to(store_dtype)
    return base.to(weight.dtype)


@dataclass(frozen=True, eq=False)
class MergedLoraPatch:
    """A LoRA merged into the weights while a module runs (the product's patch protocol)."""

    label: str
    parts: tuple[MergePart, ...]

    @contextlib.contextmanager
    def applied(self, module: Any) -> Iterator[Any]:
        part = next((p for p in self.parts if p.module is module), None)
        if part is None or part.strength == 0.0:
            yield module
            return
        modules = dict(module.named_modules())
        saved: list[tuple[torch.Tensor, torch.Tensor]] = []
        try:
            with torch.no_grad():
                for name, lora in part.weights.items():
                    weight = modules[name].weight
                    saved.append((weight, weight.detach().clone()))
                    weight.copy_(merged_weight(weight, lora, part.strength, part.store_dtype))
            yield module
        finally:
            with torch.no_grad():
                for weight, original in reversed(saved):
                    weight.copy_(original)

    def cache_nbytes(self) -> int:
        return sum(p.cache_nbytes() for p in self.parts)
