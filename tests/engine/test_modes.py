"""Bypass, mute, reroutes and notes: what runs, counted, and what the readers receive."""

from __future__ import annotations

import json

import pytest

from nodegraph.cli import main as cli
from nodegraph.errors import WorkflowError
from nodegraph.executor import Executor
from nodegraph.graph import BYPASS, MUTE, Graph, LinkRefused
from nodegraph.model_folders import ModelFolders
from nodegraph.node import Input, Output, node
from nodegraph.types import INT, STRING
from nodegraph.validation import validate
from nodegraph.workflow import FORMAT, save_workflow

from .counting import RUNS, make_registry


@node(
    "test.Pair",
    inputs=[Input("a", INT), Input("b", INT), Input("label", STRING, optional=True)],
    outputs=[Output("first", INT), Output("second", INT), Output("text", STRING)],
)
def pair(ctx, a: int, b: int, label: str | None):
    RUNS[ctx.node_id] += 1
    return a * 10, b * 10, f"{label}!"


@pytest.fixture(autouse=True)
def _reset_counts():
    RUNS.clear()


@pytest.fixture
def registry():
    registry = make_registry()
    registry.register(pair)
    registry.register_module("nodes.canvas_nodes")
    return registry


def run(registry, graph, targets=None):
    return Executor(registry, folders=ModelFolders([])).run(graph, targets)


def chain3(registry) -> Graph:
    """c (1) -> add (+5) -> sink."""
    graph = Graph()
    graph.add_node(registry, "test.Const", "c", {"value": 1})
    graph.add_node(registry, "test.Add", "add", {"offset": 5})
    graph.add_node(registry, "test.Sink", "sink")
    graph.connect(registry, "c", "value", "add", "a")
    graph.connect(registry, "add", "sum", "sink", "value")
    return graph


def test_a_bypassed_node_does_not_run_and_its_reader_gets_its_input():
    registry = make_registry()
    graph = chain3(registry)
    graph.nodes["add"].mode = BYPASS
    result = run(registry, graph)
    assert result.outputs["sink"] == {"value": 1}
    assert RUNS == {"c": 1, "sink": 1}
    assert result.skipped == {"add": "bypassed"}


def test_bypass_pairs_inputs_with_outputs_of_the_same_type_in_order(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "x", {"value": 2})
    graph.add_node(registry, "test.Const", "y", {"value": 3})
    graph.add_node(registry, "test.Pair", "p")
    graph.add_node(registry, "test.Sink", "s1")
    graph.add_node(registry, "test.Sink", "s2")
    graph.connect(registry, "x", "value", "p", "a")
    graph.connect(registry, "y", "value", "p", "b")
    graph.connect(registry, "p", "first", "s1", "value")
    graph.connect(registry, "p", "second", "s2", "value")
    assert run(registry, graph).outputs == {"s1": {"value": 20}, "s2": {"value": 30}}
    RUNS.clear()
    graph.nodes["p"].mode = BYPASS
    outputs = run(registry, graph).outputs
    assert outputs == {"s1": {"value": 2}, "s2": {"value": 3}}
    assert "p" not in RUNS


def test_reading_an_output_a_bypassed_node_cannot_pass_on_is_reported_before_anything_runs(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "x", {"value": 2})
    graph.add_node(registry, "test.Pair", "p")
    graph.add_node(registry, "core.Show", "show")
    graph.connect(registry, "x", "value", "p", "a")
    graph.connect(registry, "x", "value", "p", "b")
    graph.connect(registry, "p", "text", "show", "value")
    graph.nodes["p"].mode = BYPASS
    with pytest.raises(WorkflowError) as caught:
        run(registry, graph)
    (problem,) = caught.value.problems
    assert (problem.code, problem.node, problem.field) == ("nothing_to_pass_on", "show", "value")
    assert "'p' is bypassed and would pass on its input 'label' as 'text'" in problem.message
    assert "nothing is connected" in problem.message
    assert RUNS == {}
    graph.nodes["show"].inputs["value"] = ("p", "first")  # an INT passes: the first INT input
    assert run(registry, graph).outputs["show"] == {"text": "2"}


def test_a_muted_node_and_what_needs_it_do_not_run_and_others_do():
    registry = make_registry()
    graph = chain3(registry)
    graph.add_node(registry, "test.Const", "other", {"value": 9})
    graph.add_node(registry, "test.Sink", "sink2")
    graph.connect(registry, "other", "value", "sink2", "value")
    graph.nodes["add"].mode = MUTE
    result = run(registry, graph)
    assert result.outputs == {"sink2": {"value": 9}}
    assert RUNS == {"other": 1, "sink2": 1}  # c fed only the muted node: nothing asked for it
    assert result.skipped["add"] == "muted"
    assert "needs a node that does not run" in result.skipped["sink"]
    assert validate(graph, registry) == []


def test_an_optional_input_fed_by_a_muted_node_counts_as_unconnected():
    registry = make_registry()
    graph = chain3(registry)
    graph.add_node(registry, "test.Const", "extra", {"value": 100})
    graph.connect(registry, "extra", "value", "add", "b")
    assert run(registry, graph).outputs["sink"] == {"value": 106}
    graph.nodes["extra"].mode = MUTE
    RUNS.clear()
    assert run(registry, graph).outputs["sink"] == {"value": 6}
    assert "extra" not in RUNS


