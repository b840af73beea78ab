"""The server's one door to the ComfyUI import: ``nodegraph.comfy`` when installed, else the stopgap.

The rest of the server calls these functions only, so replacing the stopgap changes nothing else.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from nodegraph.graph import Graph
from nodegraph.registry import Registry


def module() -> Any:
    if importlib.util.find_spec("nodegraph.comfy") is not None:
        return importlib.import_module("nodegraph.comfy")
    from nodegraph.server import comfy_fallback

    return comfy_fallback


def using_stopgap() -> bool:
    return module().__name__.endswith("comfy_fallback")


def is_comfy_document(doc: Any) -> bool:
    return bool(module().is_comfy_document(doc))


def import_api_prompt(prompt: dict[str, Any], registry: Registry) -> tuple[Graph, list[str]]:
    """``(graph, notes)`` for an API-format prompt; raises WorkflowError with the problems."""
    result = module().import_api_prompt(prompt, registry)
    return result.graph, report_lines(getattr(result, "report", None))


def load_comfy(doc: Any, registry: Registry) -> tuple[Graph, list[str]]:
    """Any ComfyUI document the import understands (API format, or the editor's workflow format)."""
    result = module().load_comfy(doc, registry, source="<request>")  # "<...>": no folder to resolve files against
    return result.graph, report_lines(getattr(result, "report", None))


def export_api_prompt(graph: Graph, registry: Registry) -> dict[str, Any]:
    try:
        return dict(module().export_api_prompt(graph, registry))
    except Exception:  # a graph with nodes ComfyUI has no name for: history shows it without a prompt
        return {}


def class_names(registry: Registry) -> dict[str, str]:
    """Our node type -> the ComfyUI class name it is listed under (only the mapped ones)."""
    names: dict[str, str] = {}
    for comfy_name, mapping in getattr(module(), "MAPPINGS", {}).items():
        ours = _node_type_of(mapping)
        if ours and ours in registry and ours not in names:
            names[ours] = comfy_name
    return names


def _node_type_of(mapping: Any) -> str | None:
    for attribute in ("node_type", "type", "ours", "target"):
        value = getattr(mapping, attribute, None)
        if isinstance(value, str):
            return value
    if isinstance(mapping, dict):
        for key in ("node_type", "type", "ours", "target"):
            if isinstance(mapping.get(key), str):
                return mapping[key]
    if isinstance(mapping, (tuple, list)) and mapping and isinstance(mapping[0], str):
        return mapping[0]
    return mapping if isinstance(mapping, str) else None


def report_lines(report: Any) -> list[str]:
    if report is None:
        return []
    if isinstance(report, (list, tuple)):
        return [str(line) for line in report]
    for attribute in ("lines", "notes", "messages", "warnings"):
        value = getattr(report, attribute, None)
        if isinstance(value, (list, tuple)):
            return [str(line) for line in value]
    text = str(report).strip()
    return [text] if text else []
