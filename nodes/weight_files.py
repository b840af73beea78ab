"""Reading weight files without trusting them: the one loader behind the checkpoint, LoRA, ControlNet and
T2I-Adapter loaders (:func:`read_weights`; the checkpoint loader reads safetensors lazily itself).

A ``.safetensors`` file cannot run code or inflate (its header fixes every tensor's bytes); a damaged one is
a clear :class:`WeightsFileError`, not safetensors' own exception. Pickled files (.ckpt, .pt, .pth, .bin)
are the dangerous kind.

``torch.load(weights_only=True)`` runs no code, but what it returns is still hostile:

- a structure that contains itself (``d["state_dict"] is d``) or nests without end: it is walked without
  recursion, each container once, within the ``pickle_depth`` and ``pickle_items`` limits;
- tensors that declare far more elements than their storage holds (a stride of 0 over a few bytes): copying
  them (a dtype change, ``.contiguous()``) would inflate a 2 MB file to gigabytes. Their full sizes together may
  not pass ``pickle_expansion`` times the file's size (plus 16 MiB).

What comes back is a flat ``{name: tensor}`` dict: the innermost ``state_dict`` (Lightning and A1111 files nest
it), without the non-tensor entries.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import nodegraph.limits as limits

MARGIN_BYTES = 16 << 20  # small files may legitimately hold small tensors sharing one storage


class WeightsFileError(ValueError):
    """The file is not plain weights within the limits; the message names the file and what is wrong."""



def read_weights(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """({name: tensor}, metadata) of a .safetensors file (its string metadata) or a pickled one (no metadata)."""
    if path.suffix.lower() != ".safetensors":
        tensors, _ = load_pickled_weights(path)
        return tensors, {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            return {k: handle.get_tensor(k) for k in handle.keys()}, metadata
    except PermissionError:
        raise WeightsFileError(f"{path.name} cannot be read: permission denied (check its permissions)") from None
    except Exception as exc:  # safetensors raises its own error type (not an OSError) for a damaged file
        raise WeightsFileError(
            f"{path.name} is not a readable safetensors file (truncated or corrupted?): {type(exc).__name__}: "
            f"{(str(exc).splitlines() or [''])[0]}") from None


def _walk(data: Any, name: str) -> None:
    """Visit every container once (iteratively), refusing cycles, depth and item counts past the limits."""
    depth_limit, item_limit = limits.get("pickle_depth"), limits.get("pickle_items")
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(data, 1)]
    items = 0
    while stack:
        value, depth = stack.pop()
        if not isinstance(value, (dict, list, tuple)):
            continue
        if id(value) in seen:
            if isinstance(value, (dict, list)):
                raise WeightsFileError(f"{name} holds a container that contains itself (a forged file)")
            continue  # a shared tuple is harmless
        seen.add(id(value))
        if depth > depth_limit:
            raise limits.LimitExceeded(f"{name} nests containers too deeply", "pickle_depth", depth)
        children = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        items += len(children)
        if items > item_limit:
            raise limits.LimitExceeded(f"{name} holds too many entries", "pickle_items", items)
        stack.extend((child, depth + 1) for _, child in children)
        stack.extend((key, depth + 1) for key, _ in children if isinstance(key, tuple))


def _innermost_state_dict(data: Any) -> Any:
    """Lightning/A1111 files keep the weights under ``state_dict`` (sometimes twice); cycles were refused."""
    seen: set[int] = set()
    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict) and id(data) not in seen:
        seen.add(id(data))
        data = data["state_dict"]
    return data


def check_expansion(tensors: dict[str, Any], file_bytes: int, name: str) -> None:
    """Refuse tensors whose full sizes together exceed what the file could hold (views over a tiny storage)."""
    logical = sum(t.numel() * t.element_size() for t in tensors.values())
    allowed = limits.get("pickle_expansion") * file_bytes + MARGIN_BYTES
    if logical > allowed:
        raise limits.LimitExceeded(
            f"{name}: its {len(tensors)} tensors declare {logical} bytes in a file of {file_bytes} bytes (tensors "
            "viewing one small storage many times, or a forged file)", "pickle_expansion",
            f"{logical / max(file_bytes, 1):.1f}")


def load_pickled_weights(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """({name: tensor}, the other top-level entries) of a pickled weights file, checked as the module docstring
    says. Raises :class:`WeightsFileError` (or :class:`~nodegraph.limits.LimitExceeded`) with a message for the
    user; never runs code from the file."""
    import torch

    name = path.name
    try:
        size = path.stat().st_size
        try:
            # memory-mapped where the format allows: what is not used (an EMA copy) is never read
            data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            data = torch.load(str(path), map_location="cpu", weights_only=True)  # legacy tar format
    except pickle.UnpicklingError as exc:
        raise WeightsFileError(
            f"{name} holds more than plain weights, and pickled code is never run (weights_only=True): "
            f"{(str(exc).splitlines() or [''])[0]}. Convert it to .safetensors with a tool you trust.") from None
    except PermissionError:
        raise WeightsFileError(f"{name} cannot be read: permission denied (check its permissions)") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise WeightsFileError(f"{name} is not a readable PyTorch checkpoint: {type(exc).__name__}: {exc}") from None
    _walk(data, name)
    data = _innermost_state_dict(data)
    if not isinstance(data, dict):
        raise WeightsFileError(f"{name} does not hold a state dict (found {type(data).__name__})")
    tensors = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    others = {k: v for k, v in data.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))}
    check_expansion(tensors, size, name)
    return tensors, others
