"""ComfyUI graphs inside files: JSON text, the ``prompt``/``workflow`` text chunks of a PNG, and the EXIF
strings of a WebP (ComfyUI writes ``workflow:{...}`` into the Make tag and ``prompt:{...}`` into Model).

Read without Pillow so that the engine stays light; only the metadata is parsed, never the pixels.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from nodegraph.png_meta import png_text_chunks

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def webp_exif_strings(data: bytes) -> dict[str, str]:
    """``{"workflow": text, "prompt": text}`` from a WebP's EXIF chunk (empty when there is none)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return {}
    pos = 12
    found: dict[str, str] = {}
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
        if kind == b"EXIF":
            found.update(tiff_strings(body[6:] if body.startswith(b"Exif\0\0") else body))
    return found


def tiff_strings(tiff: bytes) -> dict[str, str]:
    """The ASCII values of IFD0 that look like ``key:json`` (how ComfyUI stores its graphs)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return {}
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(order + "I", tiff[4:8])
        (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    except struct.error:
        return {}
    out: dict[str, str] = {}
    for i in range(min(count, 512)):
        entry = tiff[offset + 2 + 12 * i : offset + 14 + 12 * i]
        if len(entry) < 12:
            break
        _tag, kind, length, value = struct.unpack(order + "HHII", entry)
        if kind not in (2, 7):  # ASCII or UNDEFINED bytes
            continue
        raw = entry[8 : 8 + length] if length <= 4 else tiff[value : value + length]
        text = raw.rstrip(b"\0").decode("utf-8", errors="replace")
        key, sep, rest = text.partition(":")
        if sep and key in ("workflow", "prompt"):
            out[key] = rest
    return out


def embedded_texts(data: bytes) -> tuple[str, dict[str, str]] | None:
    """``(container, {"prompt": ..., "workflow": ...})`` for a PNG or WebP, None for anything else."""
    if data.startswith(PNG_SIGNATURE):
        chunks = png_text_chunks(data)
        return "png", {k: chunks[k] for k in ("prompt", "workflow") if k in chunks}
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", webp_exif_strings(data)
    return None


def parse_json_text(text: str) -> Any:
    """JSON as ComfyUI writes it (Python's json module: NaN and Infinity may appear)."""
    return json.loads(text)
