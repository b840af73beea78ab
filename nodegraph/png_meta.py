"""Workflows embedded in PNG files: a ``nodegraph.workflow`` text chunk holds the JSON document."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from nodegraph.errors import Problem, WorkflowError

WORKFLOW_KEY = "nodegraph.workflow"
IMAGE_KEY = "nodegraph.image"  # which image of a batch a file is: {"node", "batch_index", "batch_size", "seeds"}


def png_text_chunks(data: bytes) -> dict[str, str]:
    """The tEXt/zTXt/iTXt chunks of a PNG, read without Pillow so the engine stays light."""
    chunks: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        try:
            if kind == b"tEXt":
                key, _, value = body.partition(b"\0")
                chunks[key.decode("latin-1")] = value.decode("latin-1")
            elif kind == b"zTXt":
                key, _, rest = body.partition(b"\0")
                chunks[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\0")
                compressed, _method = rest[0], rest[1]
                _lang, _, rest = rest[2:].partition(b"\0")
                _translated, _, text = rest.partition(b"\0")
                chunks[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
        except (zlib.error, UnicodeDecodeError, IndexError):
            continue
        if kind == b"IEND":
            break
    return chunks


def workflow_from_png(data: bytes, path: Path | str = "<png>") -> Any:
    text = png_text_chunks(data).get(WORKFLOW_KEY)
    if text is None:
        raise WorkflowError([Problem("no_workflow_in_png", f"{path} carries no nodegraph workflow", expected=f"a {WORKFLOW_KEY!r} text chunk", found="none")])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError([Problem("bad_json", f"the workflow in {path} is not valid JSON: {exc}")]) from None


def image_record(data: bytes) -> dict[str, Any] | None:
    """The ``nodegraph.image`` record of a PNG saved by Save Image (None for other files or a damaged record)."""
    text = png_text_chunks(data).get(IMAGE_KEY)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("node"), str):
        return None
    index, size = record.get("batch_index"), record.get("batch_size")
    if not (isinstance(index, int) and isinstance(size, int) and 0 <= index < size):
        return None
    return record


def add_text_chunks(png: bytes, chunks: dict[str, str]) -> bytes:
    """``png`` with compressed UTF-8 text chunks (iTXt) added before its image data (for images written by
    other code, such as the editor's Save As, that should carry their workflow too)."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG file")
    (length,) = struct.unpack(">I", png[8:12])
    end_of_header = 8 + 12 + length  # the signature, then the IHDR chunk
    extra = b""
    for key, value in chunks.items():
        body = key.encode("latin-1") + b"\0" + b"\1\0" + b"\0" + b"\0" + zlib.compress(value.encode("utf-8"))
        extra += struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body) & 0xFFFFFFFF)
    return png[:end_of_header] + extra + png[end_of_header:]
