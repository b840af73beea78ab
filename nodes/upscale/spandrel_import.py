"""Importing spandrel, which imports torchvision, when torchvision's compiled operators cannot load.

torchvision's compiled operators exist only for the torch build its wheel was made for. PyPI's Linux torchvision
wheels are CUDA builds; beside a CPU torch (installed from PyTorch's CPU index, or from a local wheel as on our
build machines) they cannot load, and then ``import torchvision`` stops with "operator torchvision::nms does not
exist": it registers fake kernels for ``nms`` and ``qnms`` without checking that the operators were loaded
(pytorch/vision issues 9085 and 9337; the guard proposed in pull request 9649 is not released). Every library
that imports torchvision then fails too, transformers' image processors (and so diffusers' pipelines) among them.

:func:`declare_missing_operators` declares those two operator schemas (without kernels: calling ``nms`` still
fails, with torchvision's own "not compiled" message) when torchvision's extension cannot be loaded, so that its
Python part imports. It runs as a ``torch.backends`` entry point (declared in pyproject.toml), which torch calls
at the end of ``import torch``, so it is in effect before anything imports torchvision; it does nothing when the
extension loads, when torchvision is not installed, or when it was already done, and it never raises.
:func:`import_spandrel` calls it too, for environments started with ``TORCH_DEVICE_BACKEND_AUTOLOAD=0``.
"""

from __future__ import annotations

from typing import Any

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library: Any = None  # kept alive: a torch.library.Library that is garbage-collected takes its definitions along


def _has_operator(torch: Any, name: str) -> bool:
    try:
        torch._C._get_schema(f"torchvision::{name}", "")
        return True
    except RuntimeError:
        return False


def _extension_loads(torch: Any) -> bool:
    """Whether torchvision's compiled extension loads (what torchvision itself tries first)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("torchvision")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        return True  # not installed: nothing to fix
    for folder in spec.submodule_search_locations:
        for library in sorted(Path(folder).glob("_C*")):
            if library.suffix in (".so", ".pyd", ".dylib"):
                try:
                    torch.ops.load_library(str(library))
                    return True
                except (OSError, RuntimeError):
                    return False
    return False


def declare_missing_operators() -> None:
    """Declare ``torchvision::nms`` / ``qnms`` when torchvision is installed but its extension cannot load."""
    global _library
    try:
        import torch

        if _library is not None or _has_operator(torch, "nms") or _extension_loads(torch):
            return
        _library = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _SCHEMAS:
            if not _has_operator(torch, schema.split("(", 1)[0]):
                _library.define(schema)
    except Exception:  # runs inside `import torch`: never break it
        return


def import_spandrel() -> Any:
    """The ``spandrel`` module (see the module docstring)."""
    declare_missing_operators()
    import spandrel

    return spandrel
