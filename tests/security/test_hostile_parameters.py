"""Red team, parameter values: every parameter of every installed node type is given hostile values in a
workflow file. Loading and validating never raises anything but a WorkflowError; a value its kind does not
accept is reported naming the node and the field (with what was expected and found); one it accepts is not.

The acceptance rule below is written from the parameter kinds' documentation, not taken from their code."""

from __future__ import annotations

import math

import pytest

from nodegraph.errors import WorkflowError
from nodegraph.installed import default_registry
from nodegraph.params import INT_MAX, INT_MIN
from nodegraph.validation import validate
from nodegraph.workflow import parse_workflow

HOSTILE = (
    None, [], {}, [1, 2], {"a": 1}, True, False, -1, 0, 7, 2**63, -(2**63) - 1, 10**30, 1.5, -0.0, 1e308, -1e308,
    float("nan"), float("inf"), "", "0", "x" * 10_000, "\0", "../../etc/passwd", "/dev/zero", "{a.__class__}",
    "émoji 🎨", "C:\\Windows\\system32",
)
CASES = 0  # counted as the tests run (reported by tests/security/README.md's command)


def accepted(kind: str, param, value) -> bool:
    """Whether a value of the workflow file is acceptable for a parameter, from the kinds' documented rules."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    low = getattr(param, "min", None)
    high = getattr(param, "max", None)
    if kind in ("int", "seed"):
        whole = number and (isinstance(value, int) or (math.isfinite(value) and float(value).is_integer()))
        if not whole:
            return False
        low = INT_MIN if low is None else low
        high = INT_MAX if high is None else high
        return low <= value <= high
    if kind == "float":
        return number and math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "choice":
        return value in param.choices
    return isinstance(value, str)  # string, text, model_file, image_file: any text (files are checked later)


def node_types():
    return [d.id for d in default_registry() if d.params]


@pytest.mark.parametrize("node_type", node_types())
def test_every_hostile_parameter_value_is_accepted_or_reported_naming_node_and_field(node_type):
    global CASES
    registry = default_registry()
    definition = registry.get(node_type)
    for param in definition.params:
        for value in HOSTILE:
            CASES += 1
            doc = {"format": "nodegraph.workflow", "version": 1,
                   "nodes": {"victim": {"type": node_type, "version": definition.version, "params": {param.name: value}}}}
            try:
                graph = parse_workflow(doc, registry)
            except WorkflowError as exc:  # a migration refused it: still a report, not a crash
                problems = exc.problems
            else:
                problems = validate(graph, registry)
            mine = [p for p in problems if p.field == param.name]
            case = f"{node_type}.{param.name} = {value!r:.40}"
            if accepted(param.kind, param, value):
                assert mine == [], case
            else:
                assert mine, f"{case} was not reported"
                assert all(p.node == "victim" and p.expected and p.found for p in mine), case
