"""Opening a file that may be a nodegraph workflow or a ComfyUI one, decided by its content.

``run``, ``validate`` and the editor's Open and drop call :func:`load_any`: a nodegraph workflow (JSON, or a
PNG saved by nodegraph) loads as always; a ComfyUI workflow (API or UI JSON, or a PNG/WebP ComfyUI saved) is
imported and comes with its :class:`~nodegraph.comfy.report.ImportReport`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nodegraph.comfy.containers import embedded_texts
from nodegraph.comfy.load import is_comfy_document, load_comfy
from nodegraph.comfy.report import ImportReport
from nodegraph.errors import Problem, WorkflowError
from nodegraph.graph import Graph
from nodegraph.png_meta import WORKFLOW_KEY, png_text_chunks
from nodegraph.registry import Registry
from nodegraph.workflow import FORMAT, parse_workflow

NODEGRAPH_HINT = "a nodegraph workflow (.json or a PNG saved by nodegraph) or a ComfyUI workflow (.json, .png, .webp)"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WorkflowError([Problem("unreadable", f"cannot read {path}: {exc.strerror or exc}",
                                     expected="a readable file", found=str(path))]) from None


def load_any(path: str | os.PathLike[str], registry: Registry) -> tuple[Graph, ImportReport | None]:
    """The graph in ``path`` and, for a ComfyUI file, the import report (None for a nodegraph workflow)."""
    path = Path(path)
    data = _read(path)
    container = embedded_texts(data)
    if container is not None:
        kind, texts = container
        if kind == "png" and WORKFLOW_KEY in png_text_chunks(data):
            from nodegraph.workflow import load_workflow

            return load_workflow(path, registry), None
        if texts:
            result = load_comfy(data, registry, source=str(path))
            return result.graph, result.report
        raise WorkflowError([Problem("no_workflow_in_image", f"{path} carries no workflow", expected=NODEGRAPH_HINT,
                                     found=f"a {kind.upper()} image without workflow text")])
    try:
        doc: Any = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowError([Problem("bad_json", f"{path} is not valid JSON: {exc}", expected=NODEGRAPH_HINT,
                                     found=str(path))]) from None
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        return parse_workflow(doc, registry), None
    if is_comfy_document(doc):
        result = load_comfy(doc, registry, source=str(path))
        return result.graph, result.report
    found = f"an object with keys {', '.join(list(doc)[:5])}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
    raise WorkflowError([Problem("not_a_workflow", f"{path} is neither a nodegraph nor a ComfyUI workflow",
                                 expected=NODEGRAPH_HINT, found=found)])


def file_has_workflow(path: str | os.PathLike[str]) -> bool:
    """True for an image that carries a workflow (nodegraph's or ComfyUI's): the editor opens it on a drop
    instead of adding a Load Image node."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    container = embedded_texts(data)
    if container is None:
        return False
    kind, texts = container
    return bool(texts) or (kind == "png" and WORKFLOW_KEY in png_text_chunks(data))
