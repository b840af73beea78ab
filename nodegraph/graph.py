"""The graph model (nodes, parameters, links) and its validation. Pure Python, no GUI, no torch.

The editor edits a :class:`Graph` through its methods, the workflow file is a :class:`Graph` written as
JSON, and the executor runs one. :func:`validate` reports every problem in one pass.
"""

from __future__ import annotations

import copy
import itertools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nodegraph.errors import Problem
from nodegraph.node import Input, NodeDef, Output
from nodegraph.registry import Registry
from nodegraph.types import ANY, SocketType, compatible


@dataclass(frozen=True)
class Link:
    """``target.input`` reads ``source.output``."""

    source: str
    output: str
    target: str
    input: str


# Node modes (workflow file version 2). A normal node has none.
BYPASS = "bypass"  # the node does not run; each output passes on the first input of the same type
MUTE = "mute"  # the node does not run, nor what cannot run without it
MODES = (BYPASS, MUTE)
REROUTE = "core.Reroute"  # passes its one input through; links through it are judged by what feeds it


@dataclass
class GraphNode:
    """One node of a workflow. ``inputs`` maps an input (or parameter) name to ``(source id, output)``.

    ``mode`` is ``None``, :data:`BYPASS` or :data:`MUTE`. ``param_inputs`` names the parameters the user
    turned into input sockets (a parameter can be linked either way; this records that the editor shows it
    as a socket, and an unlinked one is a problem). ``extra`` keeps keys of the node's JSON that this version
    does not know, so they survive a save.
    """

    id: str
    type: str
    version: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, tuple[str, str]] = field(default_factory=dict)
    layout: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    mode: str | None = None
    param_inputs: list[str] = field(default_factory=list)


