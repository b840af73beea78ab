"""Opening ComfyUI files: detection by content and the import entry points.

- :func:`is_comfy_document` tells a ComfyUI graph (API or UI format) from anything else.
- :func:`load_comfy` takes file bytes (JSON, PNG or WebP) or a parsed document and returns a
  :class:`ComfyImport`: the nodegraph graph and the import report. A PNG that carries both graphs gives the
  UI graph (layout, titles, groups, notes) with the values of the API ``prompt`` (what made the image).
- :func:`import_api_prompt` imports an API-format graph (what ``POST /prompt`` receives).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodegraph.comfy.api_format import read_api_prompt, unwrap_prompt
from nodegraph.comfy.build import BuildOptions, build_graph
from nodegraph.comfy.containers import embedded_texts
from nodegraph.comfy.mapping import MAPPINGS
from nodegraph.comfy.records import ComfyGraph, ComfyLink
from nodegraph.comfy.report import ImportReport
from nodegraph.comfy.ui_format import UiOptions, read_ui_workflow
from nodegraph.errors import Problem, WorkflowError
from nodegraph.graph import Graph
from nodegraph.params import describe
from nodegraph.registry import Registry
from nodegraph.safe_json import JsonInputError, parse_json


@dataclass
class ComfyImport:
    """The result of an import: ``graph`` (runs and saves like any workflow) and ``report``."""

    graph: Graph
    report: ImportReport


def _is_api(doc: Any) -> bool:
    doc = unwrap_prompt(doc)
    return (
        isinstance(doc, dict)
        and bool(doc)
        and "format" not in doc
        and all(isinstance(v, dict) and isinstance(v.get("class_type"), str) for v in doc.values())
    )


def _is_ui(doc: Any) -> bool:
    if not isinstance(doc, dict) or "format" in doc or not isinstance(doc.get("nodes"), list):
        return False
    markers = ("links", "last_node_id", "last_link_id", "state", "groups", "extra", "definitions")
    typed = all(isinstance(n, dict) and "type" in n for n in doc["nodes"])
    return typed and any(k in doc for k in markers)


def is_comfy_document(doc: Any) -> bool:
    """True for a ComfyUI graph in the API format (also a whole ``POST /prompt`` body) or the UI format."""
    return _is_api(doc) or _is_ui(doc)


def comfy_kind(doc: Any) -> str | None:
    """"api", "ui" or None."""
    if _is_api(doc):
        return "api"
    if _is_ui(doc):
        return "ui"
    return None


def _engine_keeps_modes() -> bool:
    """Bypass and mute are kept on nodes from workflow file version 2 on; before that they are resolved away."""
    from nodegraph import workflow

    return getattr(workflow, "VERSION", 1) >= 2


def _options(registry: Registry, source_dir: Path | None) -> tuple[UiOptions, BuildOptions]:
    keep_modes = _engine_keeps_modes()
    ui = UiOptions(keep_reroutes=registry.get("core.Reroute") is not None, keep_modes=keep_modes, mappings=MAPPINGS)
    return ui, BuildOptions(MAPPINGS, source_dir=source_dir, keep_modes=keep_modes)


def _source_dir(source: str) -> Path | None:
    if not source or source.startswith("<"):
        return None
    parent = Path(source).parent
    return parent if parent.is_dir() else None


def import_api_prompt(prompt: dict, registry: Registry, *, source: str = "") -> ComfyImport:
    """Import an API-format graph (raises :class:`WorkflowError` for a malformed one)."""
    report = ImportReport(source=source, format="api", origin="json")
    comfy = read_api_prompt(prompt)
    _, build = _options(registry, _source_dir(source))
    return ComfyImport(build_graph(comfy, registry, report, build), report)


def _import_ui(doc: dict, registry: Registry, report: ImportReport, source: str, prompt: Any = None) -> ComfyImport:
    ui, build = _options(registry, _source_dir(source))
    comfy, warnings = read_ui_workflow(doc, ui)
    report.format = comfy.kind
    for node, message in warnings:
        report.warn(message, node)
    if prompt is not None:
        _apply_prompt_values(comfy, prompt, report)
    return ComfyImport(build_graph(comfy, registry, report, build), report)


def _apply_prompt_values(comfy: ComfyGraph, prompt: Any, report: ImportReport) -> None:
    """Values of the API prompt win over the UI graph's widget values (the prompt is what drew the image)."""
    try:
        api = read_api_prompt(prompt)
    except WorkflowError:
        report.warn("the PNG's 'prompt' text is not a valid API graph: the workflow's own values are used")
        return
    changed = 0
    for node_id, api_node in api.nodes.items():
        record = comfy.nodes.get(node_id)
        if record is None or record.class_type != api_node.class_type:
            continue
        for name, value in api_node.inputs.items():
            if isinstance(value, ComfyLink):
                continue
            current = record.inputs.get(name)
            if isinstance(current, ComfyLink):  # a widget fed by a PrimitiveNode: the primitive takes the value
                source = comfy.nodes.get(current.source)
                if source is not None and source.class_type == "PrimitiveNode" and source.inputs.get("value") != value:
                    source.inputs["value"] = value
                    changed += 1
                continue
            if record.inputs.get(name, object()) != value:
                record.inputs[name] = value
                changed += 1
    if changed:
        report.layout.append(f"{changed} value(s) taken from the PNG's API prompt (what drew the image)")


