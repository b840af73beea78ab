"""An imported ComfyUI layout, spread apart so that no two nodes overlap in the editor.

The editor's nodes are larger than ComfyUI's (taller: one field per parameter; wider: longer titles), so nodes
placed at ComfyUI's positions would cover each other. The arrangement is kept, only stretched: nodes are pushed
right and down, never re-laid out.

1. Columns: a node that stood to the right of another in ComfyUI (their ComfyUI boxes apart side by side and level
   with each other) stays to its right: every x position maps through one increasing function, so nodes that shared
   a column still share it and distances only grow.
2. Rows: in ComfyUI's top-to-bottom order, each node moves down just enough to clear every node above it that now
   shares some of its width. After this step no two nodes overlap (any two that share width are one above the
   other), whatever the size estimates in step 1.

Groups grow with the nodes they held. Sizes come from :func:`nodegraph.node_sizes.estimated_size`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodegraph.graph import Graph
from nodegraph.node_sizes import Size, estimated_size

GAP = 24.0  # kept between nodes that had to move


def _positioned(graph: Graph) -> dict[str, tuple[float, float]]:
    out = {}
    for node_id, node in graph.nodes.items():
        x, y = node.layout.get("x"), node.layout.get("y")
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool) and not isinstance(y, bool):
            out[node_id] = (float(x), float(y))
    return out


def _columns(origin: dict[str, tuple[float, float]], old: dict[str, Size], new: dict[str, Size]) -> dict[str, float]:
    """Step 1: the new x of every node (one increasing map of the old x positions)."""
    ids = sorted(origin, key=lambda i: origin[i])
    mapped: dict[float, float] = {}
    previous: float | None = None
    for x in sorted({origin[i][0] for i in ids}):
        fx = x if previous is None else mapped[previous] + (x - previous)
        for b in (i for i in ids if origin[i][0] == x):
            by = origin[b][1]
            b_bottom = by + max(old[b][1], new[b][1]) + GAP
            for a in ids:
                ax, ay = origin[a]
                if ax >= x:
                    break
                side_by_side = ax + old[a][0] <= x
                level = ay < b_bottom and by < ay + max(old[a][1], new[a][1]) + GAP
                if side_by_side and level:
                    fx = max(fx, mapped[ax] + new[a][0] + GAP)
        mapped[x] = fx
        previous = x
    return {i: mapped[origin[i][0]] for i in ids}


def _rows(origin: dict[str, tuple[float, float]], xs: dict[str, float], new: dict[str, Size]) -> dict[str, float]:
    """Step 2: the new y of every node, below every earlier node that shares some of its width."""
    order = sorted(origin, key=lambda i: (origin[i][1], origin[i][0]))
    ys: dict[str, float] = {}
    for index, b in enumerate(order):
        y = origin[b][1]
        left, right = xs[b], xs[b] + new[b][0]
        for a in order[:index]:
            if xs[a] < right and left < xs[a] + new[a][0]:
                y = max(y, ys[a] + new[a][1] + GAP)
        ys[b] = y
    return ys


def _groups(graph: Graph) -> list[dict[str, Any]]:
    groups = getattr(graph, "groups", None)
    if not isinstance(groups, list):
        groups = graph.meta.get("groups")
    return groups if isinstance(groups, list) else []


def _grow_groups(graph: Graph, origin: dict[str, tuple[float, float]], old: dict[str, Size], new: dict[str, Size],
                 moved: dict[str, tuple[float, float]]) -> None:
    """Each group moves with the nodes whose centre it held and grows to keep its margins around them (never
    shrinks)."""
    for group in _groups(graph):
        rect = group.get("rect") if isinstance(group, dict) else None
        if not (isinstance(rect, list) and len(rect) == 4 and all(isinstance(v, (int, float)) for v in rect)):
            continue
        gx, gy, gw, gh = rect
        members = [i for i in origin if gx <= origin[i][0] + old[i][0] / 2 <= gx + gw
                   and gy <= origin[i][1] + old[i][1] / 2 <= gy + gh]
        if not members:
            continue
        dx = min(moved[i][0] for i in members) - min(origin[i][0] for i in members)
        dy = min(moved[i][1] for i in members) - min(origin[i][1] for i in members)
        right = max(gx + gw - max(origin[i][0] + old[i][0] for i in members), 10.0)
        bottom = max(gy + gh - max(origin[i][1] + old[i][1] for i in members), 10.0)
        x0, y0 = gx + dx, gy + dy
        x1 = max(x0 + gw, max(moved[i][0] + new[i][0] for i in members) + right)
        y1 = max(y0 + gh, max(moved[i][1] + new[i][1] for i in members) + bottom)
        group["rect"] = [round(x0), round(y0), round(x1 - x0), round(y1 - y0)]


def spread(graph: Graph, registry: Any, comfy_sizes: Mapping[str, Size]) -> int:
    """Move the nodes of ``graph`` apart (see the module docstring); ``comfy_sizes``: node id -> its (width,
    height) in ComfyUI, where the file gave one. Returns how many nodes moved."""
    origin = _positioned(graph)
    if not origin:
        return 0
    new = {i: estimated_size(graph, registry, i) for i in origin}
    old = {i: tuple(comfy_sizes[i]) if i in comfy_sizes else new[i] for i in origin}
    xs = _columns(origin, old, new)
    ys = _rows(origin, xs, new)
    moved = {i: (xs[i], ys[i]) for i in origin}
    _grow_groups(graph, origin, old, new, moved)
    count = 0
    for node_id, (x, y) in moved.items():
        if (round(x), round(y)) != (round(origin[node_id][0]), round(origin[node_id][1])):
            count += 1
            graph.nodes[node_id].layout["x"], graph.nodes[node_id].layout["y"] = round(x), round(y)
    return count
