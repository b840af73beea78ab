"""The server's one door to the ComfyUI import (:mod:`nodegraph.comfy`): API prompts and ComfyUI's
documents in, API prompts out (for ``/history`` and ``/queue``), and the class-name mapping that
``/object_info`` lists node types under. The rest of the server calls only these functions.
"""

from __future__ import annotations

from typing import Any

from nodegraph.graph import Graph
from nodegraph.registry import Registry


def module() -> Any:
    import nodegraph.comfy

    return nodegraph.comfy


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
    """Our node type -> the ComfyUI class name it is listed under: the class it exports as (entries that
    only import, such as older spellings, are skipped), for node types this registry has."""
    names: dict[str, str] = {}
    for comfy_name, mapping in module().MAPPINGS.items():
        if getattr(mapping, "export", True) and mapping.node_type in registry:
            names.setdefault(mapping.node_type, comfy_name)
    return names


def report_lines(report: Any) -> list[str]:
    """The import report as lines of text (what did not map, what differs from ComfyUI)."""
    if report is None:
        return []
    lines = report.lines() if callable(getattr(report, "lines", None)) else report
    return [str(line) for line in lines] if isinstance(lines, (list, tuple)) else [str(lines)]
