"""Automatic placement for workflows written without positions: one column per topological depth."""

from __future__ import annotations

from nodegraph.graph import Graph, topological_order
from nodegraph.registry import Registry

COLUMN_WIDTH = 300
ROW_GAP = 40
BASE_HEIGHT = 60
ROW_HEIGHT = 26  # per port or parameter row


def needs_layout(graph: Graph) -> bool:
    """True if any node lacks a position."""
    return any(not ("x" in n.layout and "y" in n.layout) for n in graph.nodes.values())


def estimated_height(graph: Graph, registry: Registry, node_id: str) -> int:
    node = graph.nodes[node_id]
    definition = registry.get(node.type)
    if definition is None:
        rows = max(len(node.inputs), 1) + 1
    else:
        rows = max(len(definition.inputs), len(definition.outputs)) + len(definition.params) * 2
    return BASE_HEIGHT + ROW_HEIGHT * rows


def depths(graph: Graph) -> dict[str, int]:
    """Longest distance from a source node, for every node (nodes on a cycle count as sources)."""
    order, stuck = topological_order(graph)
    depth: dict[str, int] = dict.fromkeys(stuck, 0)
    for node_id in order:
        sources = [s for s, _ in graph.nodes[node_id].inputs.values() if s in depth]
        depth[node_id] = 1 + max((depth[s] for s in sources), default=-1)
    return depth


def auto_layout(graph: Graph, registry: Registry, only_missing: bool = True) -> None:
    """Give positions to the nodes (only to those without one, unless ``only_missing`` is False).

    Columns follow the topological depth, so links run left to right; within a column nodes keep file
    order, stacked by their estimated height.
    """
    depth = depths(graph)
    placed = {n.id for n in graph.nodes.values() if only_missing and "x" in n.layout and "y" in n.layout}
    next_y: dict[int, int] = {}
    for node in graph.nodes.values():
        if node.id in placed:
            continue
        column = depth.get(node.id, 0)
        y = next_y.get(column, 0)
        node.layout["x"] = column * COLUMN_WIDTH
        node.layout["y"] = y
        next_y[column] = y + estimated_height(graph, registry, node.id) + ROW_GAP
