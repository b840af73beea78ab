"""Seed "control after generate": what a seed does after each run of "Run N times" or ``--repeat N``.

A node stores its controls next to its parameters in the workflow file, one per seed parameter::

    "sampler": {"type": "core.KSampler", "params": {"seed": 7, ...}, "controls": {"seed": "increment"}}

- ``fixed`` (the default, also when the key is absent): the seed stays; the next run is a cache hit;
- ``increment`` / ``decrement``: one up or down, wrapping around at the parameter's bounds;
- ``randomize``: a fresh random seed.

The engine keeps unknown node keys in ``GraphNode.extra``, so the controls travel with the node through
loading, saving, copying and pasting. :func:`apply_controls` is what runs between two runs.
"""

from __future__ import annotations

import random
from typing import Any

from nodegraph.errors import Problem
from nodegraph.graph import Graph, GraphNode
from nodegraph.registry import Registry

CONTROLS_KEY = "controls"
CONTROLS = ("fixed", "increment", "decrement", "randomize")
RANDOM_MAX = 2**32 - 1  # random seeds stay readable (the editor's dice picks from the same range)


def controls_of(node: GraphNode) -> dict[str, str]:
    """The node's seed controls as stored (possibly malformed: see :func:`control_problems`)."""
    found = node.extra.get(CONTROLS_KEY)
    return dict(found) if isinstance(found, dict) else {}


def control_of(node: GraphNode, param: str) -> str:
    value = controls_of(node).get(param)
    return value if value in CONTROLS else "fixed"


def set_control(node: GraphNode, param: str, control: str) -> None:
    """Store ``control`` for ``param`` (``fixed`` removes the entry: it is the default)."""
    if control not in CONTROLS:
        raise ValueError(f"a seed control must be one of {', '.join(CONTROLS)}, found {control!r}")
    controls = controls_of(node)
    if control == "fixed":
        controls.pop(param, None)
    else:
        controls[param] = control
    if controls:
        node.extra[CONTROLS_KEY] = controls
    else:
        node.extra.pop(CONTROLS_KEY, None)


def next_value(control: str, value: int, low: int, high: int, rng: random.Random | None = None) -> int:
    """The seed after one run under ``control`` (``low``..``high`` are the parameter's bounds)."""
    if control == "increment":
        return low if value >= high else value + 1
    if control == "decrement":
        return high if value <= low else value - 1
    if control == "randomize":
        return (rng or random).randint(low, max(low, min(high, RANDOM_MAX)))
    return value


def apply_controls(graph: Graph, registry: Registry, rng: random.Random | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """Advance every controlled seed of ``graph`` in place; returns ``{(node, param): (old, new)}`` of changes.

    Seeds driven by a link are left alone (the value comes from elsewhere)."""
    changes: dict[tuple[str, str], tuple[int, int]] = {}
    for node in graph.nodes.values():
        definition = registry.get(node.type)
        if definition is None:
            continue
        for name in controls_of(node):
            param = definition.param(name)
            if param is None or param.kind != "seed" or name in node.inputs:
                continue
            control = control_of(node, name)
            old = node.params.get(name, param.default)
            low = param.min if param.min is not None else 0  # type: ignore[attr-defined]
            high = param.max if param.max is not None else 2**64 - 1  # type: ignore[attr-defined]
            new = next_value(control, int(old), int(low), int(high), rng)
            if new != old:
                node.params[name] = new
                changes[(node.id, name)] = (int(old), new)
    return changes


def control_problems(graph: Graph, registry: Registry, nodes: Any = None) -> list[Problem]:
    """Controls that name no seed parameter of their node, or no known control."""
    problems: list[Problem] = []
    for node_id in graph.nodes if nodes is None else nodes:
        node = graph.nodes.get(node_id)
        if node is None or CONTROLS_KEY not in node.extra:
            continue
        raw = node.extra[CONTROLS_KEY]
        if not isinstance(raw, dict):
            problems.append(Problem("bad_seed_control", "'controls' must map seed parameters to controls", node.id,
                                    CONTROLS_KEY, "an object such as {\"seed\": \"increment\"}", type(raw).__name__))
            continue
        definition = registry.get(node.type)
        for name, control in raw.items():
            param = definition.param(name) if definition is not None else None
            if definition is not None and (param is None or param.kind != "seed"):
                seeds = [p.name for p in definition.params if p.kind == "seed"]
                problems.append(Problem("bad_seed_control", f"{name!r} is not a seed parameter of {node.type}", node.id,
                                        name, "one of " + (", ".join(seeds) or "(no seed parameters)"), repr(name)))
            elif control not in CONTROLS:
                problems.append(Problem("bad_seed_control", "unknown seed control", node.id, name,
                                        "one of " + ", ".join(CONTROLS), repr(control)))
    return problems
