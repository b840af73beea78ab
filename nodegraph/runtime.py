"""Runtime policy, in one place: which device computes, in which dtype, and which models stay resident.

Nothing here imports torch until a node asks for a device or a dtype, so the engine stays light.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
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


# Below this size a model's matrix products are too small to split: a second CPU thread only adds hand-offs,
# which cost 15x on a 2-core machine whose other core is busy (measured on the demo model: 7.0 s -> 0.46 s).
SMALL_MODEL_BYTES = 64 * 2**20


@contextlib.contextmanager
def cpu_threads_for(device: str, model_bytes: int) -> Iterator[None]:
    """Compute a small model on one CPU thread; larger ones (and GPUs) keep torch's setting."""
    if not device.startswith("cpu") or model_bytes >= SMALL_MODEL_BYTES:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def module_nbytes(module: Any) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) + sum(
        b.numel() * b.element_size() for b in module.buffers()
    )


def _move_module(module: Any, device: str) -> None:
    module.to(device)


@dataclass
class Residency:
    """Which models sit on the compute device. The contract for nodes: before computing with a module
    (a UNet, a text encoder, a VAE), call ``module = ctx.runtime.residency.load(module)``; it returns the
    same module, now on ``device``. Loaders leave modules on the CPU; nobody else moves them.

    Modules stay on the device while their sizes add up to at most ``budget_bytes`` (None: no limit); when
    the next one would not fit, the least recently loaded are moved back to the CPU first. A module on its
    own larger than the budget is still loaded, after everything else was offloaded. Moving changes only
    where a shared module's tensors live, never their values, so handles that share it stay valid.
    Entries are weak: a module that nothing else references any more (its cache entry was evicted) is
    forgotten, and its device memory goes with it. ``move(module, device)`` is injectable so that the
    policy can be tested against a simulated budget on a machine without a GPU.
    """

    device: str
    budget_bytes: int | None = None
    move: Callable[[Any, str], None] = _move_module
    _resident: OrderedDict[int, tuple[weakref.ref, int]] = field(default_factory=OrderedDict)

    @property
    def resident_bytes(self) -> int:
        return sum(size for _, size in self._resident.values())

    @property
    def on_device(self) -> bool:
        return not self.device.startswith("cpu")

    def is_resident(self, module: Any) -> bool:
        entry = self._resident.get(id(module))
        return entry is not None and entry[0]() is module

    def resident(self) -> list[Any]:
        """The resident modules, least recently loaded first."""
        return [m for m in (ref() for ref, _ in self._resident.values()) if m is not None]

    def load(self, module: Any, nbytes: int | None = None) -> Any:
        """Make ``module`` resident on the device, offloading others first if the budget needs it."""
        key = id(module)
        if self.is_resident(module):
            self._resident.move_to_end(key)
            return module
        self._resident.pop(key, None)  # a dead module's id reused by a new one
        size = module_nbytes(module) if nbytes is None else nbytes
        if self.budget_bytes is not None:
            while self._resident and self.resident_bytes + size > self.budget_bytes:
                _, (victim, _) = self._resident.popitem(last=False)
                self._move(victim(), "cpu")
        self._move(module, self.device)
        self._resident[key] = (weakref.ref(module, lambda _ref, key=key: self._forget(key, _ref)), size)
        return module

    def offload(self, module: Any) -> None:
        """Move one module back to the CPU (if it was resident)."""
        if self.is_resident(module):
            del self._resident[id(module)]
            self._move(module, "cpu")

    def offload_all(self) -> None:
        while self._resident:
            _, (victim, _) = self._resident.popitem(last=False)
            self._move(victim(), "cpu")

    def _move(self, module: Any, device: str) -> None:
        if module is not None and self.on_device:
            self.move(module, device)

    def _forget(self, key: int, ref: weakref.ref) -> None:
        entry = self._resident.get(key)
        if entry is not None and entry[0] is ref:
            del self._resident[key]


class Runtime:
    """Device, dtype and residency for one process. Created cheaply; resolves the device on first use."""

    def __init__(
        self,
        device: str | None = None,
        precision: str = "auto",
        budget_bytes: int | None = None,
        move: Callable[[Any, str], None] | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, found {precision!r}")
        self._requested_device = device
        self.precision = precision
        self._budget = budget_bytes
        self._device: str | None = None
        self._residency: Residency | None = None
        self._move = move

    @property
    def requested_device(self) -> str | None:
        """The device asked for (None: pick the best), without resolving it (which would import torch)."""
        return self._requested_device

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
            self._residency = Residency(self.device, budget, self._move or _move_module)
        return self._residency
