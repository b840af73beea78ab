"""Reading ComfyUI's API format: ``{id: {"class_type", "inputs": {name: value or [source id, output]},
"_meta": {"title"}}}``, the body of ``POST /prompt`` and the ``prompt`` text chunk of ComfyUI's PNGs.

Values are by name and UI-only nodes are already gone, so reading is direct. A ``[source id, output index]``
pair is a link (ComfyUI's own rule: a list of two whose first item is a string and second a number).
"""

from __future__ import annotations

from typing import Any

from nodegraph.comfy.records import ComfyGraph, ComfyLink, ComfyNode
from nodegraph.errors import Problem, WorkflowError
from nodegraph.params import describe


def unwrap_prompt(doc: Any) -> Any:
    """The graph itself when ``doc`` is a whole ``POST /prompt`` body (``{"prompt": {...}, "client_id"}``)."""
    if isinstance(doc, dict) and isinstance(doc.get("prompt"), dict) and "class_type" not in doc.get("prompt", {}):
        inner = doc["prompt"]
        if inner and all(isinstance(v, dict) and "class_type" in v for v in inner.values()):
            return inner
    return doc


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and not isinstance(value[0], bool)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
    )


def read_api_prompt(prompt: Any) -> ComfyGraph:
    """Records of an API-format graph. Raises :class:`WorkflowError` naming every malformed node."""
    prompt = unwrap_prompt(prompt)
    if not isinstance(prompt, dict) or not prompt:
        raise WorkflowError([Problem(
            "not_comfy_api", "a ComfyUI API-format graph maps node ids to nodes",
            expected="an object of {id: {class_type, inputs}}", found=describe(prompt),
        )])
    problems: list[Problem] = []
    graph = ComfyGraph(kind="api")
    for raw_id, raw in prompt.items():
        node_id = str(raw_id)
        if not isinstance(raw, dict):
            problems.append(Problem("bad_comfy_node", "a node must be an object", node_id,
                                    expected="{class_type, inputs}", found=describe(raw)))
            continue
        class_type = raw.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            problems.append(Problem("bad_comfy_node", "a node needs a class_type", node_id, "class_type",
                                    "a ComfyUI node class name", describe(class_type)))
            continue
        inputs = raw.get("inputs", {})
        if not isinstance(inputs, dict):
            problems.append(Problem("bad_comfy_node", "'inputs' must map input names to values or links", node_id,
                                    "inputs", "an object", describe(inputs)))
            continue
        values: dict[str, Any] = {}
        for name, value in inputs.items():
            if not isinstance(name, str):
                continue
            values[name] = ComfyLink(str(value[0]), int(value[1])) if is_link(value) else value
        meta = raw.get("_meta")
        title = meta.get("title") if isinstance(meta, dict) and isinstance(meta.get("title"), str) else ""
        graph.nodes[node_id] = ComfyNode(node_id, class_type, values, title=title)
    if problems:
        raise WorkflowError(problems)
    return graph
