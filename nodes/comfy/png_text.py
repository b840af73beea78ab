"""Adding a text chunk to a PNG the product just wrote: ComfyUI's ``prompt`` (its API format), so that
ComfyUI itself can open an image saved by an imported workflow."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from nodegraph.workflow import atomic_write_bytes

IEND = b"IEND"


def with_text_chunk(data: bytes, key: str, text: str) -> bytes:
    """``data`` (a PNG) with a tEXt chunk ``key`` inserted before its end chunk."""
    body = key.encode("latin-1") + b"\0" + text.encode("latin-1", errors="replace")
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body) & 0xFFFFFFFF)
    end = data.rfind(IEND) - 4  # the end chunk's length field
    if end < 8:
        raise ValueError("not a complete PNG")
    return data[:end] + chunk + data[end:]


def add_comfy_prompt(paths: list[Path], workflow: dict[str, Any] | None, log: Any) -> None:
    """Write ComfyUI's API prompt of ``workflow`` into each PNG (skipped, with a note, when it has none)."""
    if not isinstance(workflow, dict):
        return
    from nodegraph.comfy import export_api_prompt
    from nodegraph.errors import WorkflowError
    from nodegraph.installed import default_registry
    from nodegraph.workflow import parse_workflow

    registry = default_registry()
    try:
        prompt = export_api_prompt(parse_workflow(workflow, registry), registry)
    except WorkflowError as exc:
        log(f"no ComfyUI prompt in the PNG: {exc.problems[0]}")
        return
    # ComfyUI writes its chunks as Latin-1 tEXt; JSON with ensure_ascii keeps any prompt text intact
    text = json.dumps(prompt)
    for path in paths:
        atomic_write_bytes(path, with_text_chunk(path.read_bytes(), "prompt", text))
