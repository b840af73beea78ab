"""One-line descriptions of values for logs and failure reports: shapes, dtypes and devices, never the numbers.

A LATENT is ``{samples: Tensor[4, 4, 8, 8] float32 cpu}``, a MODEL handle ``ModelHandle(family='sd15',
unet=UNet2DConditionModel 3.2M params)``, a list of images ``list[2]: Tensor[1, 64, 64, 3] float32 cpu, ...``.
Nothing here imports torch or numpy: values are recognised by their attributes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

LIMIT = 160  # characters of one summary
ITEMS = 4  # members of a dict, list or dataclass shown before "..."


def summarize(value: Any, limit: int = LIMIT) -> str:
    """A short, one-line description of ``value``. Never raises: the value may be hostile (a plugin's object
    with a broken ``__repr__``, a number too long to print)."""
    try:
        text = _describe(value, depth=0)
    except Exception as exc:
        text = f"{type(value).__name__} (not printable: {type(exc).__name__})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any, depth: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"int of about {int(value.bit_length() * 0.30103) + 1} digits"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...") + f" ({len(value)} characters)"
    array = _array(value)
    if array is not None:
        return array
    if depth >= 2:
        return f"{type(value).__name__}[{len(value)}]" if isinstance(value, (list, tuple, dict)) else _type_name(value)
    if isinstance(value, dict):
        items = [f"{k}: {_describe(v, depth + 1)}" for k, v in list(value.items())[:ITEMS]]
        more = ", ..." if len(value) > ITEMS else ""
        return "{" + ", ".join(items) + more + "}"
    if isinstance(value, (list, tuple)):
        items = [_describe(v, depth + 1) for v in value[:ITEMS]]
        more = ", ..." if len(value) > ITEMS else ""
        return f"{type(value).__name__}[{len(value)}]: " + ", ".join(items) + more if value else f"{type(value).__name__}[0]"
    module = _module(value)
    if module is not None:
        return module
    if hasattr(value, "size") and hasattr(value, "mode") and hasattr(value, "getpixel"):  # a PIL image
        return f"PIL.Image {value.size[0]}x{value.size[1]} {value.mode}"
    try:
        text = repr(value)  # a short repr of its own says it best (a plugin's Palette(#aa0000, ...))
    except Exception:
        text = ""
    if text and "\n" not in text and len(text) <= 100:
        return text
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = []
        for f in dataclasses.fields(value)[: ITEMS + 1]:
            if f.repr:
                parts.append(f"{f.name}={_describe(getattr(value, f.name, None), depth + 1)}")
        return f"{type(value).__name__}({', '.join(parts)})"
    return _type_name(value)


def _array(value: Any) -> str | None:
    """Tensors and arrays: their type, shape, dtype and (for tensors) device."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None or isinstance(value, type):
        return None
    try:
        dims = ", ".join(str(int(d)) for d in shape)
    except (TypeError, ValueError):
        return None
    name = "Tensor" if hasattr(value, "device") and hasattr(value, "detach") else type(value).__name__
    device = getattr(value, "device", "")
    dtype_text = str(dtype).removeprefix("torch.")
    return f"{name}[{dims}] {dtype_text} {device}".strip()


def _module(value: Any) -> str | None:
    """A torch module: its class and parameter count (not its printed layer tree)."""
    parameters = getattr(value, "parameters", None)
    if not callable(parameters) or not hasattr(value, "named_modules"):
        return None
    try:
        count = sum(int(p.numel()) for p in parameters())
    except Exception:  # a module-like object that is not one
        return None
    return f"{type(value).__name__} {count / 1e6:.1f}M params"


def _type_name(value: Any) -> str:
    return f"<{type(value).__name__}>"