class LinkRefused(ValueError):
    """A link the type rule (or the graph's shape) does not allow."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class Graph:
    """An ordered set of nodes with stable string ids, plus the editor's groups (titled frames, each
    ``{"title", "color": "#rrggbb", "rect": [x, y, w, h]}``) and top-level keys this version does not know."""

    def __init__(
        self,
        nodes: Iterable[GraphNode] = (),
        meta: dict[str, Any] | None = None,
        groups: Iterable[dict[str, Any]] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.meta: dict[str, Any] = dict(meta or {})
        self.groups: list[dict[str, Any]] = [dict(g) for g in groups]
        self.extra: dict[str, Any] = dict(extra or {})
        for n in nodes:
            self.nodes[n.id] = n

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __getitem__(self, node_id: str) -> GraphNode:
        return self.nodes[node_id]

    def __len__(self) -> int:
        return len(self.nodes)

    def copy(self) -> Graph:
        return Graph(
            (copy.deepcopy(n) for n in self.nodes.values()),
            copy.deepcopy(self.meta),
            copy.deepcopy(self.groups),
            copy.deepcopy(self.extra),
        )

    def links(self) -> list[Link]:
        """Every well-formed link (malformed ones are validation problems, not links)."""
        return [
            Link(link[0], link[1], n.id, name)
            for n in self.nodes.values()
            for name, link in n.inputs.items()
            if is_link(link)
        ]

    def sources(self, node_id: str) -> list[str]:
        """Ids of the nodes that ``node_id`` reads from."""
        return [link[0] for link in self.nodes[node_id].inputs.values() if is_link(link)]

    def consumers(self) -> dict[str, list[Link]]:
        """For each node id, the links that read from it."""
        result: dict[str, list[Link]] = {node_id: [] for node_id in self.nodes}
        for link in self.links():
            result.setdefault(link.source, []).append(link)
        return result

    # -- editing (used by the editor and by tests; every edit is checked) --------------------------

    def new_id(self, stem: str) -> str:
        base = stem.rsplit(".", 1)[-1].lower() or "node"
        for i in itertools.count(1):
            candidate = f"{base}_{i}"
            if candidate not in self.nodes:
                return candidate
        raise AssertionError("unreachable")

    def add_node(
        self,
        registry: Registry,
        node_type: str,
        node_id: str | None = None,
        params: dict[str, Any] | None = None,
        layout: dict[str, Any] | None = None,
    ) -> GraphNode:
        definition = registry.get(node_type)
        if definition is None:
            raise KeyError(f"unknown node type {node_type!r}")
        node_id = node_id or self.new_id(node_type)
        if node_id in self.nodes:
            raise ValueError(f"a node with id {node_id!r} already exists")
        values = definition.default_params()
        for name, value in (params or {}).items():
            param = definition.param(name)
            if param is None:
                raise KeyError(f"node type {node_type} has no parameter {name!r}")
            values[name] = param.check(value)
        node = GraphNode(node_id, node_type, definition.version, values, {}, dict(layout or {}))
        self.nodes[node_id] = node
        return node

    def remove_node(self, node_id: str) -> list[Link]:
        """Remove a node and every link touching it; returns the links removed."""
        removed = [link for link in self.links() if node_id in (link.source, link.target)]
        for link in removed:
            if link.target != node_id:
                del self.nodes[link.target].inputs[link.input]
        del self.nodes[node_id]
        return removed

    def set_param(self, registry: Registry, node_id: str, name: str, value: Any) -> Any:
        node = self.nodes[node_id]
        definition = registry.get(node.type)
        param = definition.param(name) if definition else None
        if definition is not None and param is None:
            raise KeyError(f"node {node_id!r} ({node.type}) has no parameter {name!r}")
        node.params[name] = param.check(value) if param else value
        return node.params[name]

    def connect(self, registry: Registry, source: str, output: str, target: str, input_name: str) -> Link:
        """Link ``source.output`` to ``target.input_name``, replacing any link already on that input.

        Raises :class:`LinkRefused` if the types do not fit, a name is unknown, or the link makes a cycle.
        """
        problem = check_link(self, registry, source, output, target, input_name)
        if problem is None and _reaches(self, target, source):
            problem = Problem("cycle", "this link would create a cycle", target, input_name)
        if problem is not None:
            raise LinkRefused(problem)
        self.nodes[target].inputs[input_name] = (source, output)
        return Link(source, output, target, input_name)

    def disconnect(self, target: str, input_name: str) -> Link | None:
        source = self.nodes[target].inputs.pop(input_name, None)
        return Link(source[0], source[1], target, input_name) if source else None


def input_socket(definition: NodeDef, name: str) -> SocketType | None:
    """The socket type an input or a link-driven parameter accepts, or None if there is no such field."""
    field_ = definition.field_index.get(name)
    if field_ is None:
        return None
    return field_.type if isinstance(field_, Input) else field_.socket_type


def check_link(
    graph: Graph, registry: Registry, source: str, output: str, target: str, input_name: str
) -> Problem | None:
    """Why ``source.output -> target.input_name`` is not allowed, or None if it is."""
    if source not in graph.nodes:
        return Problem("missing_source", f"input is linked to node {source!r}, which does not exist", target, input_name)
    if target not in graph.nodes:
        return Problem("missing_node", f"node {target!r} does not exist", target, input_name)
    src_def = registry.get(graph.nodes[source].type)
    dst_def = registry.get(graph.nodes[target].type)
    if src_def is None or dst_def is None:
        return None  # reported as an unknown node type; the link itself cannot be judged
    out = src_def.output(output)
    if out is not None and src_def.id == REROUTE:
        out = Output(out.name, reroute_type(graph, registry, source))
    if out is None:
        return Problem(
            "missing_output",
            f"input is linked to output {output!r} of node {source!r}, which has no such output",
            target,
            input_name,
            expected="one of " + (", ".join(o.name for o in src_def.outputs) or "(no outputs)"),
            found=repr(output),
        )
    accepted = input_socket(dst_def, input_name)
    if accepted is None:
        return Problem(
            "unknown_input",
            f"node type {dst_def.id} has no input {input_name!r}",
            target,
            input_name,
            expected="one of " + ", ".join(dst_def.field_index),
            found=repr(input_name),
        )
    if not compatible(out.type, accepted):
        return Problem(
            "incompatible_link",
            f"cannot link {source}.{output} to this input",
            target,
            input_name,
            expected=accepted.name,
            found=out.type.name,
        )
    return None


def reroute_type(graph: Graph, registry: Registry, node_id: str) -> SocketType:
    """The type a reroute carries: that of the output feeding it, through any chain of reroutes (``*`` when
    nothing feeds it)."""
    seen: set[str] = set()
    current = node_id
    while current in graph.nodes and current not in seen:
        seen.add(current)
        link = graph.nodes[current].inputs.get("value")
        if not is_link(link) or link[0] not in graph.nodes:
            break
        source = graph.nodes[link[0]]
        definition = registry.get(source.type)
        if definition is None:
            break
        if definition.id != REROUTE:
            found = definition.output(link[1])
            return found.type if found is not None else ANY
        current = source.id
    return ANY


def _reaches(graph: Graph, start: str, goal: str) -> bool:
    """True if ``goal`` is ``start`` or downstream of it."""
    consumers = graph.consumers()
    seen, queue = {start}, deque([start])
    while queue:
        current = queue.popleft()
        if current == goal:
            return True
        for link in consumers.get(current, ()):
            if link.target not in seen:
                seen.add(link.target)
                queue.append(link.target)
    return False


def topological_order(graph: Graph, subset: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """Kahn's algorithm over ``subset`` (default: all nodes), in file order where free.

    Returns ``(order, stuck)``: ``stuck`` lists nodes on or behind a cycle (empty for a valid graph).
    Links to nodes outside the graph are ignored here; validation reports them.
    """
    wanted = None if subset is None else set(subset)
    members = [n for n in graph.nodes if wanted is None or n in wanted]
    member_set = set(members)
    indegree = dict.fromkeys(members, 0)
    readers: dict[str, list[str]] = {n: [] for n in members}
    for node_id in members:
        for source in graph.sources(node_id):
            if source in member_set:
                indegree[node_id] += 1
                readers[source].append(node_id)
    queue = deque(n for n in members if indegree[n] == 0)
    order: list[str] = []
    while queue:
        current = queue.popleft()
        order.append(current)
        for reader in readers[current]:
            indegree[reader] -= 1
            if indegree[reader] == 0:
                queue.append(reader)
    done = set(order)
    return order, [n for n in members if n not in done]


def is_link(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    )
