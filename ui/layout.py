"""Automatic layout by real node sizes: layered, left to right in the graph's order, never overlapping.

1. Layers: each node sits one column right of the furthest node it reads from, so links run left to right.
   A node that reads nothing (a loader, a primitive) moves right next to the first node that reads it, so
   its links stay short.
2. Order within a column: a few barycenter sweeps (each node near the average row of its neighbours),
   which removes most link crossings.
3. Columns are as wide as their widest node plus a gap; within a column nodes keep their order and a gap,
   and each is pulled towards the height of its neighbours (the least-squares placement under those
   constraints, found by isotonic regression), so links run nearly straight.

Pure Python: sizes come from the caller (the canvas measures the real node items).
"""

from __future__ import annotations

from collections.abc import Mapping

from nodegraph.graph import Graph, topological_order

GAP_X = 90.0  # between columns (ports stick out 10-20 px on each side)
GAP_Y = 40.0  # between nodes of a column
SWEEPS = 4

Size = tuple[float, float]


def needs_layout(graph: Graph) -> bool:
    """True if any node lacks a position."""
    return any(not ("x" in n.layout and "y" in n.layout) for n in graph.nodes.values())


def _links(graph: Graph) -> list[tuple[str, str]]:
    return [(link.source, link.target) for link in graph.links() if link.source in graph.nodes and link.source != link.target]


def layers(graph: Graph) -> dict[str, int]:
    """The column of every node (nodes on a cycle count as sources)."""
    order, stuck = topological_order(graph)
    links = _links(graph)
    sources: dict[str, list[str]] = {n: [] for n in graph.nodes}
    readers: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for source, target in links:
        sources[target].append(source)
        readers[source].append(target)
    layer: dict[str, int] = dict.fromkeys(stuck, 0)
    for node_id in order:
        layer[node_id] = 1 + max((layer[s] for s in sources[node_id] if s in layer), default=-1)
    # pull sources next to their first reader (a seed feeding a late sampler sits beside it)
    for node_id in reversed(order):
        if not sources[node_id] and readers[node_id]:
            layer[node_id] = max(layer[node_id], min(layer[r] for r in readers[node_id]) - 1)
    return layer


def _fit_ordered(desired: list[float], heights: list[float]) -> list[float]:
    """Tops closest (least squares) to ``desired`` that keep the order and a gap of GAP_Y between nodes."""
    offsets, total = [], 0.0
    for height in heights:
        offsets.append(total)
        total += height + GAP_Y
    values = [d - o for d, o in zip(desired, offsets, strict=True)]
    # pool adjacent violators: the non-decreasing sequence closest to values
    blocks: list[list[float]] = []  # [mean, count]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            blocks[-1][0] = (blocks[-1][0] * blocks[-1][1] + mean * count) / (blocks[-1][1] + count)
            blocks[-1][1] += count
    fitted = [mean for mean, count in blocks for _ in range(int(count))]
    return [f + o for f, o in zip(fitted, offsets, strict=True)]


def layered_positions(graph: Graph, sizes: Mapping[str, Size], origin: tuple[float, float] = (0.0, 0.0)) -> dict[str, tuple[float, float]]:
    """Top-left positions for every node of ``graph`` (sizes: node id -> (width, height))."""
    if not graph.nodes:
        return {}
    layer = layers(graph)
    count = max(layer.values()) + 1
    columns: list[list[str]] = [[] for _ in range(count)]
    for node_id in graph.nodes:  # file order first
        columns[layer[node_id]].append(node_id)
    links = _links(graph)
    neighbours: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for source, target in links:
        neighbours[source].append(target)
        neighbours[target].append(source)

    def height(node_id: str) -> float:
        return sizes.get(node_id, (200.0, 100.0))[1]

    # order within columns: barycenters of the neighbours' ranks, alternating directions
    rank = {n: float(i) for column in columns for i, n in enumerate(column)}
    for sweep in range(SWEEPS):
        sequence = range(1, count) if sweep % 2 == 0 else range(count - 2, -1, -1)
        for index in sequence:
            side = index - 1 if sweep % 2 == 0 else index + 1
            column = columns[index]

            def key(node_id: str, side: int = side) -> float:
                near = [rank[m] for m in neighbours[node_id] if layer[m] == side]
                return sum(near) / len(near) if near else rank[node_id]

            column.sort(key=key)
            for i, node_id in enumerate(column):
                rank[node_id] = float(i)

    # heights: start stacked, then pull each node towards the centre of its neighbours
    top: dict[str, float] = {}
    for column in columns:
        y = 0.0
        for node_id in column:
            top[node_id] = y
            y += height(node_id) + GAP_Y

    def centre(node_id: str) -> float:
        return top[node_id] + height(node_id) / 2

    def place(column: list[str], side_layers: set[int]) -> None:
        desired = []
        for node_id in column:
            near = [centre(m) for m in neighbours[node_id] if layer[m] in side_layers]
            wanted = sum(near) / len(near) if near else centre(node_id)
            desired.append(wanted - height(node_id) / 2)
        for node_id, y in zip(column, _fit_ordered(desired, [height(n) for n in column]), strict=True):
            top[node_id] = y

    for _ in range(2):
        for index in range(1, count):
            place(columns[index], set(range(index)))
        for index in range(count - 2, -1, -1):
            place(columns[index], set(range(index + 1, count)))
    for index in range(1, count):
        place(columns[index], set(range(index)))

    lowest = min(top.values())
    positions: dict[str, tuple[float, float]] = {}
    x = origin[0]
    for column in columns:
        width = max((sizes.get(n, (200.0, 100.0))[0] for n in column), default=0.0)
        for node_id in column:
            positions[node_id] = (round(x), round(origin[1] + top[node_id] - lowest))
        x += width + GAP_X if column else 0.0
    return positions


def overlapping_pairs(rects: Mapping[str, tuple[float, float, float, float]]) -> list[tuple[str, str]]:
    """Pairs of rectangles (x, y, w, h) that overlap (touching edges do not count)."""
    items = sorted(rects.items(), key=lambda item: item[1][0])
    found = []
    for i, (a, (ax, ay, aw, ah)) in enumerate(items):
        for b, (bx, by, bw, bh) in items[i + 1:]:
            if bx >= ax + aw:
                break
            if ay < by + bh and by < ay + ah and ax < bx + bw:
                found.append((a, b))
    return found


def estimated_size(graph: Graph, registry: object, node_id: str) -> Size:
    """A node's size without the editor's node items (for code that lays out a graph without a display): a
    title, one row per port, a field per parameter. The editor itself measures the real items."""
    node = graph.nodes[node_id]
    definition = registry.get(node.type) if registry is not None else None
    if definition is None:
        rows, fields = max(len(node.inputs), 1), len(node.params)
    else:
        rows, fields = max(len(definition.inputs), len(definition.outputs)), len(definition.params)
    return 240.0, 40.0 + 24.0 * rows + 50.0 * fields


def auto_layout(graph: Graph, registry: object, only_missing: bool = True) -> None:
    """Give positions to the nodes of ``graph`` (only to those without one, unless ``only_missing`` is False),
    by estimated sizes. Kept for code without a display; the editor lays out by the real node sizes."""
    positions = layered_positions(graph, {n: estimated_size(graph, registry, n) for n in graph.nodes})
    for node_id, (x, y) in positions.items():
        layout = graph.nodes[node_id].layout
        if not only_missing or not ("x" in layout and "y" in layout):
            layout["x"], layout["y"] = x, y
