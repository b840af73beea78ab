"""Runtime policy, in one place: which device computes, in which dtype, and which models stay resident.

Nothing here imports torch until a node asks for a device or a dtype, so the engine stays light.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def pick_device(preferred: str | None = None) -> str:
    """``preferred`` if given (or ``$NODEGRAPH_DEVICE``), else cuda, then mps, then cpu."""
    preferred = preferred or os.environ.get("NODEGRAPH_DEVICE") or None
    if preferred and preferred != "auto":
        return preferred
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype_name(device: str, precision: str = "auto") -> str:
    """fp16 on CUDA and MPS by default; fp32 on the CPU unless bf16 is asked for."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, found {precision!r}")
    if precision != "auto":
        return precision
    return "fp32" if device.startswith("cpu") else "fp16"


def torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]


def module_nbytes(module: Any) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) + sum(
        b.numel() * b.element_size() for b in module.buffers()
    )


@dataclass
class Residency:
    """Keeps models on the compute device while they fit in ``budget_bytes``; offloads the least recently
    used ones to the CPU when the next would not fit. ``move(module, device)`` is injectable so the policy
    can be tested against a simulated budget on a machine without a GPU."""

    device: str
    budget_bytes: int | None = None
    move: Callable[[Any, str], None] = field(default=lambda module, device: module.to(device))
    _resident: OrderedDict[int, tuple[Any, int]] = field(default_factory=OrderedDict)

    @property
    def resident_bytes(self) -> int:
        return sum(size for _, size in self._resident.values())

    def is_resident(self, module: Any) -> bool:
        return id(module) in self._resident

    def load(self, module: Any, nbytes: int | None = None) -> Any:
        """Make ``module`` resident on the device, offloading others first if the budget needs it."""
        key = id(module)
        if key in self._resident:
            self._resident.move_to_end(key)
            return module
        size = module_nbytes(module) if nbytes is None else nbytes
        if self.budget_bytes is not None:
            while self._resident and self.resident_bytes + size > self.budget_bytes:
                _, (victim, _) = self._resident.popitem(last=False)
                self.move(victim, "cpu")
        if not self.device.startswith("cpu"):
            self.move(module, self.device)
        self._resident[key] = (module, size)
        return module

    def offload_all(self) -> None:
        while self._resident:
            _, (victim, _) = self._resident.popitem(last=False)
            if not self.device.startswith("cpu"):
                self.move(victim, "cpu")


class Runtime:
    """Device, dtype and residency for one process. Created cheaply; resolves the device on first use."""

    def __init__(self, device: str | None = None, precision: str = "auto", budget_bytes: int | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, found {precision!r}")
        self._requested_device = device
        self.precision = precision
        self._budget = budget_bytes
        self._device: str | None = None
        self._residency: Residency | None = None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = pick_device(self._requested_device)
        return self._device

    @property
    def dtype_name(self) -> str:
        return pick_dtype_name(self.device, self.precision)

    @property
    def dtype(self) -> Any:
        return torch_dtype(self.dtype_name)

    @property
    def residency(self) -> Residency:
        if self._residency is None:
            budget = self._budget
            if budget is None and self.device.startswith("cuda"):
                import torch

                free, _total = torch.cuda.mem_get_info()
                budget = int(free * 0.8)
            self._residency = Residency(self.device, budget)
        return self._residency
