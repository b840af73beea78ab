"""Workflows embedded in PNG files: a ``nodegraph.workflow`` text chunk holds the JSON document."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from nodegraph.errors import Problem, WorkflowError

WORKFLOW_KEY = "nodegraph.workflow"


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
