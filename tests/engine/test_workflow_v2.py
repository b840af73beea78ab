"""Workflow file version 2: node modes, parameter inputs, groups; version 1 files migrate unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nodegraph.errors import WorkflowError
from nodegraph.installed import default_registry
from nodegraph.workflow import FORMAT, VERSION, dumps, parse_workflow, to_document

from .counting import make_registry

ROOT = Path(__file__).resolve().parents[2]


def _doc(nodes, version=2, **top):
    return {"format": FORMAT, "version": version, "nodes": nodes, **top}


def test_version_2_keys_round_trip_exactly():
    registry = make_registry()
    doc = _doc(
        {
            "c": {"type": "test.Const", "version": 1, "params": {"value": 1}, "mode": "bypass"},
            "a": {"type": "test.Add", "version": 1, "inputs": {"a": ["c", "value"], "offset": ["c", "value"]},
                  "param_inputs": ["offset"], "mode": "mute", "plugin_data": {"kept": [1, 2]}},
        },
        groups=[{"title": "Numbers", "color": "#3a5f8a", "rect": [0, 0, 400, 300], "locked": True}],
        meta={"title": "t"},
        future_top_level={"x": 1},
    )
    graph = parse_workflow(doc, registry)
    assert graph.nodes["c"].mode == "bypass" and graph.nodes["a"].mode == "mute"
    assert graph.nodes["a"].param_inputs == ["offset"]
    assert graph.groups[0]["title"] == "Numbers"
    assert to_document(graph) == doc
    assert parse_workflow(json.loads(dumps(graph)), registry).groups == graph.groups


def test_every_shipped_version_1_workflow_migrates_unchanged():
    registry = default_registry()
    for path in sorted((ROOT / "workflows").glob("*.json")):
        raw = json.loads(path.read_text())
        graph = parse_workflow(raw, registry)
        migrated = to_document(graph)
        assert migrated["version"] == VERSION == 2
        # the same nodes (the canonical writer leaves out empty params and inputs)
        written = {i: {k: v for k, v in n.items() if v != {}} for i, n in raw["nodes"].items()}
        assert migrated["nodes"] == written, path.name
        assert all(n.mode is None and n.param_inputs == [] for n in graph.nodes.values())


@pytest.mark.parametrize(
    ("entry", "field", "expected"),
    [
        ({"mode": "sleep"}, "mode", "'bypass' or 'mute' (or no mode)"),
        ({"param_inputs": "offset"}, "param_inputs", "a list of names"),
        ({"param_inputs": [3]}, "param_inputs", "a list of names"),
    ],
)
def test_bad_node_mode_or_parameter_inputs_are_refused_by_field(entry, field, expected):
    doc = _doc({"c": {"type": "test.Const", **entry}})
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(doc, make_registry())
    (problem,) = caught.value.problems
    assert (problem.node, problem.field, problem.expected) == ("c", field, expected)


@pytest.mark.parametrize(
    ("groups", "field"),
    [
        ({"title": "x"}, "groups"),
        (["not a group"], "groups[0]"),
        ([{"title": "x", "rect": [0, 0, 10]}], "groups[0].rect"),
        ([{"title": "x", "rect": [0, 0, -1, 5]}], "groups[0].rect"),
        ([{"title": 5, "rect": [0, 0, 1, 5]}], "groups[0].title"),
        ([{"title": "x", "color": "red", "rect": [0, 0, 1, 5]}], "groups[0].color"),
    ],
)
def test_bad_groups_are_refused_with_the_group_and_field(groups, field):
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(_doc({}, groups=groups), make_registry())
    assert [p.field for p in caught.value.problems] == [field]


def test_an_unknown_parameter_input_is_a_problem_naming_the_parameters():
    from nodegraph.validation import validate

    registry = make_registry()
    graph = parse_workflow(_doc({"c": {"type": "test.Const", "param_inputs": ["valu"]}}), registry)
    (problem,) = validate(graph, registry)
    assert (problem.code, problem.field, problem.expected) == ("unknown_param_input", "valu", "one of value")
