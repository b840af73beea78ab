"""Parameter overrides for one run: ``nodegraph run --set NODE.PARAM=VALUE`` (text, parsed by the parameter's
kind) and the server's ``{"set": {"NODE.PARAM": value}}`` (JSON values). Each is checked against the
parameter's type and bounds; every problem names the node and field."""

from __future__ import annotations

from typing import Any

from nodegraph.errors import Problem
from nodegraph.graph import Graph
from nodegraph.params import ParamError, describe
from nodegraph.registry import Registry


def set_param(graph: Graph, registry: Registry, key: str, value: Any, *, text: bool) -> Problem | None:
    """Set ``NODE.PARAM`` (``key``) to ``value`` (parsed from text when ``text``); the problem, or None."""
    node_id, dot, name = key.rpartition(".")
    if not dot or not node_id or not name:
        return Problem("bad_override", "write overrides as NODE.PARAM=VALUE", expected="NODE.PARAM=VALUE", found=repr(key))
    if node_id not in graph.nodes:
        return Problem("bad_override", "no such node", node_id, name, "a node id of the workflow", repr(node_id))
    definition = registry.get(graph.nodes[node_id].type)
    param = definition.param(name) if definition else None
    if param is None:
        names = ", ".join(p.name for p in definition.params) if definition else "(unknown node type)"
        return Problem("bad_override", "no such parameter", node_id, name, "one of " + names, repr(name))
    try:
        graph.nodes[node_id].params[name] = param.parse_text(value) if text else param.check(value)
    except ParamError as exc:
        return Problem("bad_override", "invalid value", node_id, name, exc.expected, exc.found)
    return None


def apply_text_overrides(graph: Graph, registry: Registry, items: list[str]) -> list[Problem]:
    """``NODE.PARAM=VALUE`` items (the command line); returns the problems (empty when all applied)."""
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        problem = set_param(graph, registry, key, value, text=True) if sep else Problem(
            "bad_override", "write overrides as NODE.PARAM=VALUE", expected="NODE.PARAM=VALUE", found=repr(item))
        if problem is not None:
            problems.append(problem)
    return problems


def apply_value_overrides(graph: Graph, registry: Registry, overrides: Any, field: str = "set") -> list[Problem]:
    """``{"NODE.PARAM": value}`` with JSON values (a request body); returns the problems."""
    if overrides is None:
        return []
    if not isinstance(overrides, dict):
        return [Problem("bad_override", f"'{field}' must map NODE.PARAM to values", field=field, expected="an object",
                        found=describe(overrides))]
    found = (set_param(graph, registry, str(key), value, text=False) for key, value in overrides.items())
    return [p for p in found if p is not None]
