"""Opening a file that may be a nodegraph workflow or a ComfyUI one, decided by its content.

``run``, ``validate`` and the editor's Open and drop call :func:`load_any`: a nodegraph workflow (JSON, or a
PNG saved by nodegraph) loads as always; a ComfyUI workflow (API or UI JSON, or a PNG/WebP ComfyUI saved) is
imported and comes with its :class:`~nodegraph.comfy.report.ImportReport`.

A file is untrusted input, read as :mod:`nodegraph.workflow_input` reads workflows: it must be a regular file
(``/dev/zero`` or a FIFO would never end), images are scanned chunk by chunk without reading their pixels,
and texts and JSON stay within :mod:`nodegraph.limits`.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO

import nodegraph.limits as limits
from nodegraph.comfy.containers import tiff_strings
from nodegraph.comfy.load import ComfyImport, is_comfy_document, load_comfy, load_embedded
from nodegraph.comfy.report import ImportReport
from nodegraph.errors import Problem, WorkflowError
from nodegraph.graph import Graph
from nodegraph.png_meta import PNG_SIGNATURE, WORKFLOW_KEY, read_text_chunks
from nodegraph.registry import Registry
from nodegraph.workflow import FORMAT, parse_workflow

NODEGRAPH_HINT = "a nodegraph workflow (.json or a PNG saved by nodegraph) or a ComfyUI workflow (.json, .png, .webp)"
COMFY_KEYS = ("prompt", "workflow")


def _problem(code: str, message: str, path: Path, expected: str = NODEGRAPH_HINT) -> WorkflowError:
    return WorkflowError([Problem(code, message, expected=expected, found=str(path))])


def _webp_texts(stream: BinaryIO, where: str) -> dict[str, str]:
    """ComfyUI's ``workflow:``/``prompt:`` EXIF strings of a WebP stream; only the EXIF chunk is read."""
    stream.seek(12)
    found: dict[str, str] = {}
    while True:
        header = stream.read(8)
        if len(header) < 8:
            return found
        kind, (size,) = header[:4], struct.unpack("<I", header[4:])
        if kind != b"EXIF":
            stream.seek(size + (size & 1), io.SEEK_CUR)
            continue
        limits.check(f"{where}: its EXIF chunk", "workflow_bytes", size)
        body = stream.read(size)
        found.update(tiff_strings(body[6:] if body.startswith(b"Exif\0\0") else body))
        stream.seek(size & 1, io.SEEK_CUR)


def image_texts(path: Path) -> tuple[str, dict[str, str]] | None:
    """``(container, {key: text})`` of a PNG (its nodegraph and ComfyUI text chunks) or a WebP (ComfyUI's EXIF
    strings); None for any other file. Raises :class:`~nodegraph.limits.LimitExceeded` and :class:`OSError`."""
    with open(path, "rb") as stream:
        head = stream.read(12)
        stream.seek(0)
        if head.startswith(PNG_SIGNATURE):
            return "png", read_text_chunks(stream, str(path), {WORKFLOW_KEY, *COMFY_KEYS})
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return "webp", _webp_texts(stream, str(path))
    return None


def _open(path: Path) -> tuple[str, dict[str, str]] | None:
    """:func:`image_texts` of a file checked to be a regular, readable file, problems as :class:`WorkflowError`."""
    from nodegraph.paths import PathRefused, check_readable

    try:
        check_readable(path, "", "workflow file")
        return image_texts(path)
    except PathRefused as exc:
        raise _problem("unreadable", str(exc), path, "a readable workflow file (.json, .png or .webp)") from None
    except OSError as exc:
        raise _problem("unreadable", f"cannot read {path}: {exc.strerror or exc}", path, "a readable file") from None
    except limits.LimitExceeded as exc:
        raise _problem("limit_exceeded", str(exc), path, "a smaller embedded workflow") from None


def read_comfy(path: str | os.PathLike[str], registry: Registry) -> ComfyImport:
    """Import the ComfyUI workflow in ``path`` (JSON, PNG or WebP); a file that is not one is a WorkflowError."""
    from nodegraph.workflow_input import read_document

    path = Path(path)
    container = _open(path)
    if container is not None:
        kind, texts = container
        return load_embedded((kind, {k: v for k, v in texts.items() if k in COMFY_KEYS}), registry, str(path))
    return load_comfy(read_document(path)[0], registry, source=str(path))


def load_any(path: str | os.PathLike[str], registry: Registry) -> tuple[Graph, ImportReport | None]:
    """The graph in ``path`` and, for a ComfyUI file, the import report (None for a nodegraph workflow)."""
    from nodegraph.workflow import load_workflow
    from nodegraph.workflow_input import read_document

    path = Path(path)
    container = _open(path)
    if container is not None:
        kind, texts = container
        if WORKFLOW_KEY in texts:
            return load_workflow(path, registry), None
        comfy = {k: v for k, v in texts.items() if k in COMFY_KEYS}
        if comfy:
            result = load_embedded((kind, comfy), registry, str(path))
            return result.graph, result.report
        raise _problem("no_workflow_in_image", f"{path} carries no nodegraph workflow and no ComfyUI workflow "
                       f"(a {kind.upper()} image without workflow text)", path)
    doc, duplicates = read_document(path)  # bounded, and duplicate keys reported rather than collapsed
    is_ours = isinstance(doc, dict) and doc.get("format") == FORMAT
    if not is_ours and is_comfy_document(doc):
        result = load_comfy(doc, registry, source=str(path))
        return result.graph, result.report
    if isinstance(doc, dict) and "format" not in doc and "nodes" not in doc:
        found = f"an object with keys {', '.join(list(doc)[:5])}" if doc else "an empty object"
        neither = Problem("not_a_workflow", f"{path} is neither a nodegraph nor a ComfyUI workflow",
                          expected=NODEGRAPH_HINT, found=found)
        raise WorkflowError([*duplicates, neither])
    try:  # ours, or close enough to be meant as ours: the engine says what is wrong with it
        graph = parse_workflow(doc, registry)
    except WorkflowError as exc:
        raise WorkflowError(duplicates + exc.problems) from None
    if duplicates:
        raise WorkflowError(duplicates)
    return graph, None


def file_has_workflow(path: str | os.PathLike[str]) -> bool:
    """True for an image that carries a workflow (nodegraph's or ComfyUI's): the editor opens it on a drop
    instead of adding a Load Image node."""
    from nodegraph.paths import PathRefused, check_readable

    try:
        check_readable(Path(path), "", "image")
        container = image_texts(Path(path))
    except (PathRefused, OSError, limits.LimitExceeded):
        return False
    return container is not None and bool(container[1])
