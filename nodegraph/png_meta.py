"""Workflows embedded in PNG files: a ``nodegraph.workflow`` text chunk holds the JSON document.

Chunks are read without Pillow, so the engine stays light, and within bounds: image data is skipped, not read;
a compressed text chunk is inflated only up to the ``png_text_bytes`` limit (a 4 MB chunk can inflate to
gigabytes), and a chunk that claims more bytes than the file holds ends the scan.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import nodegraph.limits as limits
from nodegraph.errors import Problem, WorkflowError

WORKFLOW_KEY = "nodegraph.workflow"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_KINDS = (b"tEXt", b"zTXt", b"iTXt")


def _inflate(data: bytes, where: str) -> bytes:
    """zlib-decompress ``data``, stopping (with :class:`~nodegraph.limits.LimitExceeded`) past the limit."""
    limit = limits.get("png_text_bytes")
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise limits.LimitExceeded(f"{where} inflates to more than {limit} bytes", "png_text_bytes", len(out))
    return out


def _text_chunk(kind: bytes, body: bytes, where: str) -> tuple[str, str]:
    key, _, rest = body.partition(b"\0")
    name = key.decode("latin-1")
    if kind == b"tEXt":
        return name, rest.decode("latin-1")
    if kind == b"zTXt":
        return name, _inflate(rest[1:], f"{where}: text chunk {name!r}").decode("latin-1")
    compressed = rest[0]
    _lang, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    raw = _inflate(text, f"{where}: text chunk {name!r}") if compressed else text
    return name, raw.decode("utf-8")


def read_text_chunks(stream: BinaryIO, where: str = "the PNG", keys: set[str] | None = None) -> dict[str, str]:
    """The tEXt/zTXt/iTXt chunks of a PNG stream (only ``keys`` when given), skipping image data.

    Damaged chunks are skipped; a text chunk that inflates past the ``png_text_bytes`` limit raises
    :class:`~nodegraph.limits.LimitExceeded` (a memory bomb is an error, not an absent workflow)."""
    chunks: dict[str, str] = {}
    if stream.read(8) != PNG_SIGNATURE:
        return chunks
    while True:
        header = stream.read(8)
        if len(header) < 8:
            break
        (length,) = struct.unpack(">I", header[:4])
        kind = header[4:8]
        if kind in _TEXT_KINDS:
            limits.check(f"{where}: a text chunk", "png_text_bytes", length)
            body = stream.read(length)
            stream.seek(4, io.SEEK_CUR)  # CRC
            if len(body) < length:
                break
            name = body.partition(b"\0")[0].decode("latin-1")
            if keys is not None and name not in keys:
                continue
            try:
                name, text = _text_chunk(kind, body, where)
            except (zlib.error, UnicodeDecodeError, IndexError):
                continue
            chunks[name] = text
        elif kind == b"IEND":
            break
        else:
            stream.seek(length + 4, io.SEEK_CUR)  # image data and its CRC: never read
    return chunks


def png_text_chunks(data: bytes) -> dict[str, str]:
    """The text chunks of a PNG held in memory (see :func:`read_text_chunks`)."""
    return read_text_chunks(io.BytesIO(data))


def workflow_text(path: Path) -> str | None:
    """The embedded workflow's JSON text of a PNG file, or None if it has none."""
    with open(path, "rb") as stream:
        return read_text_chunks(stream, str(path), {WORKFLOW_KEY}).get(WORKFLOW_KEY)


def workflow_from_png(data: bytes, path: Path | str = "<png>") -> Any:
    """The embedded workflow document of a PNG held in memory."""
    from nodegraph.safe_json import JsonInputError, parse_json

    try:
        text = read_text_chunks(io.BytesIO(data), str(path), {WORKFLOW_KEY}).get(WORKFLOW_KEY)
    except limits.LimitExceeded as exc:
        raise WorkflowError([Problem("limit_exceeded", str(exc), expected="a smaller embedded workflow", found=str(path))]) from None
    if text is None:
        raise WorkflowError([Problem("no_workflow_in_png", f"{path} carries no nodegraph workflow", expected=f"a {WORKFLOW_KEY!r} text chunk", found="none")])
    try:
        return parse_json(text, f"the workflow in {path}").value
    except JsonInputError as exc:
        raise WorkflowError([Problem("bad_json", str(exc))]) from None