def test_a_muted_node_with_missing_inputs_is_not_a_problem():
    registry = make_registry()
    graph = chain3(registry)
    graph.add_node(registry, "test.Add", "loose")  # required input a left open
    assert [p.code for p in validate(graph, registry)] == ["missing_input"]
    graph.nodes["loose"].mode = MUTE
    assert validate(graph, registry) == []


def test_reroutes_pass_values_and_links_through_them_are_checked_by_what_feeds_them(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "c", {"value": 4})
    graph.add_node(registry, "core.Reroute", "r1")
    graph.add_node(registry, "core.Reroute", "r2")
    graph.add_node(registry, "test.Sink", "sink")
    graph.add_node(registry, "core.StringJoin", "join")
    graph.connect(registry, "c", "value", "r1", "value")
    graph.connect(registry, "r1", "value", "r2", "value")
    graph.connect(registry, "r2", "value", "sink", "value")
    with pytest.raises(LinkRefused, match="expected STRING, found INT"):
        graph.connect(registry, "r2", "value", "join", "a")
    result = run(registry, graph)
    assert result.outputs == {"sink": {"value": 4}}
    assert RUNS == {"c": 1, "sink": 1}


def test_a_note_never_runs_and_is_never_a_default_target(registry):
    graph = Graph()
    graph.add_node(registry, "core.Note", "note", {"text": "# Read me\n*first*"})
    graph.add_node(registry, "test.Const", "c", {"value": 4})
    result = run(registry, graph)
    assert list(result.outputs) == ["c"]
    assert validate(graph, registry) == []


def test_a_parameter_input_without_a_link_is_a_problem_and_with_one_drives_the_parameter():
    registry = make_registry()
    graph = chain3(registry)
    graph.nodes["add"].param_inputs = ["offset"]
    problems = validate(graph, registry)
    assert [(p.code, p.node, p.field) for p in problems] == [("missing_input", "add", "offset")]
    graph.add_node(registry, "core.Int", "offset", {"value": 50})
    graph.connect(registry, "offset", "value", "add", "offset")
    assert run(registry, graph).outputs["sink"] == {"value": 51}


def test_one_primitive_drives_several_parameter_inputs():
    registry = make_registry()
    graph = chain3(registry)
    graph.add_node(registry, "test.Add", "add2")
    graph.add_node(registry, "test.Sink", "sink2")
    graph.connect(registry, "c", "value", "add2", "a")
    graph.connect(registry, "add2", "sum", "sink2", "value")
    graph.add_node(registry, "core.Int", "shared", {"value": 7})
    for target in ("add", "add2"):
        graph.nodes[target].param_inputs = ["offset"]
        graph.connect(registry, "shared", "value", target, "offset")
    outputs = run(registry, graph).outputs
    assert outputs == {"sink": {"value": 8}, "sink2": {"value": 8}}


def _cli_workflow(tmp_path, modes: dict[str, str]) -> str:
    nodes = {
        "a": {"type": "core.Int", "params": {"value": 2}},
        "double": {"type": "core.IntMath", "params": {"operation": "multiply", "b_value": 2}, "inputs": {"a": ["a", "value"]}},
        "show": {"type": "core.Show", "inputs": {"value": ["double", "result"]}},
        "show_a": {"type": "core.Show", "inputs": {"value": ["a", "value"]}},
        "note": {"type": "core.Note", "params": {"text": "**bold** note"}},
    }
    for node_id, mode in modes.items():
        nodes[node_id]["mode"] = mode
    path = tmp_path / "modes.json"
    path.write_text(json.dumps({"format": FORMAT, "version": 2, "nodes": nodes}))
    return str(path)


def _finished(capsys) -> tuple[list[str], str]:
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return sorted(e["node"] for e in events if e.get("event") == "node_finished"), out


@pytest.mark.parametrize(
    ("modes", "ran"),
    [
        ({}, ["a", "double", "show", "show_a"]),
        ({"double": "bypass"}, ["a", "show", "show_a"]),
        ({"double": "mute"}, ["a", "show_a"]),
        ({"show_a": "mute", "double": "mute"}, []),
    ],
)
def test_nodegraph_run_honours_bypass_and_mute(tmp_path, capsys, modes, ran):
    path = _cli_workflow(tmp_path, modes)
    assert cli(["run", path, "--events", "json", "--output", str(tmp_path / "out")]) == 0
    finished, _ = _finished(capsys)
    assert finished == ran


def test_a_bypassed_math_node_hands_its_input_to_show(tmp_path, capsys):
    path = _cli_workflow(tmp_path, {"double": "bypass"})
    assert cli(["run", path, "--events", "json", "--node", "show"]) == 0
    out = capsys.readouterr().out
    shown = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"node_log"' in line]
    assert [e["message"] for e in shown if e["node"] == "show"] == ["2"]


def test_a_saved_graph_keeps_its_modes(tmp_path, registry):
    graph = chain3(registry)
    graph.nodes["add"].mode = MUTE
    path = tmp_path / "w.json"
    save_workflow(graph, path)
    assert json.loads(path.read_text())["nodes"]["add"]["mode"] == "mute"


def test_a_bypassed_node_without_an_input_of_its_output_type_says_so(registry):
    graph = chain3(registry)
    graph.nodes["c"].mode = BYPASS
    (problem,) = validate(graph, registry)
    assert (problem.node, problem.field) == ("add", "a")
    assert "'c' is bypassed and has no INT input to pass on as its output 'value'" in problem.message
