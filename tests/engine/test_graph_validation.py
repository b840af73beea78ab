"""Validation reports every problem in one pass, each with node, field, expected and found."""

from __future__ import annotations

import pytest

from nodegraph.graph import Graph, GraphNode, LinkRefused, topological_order
from nodegraph.validation import validate

from .counting import make_registry


@pytest.fixture
def registry():
    return make_registry()


def _codes(problems):
    return sorted((p.code, p.node, p.field) for p in problems)


def test_valid_graph_has_no_problems(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "c")
    graph.add_node(registry, "test.Add", "a")
    graph.connect(registry, "c", "value", "a", "a")
    assert validate(graph, registry) == []


def test_every_problem_is_reported_in_one_pass(registry):
    graph = Graph(
        [
            GraphNode("c", "test.Const", 1, {"value": 5000, "colour": "red"}),
            GraphNode("a", "test.Add", 1, {"offset": "x"}, {"b": ("ghost", "value")}),
            GraphNode("h", "test.Half", 1, {}, {"x": ("c", "nope")}),
            GraphNode("p", "plugin_x.Fancy", 3, {"k": 1}),
            GraphNode("s", "test.Sink", 1, {}, {"value": ("blob", "blob")}),
            GraphNode("blob", "test.Blob", 1, {}),
            GraphNode("l", "test.Add", 1, {}, {"a": ["c"]}),  # type: ignore[dict-item]
        ]
    )
    problems = validate(graph, registry)
    assert _codes(problems) == [
        ("bad_link", "l", "a"),
        ("bad_param", "a", "offset"),
        ("bad_param", "c", "value"),
        ("incompatible_link", "s", "value"),
        ("missing_input", "a", "a"),
        ("missing_output", "h", "x"),
        ("missing_source", "a", "b"),
        ("unknown_node_type", "p", ""),
        ("unknown_param", "c", "colour"),
    ]
    by_code = {p.code: p for p in problems}
    assert by_code["bad_param"].expected and by_code["bad_param"].found
    assert by_code["incompatible_link"].expected == "INT" and by_code["incompatible_link"].found == "TEST_BLOB"
    assert "plugin_x" in by_code["unknown_node_type"].message


def test_cycle_is_reported_with_its_nodes(registry):
    graph = Graph(
        [
            GraphNode("a", "test.Add", 1, {}, {"a": ("b", "sum")}),
            GraphNode("b", "test.Add", 1, {}, {"a": ("a", "sum")}),
            GraphNode("c", "test.Const", 1, {}),
        ]
    )
    (problem,) = validate(graph, registry)
    assert problem.code == "cycle" and "a, b" in problem.message
    order, stuck = topological_order(graph)
    assert order == ["c"] and stuck == ["a", "b"]


def test_newer_node_version_than_installed_is_reported(registry):
    graph = Graph([GraphNode("c", "test.Const", 9, {})])
    (problem,) = validate(graph, registry)
    assert problem.code == "newer_node_version" and problem.found == "version 9"


def test_connect_refuses_incompatible_types_unknown_names_and_cycles(registry):
    graph = Graph()
    graph.add_node(registry, "test.Blob", "blob")
    graph.add_node(registry, "test.Add", "a1")
    graph.add_node(registry, "test.Add", "a2")
    with pytest.raises(LinkRefused, match="expected INT, found TEST_BLOB"):
        graph.connect(registry, "blob", "blob", "a1", "a")
    with pytest.raises(LinkRefused, match="no input 'zzz'"):
        graph.connect(registry, "a1", "sum", "a2", "zzz")
    graph.connect(registry, "a1", "sum", "a2", "a")
    with pytest.raises(LinkRefused, match="cycle"):
        graph.connect(registry, "a2", "sum", "a1", "a")
    with pytest.raises(LinkRefused, match="cycle"):
        graph.connect(registry, "a1", "sum", "a1", "b")
    assert graph.nodes["a1"].inputs == {}


def test_a_parameter_can_be_driven_by_a_compatible_link(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "c")
    graph.add_node(registry, "core.String", "s")
    graph.add_node(registry, "test.Add", "a")
    graph.connect(registry, "c", "value", "a", "offset")
    with pytest.raises(LinkRefused, match="expected INT, found STRING"):
        graph.connect(registry, "s", "value", "a", "offset")


def test_removing_a_node_removes_its_links(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "c")
    graph.add_node(registry, "test.Add", "a")
    graph.connect(registry, "c", "value", "a", "a")
    removed = graph.remove_node("c")
    assert [(link.source, link.target) for link in removed] == [("c", "a")]
    assert graph.nodes["a"].inputs == {}


def test_add_node_checks_parameters_and_ids(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "c")
    with pytest.raises(ValueError, match="already exists"):
        graph.add_node(registry, "test.Const", "c")
    with pytest.raises(KeyError, match="unknown node type"):
        graph.add_node(registry, "nope.Nope")
    with pytest.raises(ValueError, match="at most 1000"):
        graph.add_node(registry, "test.Const", params={"value": 10**6})
    assert graph.add_node(registry, "test.Const").id == "const_1"