def _decode_json(data: bytes, source: str) -> Any:
    """JSON within the engine's limits (size, depth, number length): a hostile file is an error, not a hang."""
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WorkflowError([Problem("not_comfy", f"{source or 'the file'} is neither JSON text nor a PNG/WebP image",
                                     expected="a ComfyUI workflow (.json), or a PNG/WebP that carries one",
                                     found="binary data")]) from None
    try:
        return parse_json(data, source or "the file").value
    except JsonInputError as exc:
        raise WorkflowError([Problem("bad_json", str(exc), expected="JSON", found=source or "the file")]) from None


def _not_comfy(doc: Any, source: str) -> WorkflowError:
    what = source or "the document"
    if isinstance(doc, dict) and doc.get("format") == "nodegraph.workflow":
        found = "a nodegraph workflow (open it directly)"
    elif isinstance(doc, dict):
        keys = ", ".join(list(doc)[:5])
        found = f"an object with keys {keys}" if keys else "an empty object"
    else:
        found = describe(doc)
    return WorkflowError([Problem(
        "not_comfy", f"{what} is not a ComfyUI workflow",
        expected="a ComfyUI graph: API format {id: {class_type, inputs}} or UI format {nodes, links, ...}", found=found,
    )])


def load_comfy(data: bytes | dict, registry: Registry, *, source: str = "") -> ComfyImport:
    """Import a ComfyUI workflow from file bytes (JSON, PNG, WebP) or a parsed document.

    Raises :class:`WorkflowError` with a structured problem when the input is not a ComfyUI workflow or is
    malformed beyond repair.
    """
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data)
        container = embedded_texts(data)
        if container is not None:
            return load_embedded(container, registry, source)
        doc: Any = _decode_json(data, source)
    else:
        doc = data
    kind = comfy_kind(doc)
    if kind == "api":
        return import_api_prompt(unwrap_prompt(doc), registry, source=source)
    if kind == "ui":
        return _import_ui(doc, registry, ImportReport(source=source, origin="json"), source)
    raise _not_comfy(doc, source)


def load_embedded(container: tuple[str, dict[str, str]], registry: Registry, source: str = "") -> ComfyImport:
    """Import from the ``workflow``/``prompt`` texts of an image: ``(container kind, {key: text})``."""
    kind, texts = container
    what = source or f"the {kind.upper()}"
    parsed: dict[str, Any] = {}
    for key, text in texts.items():
        try:
            parsed[key] = parse_json(text, f"{source or 'the image'}: its {key!r} text").value
        except JsonInputError as exc:
            parsed[key] = exc
    workflow, prompt = parsed.get("workflow"), parsed.get("prompt")
    if _is_ui(workflow):
        report = ImportReport(source=source, origin=f"{kind}:workflow")
        return _import_ui(workflow, registry, report, source, prompt if _is_api(prompt) else None)
    if _is_api(prompt):
        result = import_api_prompt(unwrap_prompt(prompt), registry, source=source)
        result.report.origin = f"{kind}:prompt"
        return result
    broken = [k for k, v in parsed.items() if isinstance(v, Exception)]
    detail = f"its {' and '.join(repr(k) for k in broken)} text is not valid JSON" if broken else (
        "it carries no 'workflow' or 'prompt' text" if not texts else "its texts hold no ComfyUI graph"
    )
    raise WorkflowError([Problem("no_comfy_in_image", f"{what} carries no ComfyUI workflow: {detail}",
                                 expected="a 'workflow' or 'prompt' text chunk written by ComfyUI",
                                 found=", ".join(texts) or "no text chunks")])
