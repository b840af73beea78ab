"""Validation of a graph: every problem (unknown types, bad values, refused or missing links, cycles) in one pass,
each with the node, the field, what was expected and what was found. Judged on the graph that runs, after
bypassed, muted and rerouting nodes are resolved (:mod:`nodegraph.modes`)."""

from __future__ import annotations

from nodegraph.errors import Problem
from nodegraph.graph import Graph, GraphNode, check_link, is_link, topological_order
from nodegraph.modes import never_runs, resolve_modes
from nodegraph.params import ParamError, describe
from nodegraph.registry import Registry


def validate(graph: Graph, registry: Registry) -> list[Problem]:
    """Every problem in the graph, in one pass. An empty list means the graph can run.

    Judges the graph that runs (:func:`nodegraph.modes.resolve_modes`): a muted or bypassed node's own
    fields do not matter, a link through a bypassed node or a reroute is judged by what it passes on.
    """
    resolution = resolve_modes(graph, registry)
    problems: list[Problem] = list(resolution.problems)
    reported = {(p.node, p.field) for p in problems}
    for node in resolution.graph.nodes.values():
        problems.extend(p for p in _validate_node(resolution.graph, registry, node) if (p.node, p.field) not in reported)
    for node in graph.nodes.values():  # a note never runs, but a value it cannot hold is still a damaged file
        if never_runs(registry.get(node.type)):
            problems.extend(_validate_node(graph, registry, node))
    _, stuck = topological_order(graph)
    if stuck:
        problems.append(
            Problem(
                "cycle",
                "the graph has a cycle through these nodes: " + ", ".join(stuck),
                stuck[0],
                expected="an acyclic graph",
                found=f"{len(stuck)} node(s) on or behind a cycle",
            )
        )
    return problems


def _validate_node(graph: Graph, registry: Registry, node: GraphNode) -> list[Problem]:
    definition = registry.get(node.type)
    if definition is None:
        return [unknown_type_problem(node, registry)]
    problems: list[Problem] = []
    if node.version > definition.version:
        problems.append(
            Problem(
                "newer_node_version",
                f"saved by version {node.version} of {node.type}, but version {definition.version} is installed; "
                "update the plugin that provides it",
                node.id,
                expected=f"version <= {definition.version}",
                found=f"version {node.version}",
            )
        )
    for name, value in node.params.items():
        param = definition.param(name)
        if param is None:
            problems.append(
                Problem(
                    "unknown_param",
                    f"{node.type} has no parameter {name!r}",
                    node.id,
                    name,
                    expected="one of " + (", ".join(p.name for p in definition.params) or "(no parameters)"),
                    found=describe(value),
                )
            )
            continue
        if name in node.inputs:
            continue  # driven by a link; checked when the value arrives
        try:
            param.check(value)
        except ParamError as exc:
            problems.append(Problem("bad_param", f"invalid value for {name!r}", node.id, name, exc.expected, exc.found))
    for name, link in node.inputs.items():
        if not is_link(link):
            problems.append(
                Problem("bad_link", "an input must be [source node id, output name]", node.id, name, "a pair of strings", describe(link))
            )
            continue
        problem = check_link(graph, registry, link[0], link[1], node.id, name)
        if problem is not None:
            problems.append(problem)
    for spec in definition.inputs:
        if not spec.optional and spec.name not in node.inputs:
            problems.append(
                Problem("missing_input", f"required input {spec.name!r} is not connected", node.id, spec.name, spec.type.name, "nothing")
            )
    for name in node.param_inputs:
        param = definition.param(name)
        if param is None:
            problems.append(
                Problem("unknown_param_input", f"{node.type} has no parameter {name!r} to show as an input", node.id, name,
                        expected="one of " + (", ".join(p.name for p in definition.params) or "(no parameters)"), found=repr(name))
            )
        elif name not in node.inputs:
            problems.append(
                Problem("missing_input", f"parameter {name!r} is an input socket but nothing is connected to it; connect a "
                        "node or turn it back into a field", node.id, name, param.socket_type.name, "nothing")
            )
    return problems


def unknown_type_problem(node: GraphNode, registry: Registry | None = None) -> Problem:
    from nodegraph.plugins import explain_missing

    comfy = node.extra.get("comfy")
    if isinstance(comfy, dict) and isinstance(comfy.get("class_type"), str):  # a ComfyUI node kept from an import
        from nodegraph.comfy.placeholders import placeholder_problem

        return placeholder_problem(node, comfy)

    namespace = node.type.rsplit(".", 1)[0] if "." in node.type else node.type
    reason = explain_missing(node.type, registry)
    if reason is not None:  # a plugin we know about: say what went wrong with it
        message = (
            f"node type {node.type!r} is not available: {reason}. Run `nodegraph plugins` for details; "
            "the node's data is kept as it is until then"
        )
    else:
        message = (
            f"node type {node.type!r} is not installed; it comes from the plugin {namespace!r}. "
            "Install that plugin, or remove the node (its data is kept as it is until then)"
        )
    return Problem("unknown_node_type", message, node.id, expected="an installed node type", found=repr(node.type))
