"""ComfyUI nodes with no nodegraph counterpart: kept in the graph with their data, never run.

Such a node has the type ``comfyui.<ClassName>`` (a type the engine does not know, so it is kept on save and
reported by validation) and its ComfyUI data under ``extra["comfy"]``: class type, node pack, values, and in
UI-format files the raw widget values and output names, so that an export writes the node back unchanged.
"""

from __future__ import annotations

from typing import Any

from nodegraph.comfy.table import PENDING
from nodegraph.errors import Problem

PLACEHOLDER_PREFIX = "comfyui."


def placeholder_type(class_type: str) -> str:
    return PLACEHOLDER_PREFIX + class_type


def placeholder_problem(node: Any, data: dict[str, Any]) -> Problem:
    """The validation problem for a placeholder: which ComfyUI node, from which pack, and what to do."""
    class_type = data.get("class_type")
    pack = data.get("pack") or ""
    origin = f" from the node pack {pack!r}" if pack and pack != "comfy-core" else ""
    reason = PENDING.get(class_type, "it has no counterpart in nodegraph")
    return Problem(
        "comfy_node_not_mapped",
        f"ComfyUI node {class_type!r}{origin} cannot run here: {reason}. Its data is kept (an export to ComfyUI "
        "writes it back); replace it with nodegraph nodes or remove it to run the workflow",
        node.id, expected="a node type nodegraph can run", found=f"ComfyUI {class_type}",
    )
