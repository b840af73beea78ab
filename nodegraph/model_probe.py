"""What a model file or folder holds, told from its config or its safetensors header (no torch, nothing
loaded), so that a loader's list offers only what it can load: ComfyUI's ``controlnet`` folder holds both
ControlNets and T2I-Adapters, and a ControlNet offered (and "loaded" with random weights) as a T2I-Adapter is a
silent failure.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

HEADER_MAX = 64 << 20  # a safetensors header past this is not one
# kind -> (classes its diffusers folders declare, key fragments its single files hold)
KINDS = {
    "controlnet": (("ControlNetModel", "ControlNetUnionModel"),
                   ("input_hint_block.", "controlnet_cond_embedding.", "control_model.")),
    "t2i_adapter": (("T2IAdapter", "MultiAdapter"), ("adapter.body.", "body.0.block1.")),
}


def folder_class(path: Path) -> str | None:
    """``_class_name`` of a diffusers folder's config.json, or None."""
    config = path / "config.json"
    try:
        if not config.is_file() or config.stat().st_size > 1 << 20:
            return None
        value = json.loads(config.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def safetensors_keys(path: Path) -> list[str] | None:
    """The tensor names in a .safetensors header, or None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > HEADER_MAX:
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return None
    return [k for k in header if k != "__metadata__"] if isinstance(header, dict) else None


def probe(path: Path) -> str | None:
    """"controlnet", "t2i_adapter", or None when the file or folder is neither (or cannot be told)."""
    if path.is_dir():
        cls = folder_class(path)
        return next((kind for kind, (classes, _) in KINDS.items() if cls in classes), None)
    if path.suffix.lower() != ".safetensors":
        return None  # a pickle cannot be inspected without unpickling it
    keys = safetensors_keys(path) or []
    for kind, (_, fragments) in KINDS.items():
        if any(any(k.startswith(f) or f".{f}" in k for f in fragments) for k in keys):
            return kind
    return None


def offered_as(kind: str, path: Path) -> bool:
    """May ``path`` be offered for ``kind``? Only what is certainly another control kind is left out."""
    if kind not in KINDS:
        return True
    found = probe(path)
    return found is None or found == kind
