"""Node modes and pass-through nodes: what actually runs when some nodes are bypassed, muted or rerouted.

A workflow (file version 2) may mark a node ``"mode": "bypass"`` or ``"mode": "mute"``:

- **bypass**: the node does not run; each of its inputs passes through to the first output of the same
  type that is still free (so a bypassed LoRA loader hands on its model and clip, and a bypassed ControlNet
  apply hands positive to positive and negative to negative). An output with no input of its type has
  nothing to give: a node that reads it is a problem, reported before anything runs.
- **mute**: the node does not run, and neither does any node that needs one of its outputs (through a
  required input or a linked parameter); an optional input fed by a muted node counts as unconnected.
  Nodes needed only by muted nodes are not run either, since nothing asks for them.

``core.Reroute`` is always a pass-through (its one input to its one output), and node types with neither
outputs nor side effects (``core.Note``) never run. :func:`resolve_modes` rewrites a graph into the graph
that runs: those nodes removed and their readers linked to what they pass on.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from nodegraph.errors import Problem
from nodegraph.graph import BYPASS, MUTE, REROUTE, Graph, GraphNode, input_socket, is_link, topological_order
from nodegraph.node import NodeDef
from nodegraph.registry import Registry

_MUTED = "muted"  # marker: the output comes from a node that does not run


@dataclass(frozen=True)
class _Missing:
    """An output a pass-through node cannot provide, and why."""

    why: str


@dataclass
class Resolution:
    """The graph that runs, the nodes left out (id -> why), and problems with links through left-out nodes."""

    graph: Graph
    skipped: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def never_runs(definition: NodeDef | None) -> bool:
    """A node type with no outputs that is not an output node (a note) has no reason ever to run."""
    return definition is not None and not definition.outputs and not definition.output_node




def _is_optional(definition: NodeDef | None, node: GraphNode, name: str) -> bool:
    spec = definition.input(name) if definition is not None else None
    return spec is not None and spec.optional


def _pass_through(node: GraphNode, definition: NodeDef | None, links: dict, read: set[str]) -> dict[str, object]:
    """For a bypassed node or a reroute: where each of its outputs comes from (a link, or _Missing)."""
    if definition is None:
        return {o: _Missing(f"{node.id!r} is bypassed, but its type {node.type} is not installed, so which input "
                            "it would pass on is unknown") for o in read}
    result: dict[str, object] = {}
    free = list(definition.outputs)
    # declared inputs claim outputs in order, linked or not, so positive stays with positive; linked parameters follow
    claimants = [i.name for i in definition.inputs] + [p.name for p in definition.params if p.name in links]
    for name in claimants:
        socket = input_socket(definition, name)
        match = next((o for o in free if socket is not None and o.type.members == socket.members), None)
        if match is None:
            continue
        free.remove(match)
        link = links.get(name)
        if link is None:
            what = "bypassed" if node.type != REROUTE else "a reroute"
            result[match.name] = _Missing(f"{node.id!r} is {what} and would pass on its input {name!r} as {match.name!r}, "
                                          "but nothing is connected to that input")
        else:
            result[match.name] = link
    for output in free:
        result[output.name] = _Missing(
            f"{node.id!r} is bypassed and has no {output.type.name} input to pass on as its output {output.name!r}; "
            "un-bypass it, or connect what it should pass on"
        )
    return result


def resolve_modes(graph: Graph, registry: Registry) -> Resolution:
    """The graph that runs: muted, bypassed, rerouting and never-running nodes left out, readers relinked.

    Linear in the size of the graph. Node ids are unchanged, so events and problems name the user's nodes.
    """
    order, stuck = topological_order(graph)
    read: dict[str, set[str]] = {}
    for node in graph.nodes.values():
        for link in node.inputs.values():
            if is_link(link):
                read.setdefault(link[0], set()).add(link[1])
    resolution = Resolution(Graph(meta=copy.deepcopy(graph.meta), groups=copy.deepcopy(graph.groups), extra=copy.deepcopy(graph.extra)))
    redirect: dict[tuple[str, str], object] = {}
    for node_id in order + stuck:
        node = graph.nodes[node_id]
        definition = registry.get(node.type)
        links: dict = {}
        lost: list[str] = []
        for name, link in node.inputs.items():
            if not is_link(link):
                links[name] = link  # malformed: validation reports it
                continue
            target = redirect.get((link[0], link[1]), tuple(link))
            if isinstance(target, _Missing):
                if node.mode is None and node.type != REROUTE:
                    resolution.problems.append(
                        Problem("nothing_to_pass_on", f"input reads {link[0]}.{link[1]}, which has no value: {target.why}", node_id, name)
                    )
                continue
            if target == _MUTED:
                if not _is_optional(definition, node, name) or name in node.param_inputs:
                    lost.append(f"{name} <- {link[0]}")
                continue
            links[name] = target
        outputs = read.get(node_id, set())
        if never_runs(definition):
            resolution.skipped[node_id] = "never runs (it has no outputs)"
        elif node.mode == MUTE or lost:
            resolution.skipped[node_id] = "muted" if node.mode == MUTE else "needs a node that does not run (" + ", ".join(lost) + ")"
            for output in outputs:
                redirect[(node_id, output)] = _MUTED
        elif node.mode == BYPASS or node.type == REROUTE:
            if node.mode == BYPASS:
                resolution.skipped[node_id] = "bypassed"
            for output, source in _pass_through(node, definition, links, outputs).items():
                redirect[(node_id, output)] = source
        else:
            kept = copy.deepcopy(node)
            kept.inputs = links
            resolution.graph.nodes[node_id] = kept
    # keep the file's node order (topological order only served to resolve chains)
    resolution.graph.nodes = {i: resolution.graph.nodes[i] for i in graph.nodes if i in resolution.graph.nodes}
    return resolution
