"""Engine events for the wire: a JSON object, plus the preview image (if the event carries one) as bytes.

The engine's events (:mod:`nodegraph.events`) may carry a preview on node progress: a PIL image, or
already-encoded bytes. Previews travel as JPEG (PNG for images with transparency), at most
``PREVIEW_MAX_SIDE`` pixels on a side, so that a websocket client on a slow link keeps up.
"""

from __future__ import annotations

import io
from typing import Any

PREVIEW_MAX_SIDE = 512
JPEG, PNG = "jpeg", "png"


def event_to_wire(event: Any) -> tuple[dict[str, Any], tuple[str, bytes] | None]:
    """``(json, (format, bytes) or None)`` for an engine event. Unknown fields pass through as JSON."""
    data = event.to_json() if hasattr(event, "to_json") else dict(event)
    preview = getattr(event, "preview", None)
    encoded = encode_preview(preview) if preview is not None else None
    if "preview" in data:
        data["preview"] = None  # the receiver puts a URL (or base64) here; bytes never go into JSON
    for key, value in list(data.items()):
        if not isinstance(value, (str, int, float, bool, type(None), list, dict, tuple)):
            data[key] = repr(value)
    return data, encoded


def encode_preview(preview: Any) -> tuple[str, bytes] | None:
    """A preview as ``(format, bytes)``: PIL images are encoded; bytes are sniffed; anything else is dropped."""
    if isinstance(preview, (bytes, bytearray)):
        data = bytes(preview)
        if data.startswith(b"\x89PNG"):
            return PNG, data
        if data.startswith(b"\xff\xd8"):
            return JPEG, data
        return None
    if not (hasattr(preview, "save") and hasattr(preview, "size") and hasattr(preview, "mode")):
        return None
    image = preview
    if max(image.size) > PREVIEW_MAX_SIDE:
        image = image.copy()
        image.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    buffer = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P"):
        image.save(buffer, format="PNG", compress_level=1)
        return PNG, buffer.getvalue()
    if image.mode != "RGB":
        image = image.convert("RGB")
    image.save(buffer, format="JPEG", quality=85)
    return JPEG, buffer.getvalue()
