"""Seed "control after generate": stored with the seed in the workflow file, applied between runs."""

from __future__ import annotations

import json
import random

from nodegraph.graph import Graph
from nodegraph.installed import default_registry
from nodegraph.params import SEED_MAX
from nodegraph.seed_control import CONTROLS_KEY, apply_controls, control_of, control_problems, next_value, set_control
from nodegraph.workflow import load_workflow, save_workflow


def test_each_control_moves_the_seed_as_named():
    assert next_value("fixed", 7, 0, 10) == 7
    assert next_value("increment", 7, 0, 10) == 8
    assert next_value("decrement", 7, 0, 10) == 6
    assert next_value("increment", 10, 0, 10) == 0  # wraps around at the bounds
    assert next_value("decrement", 0, 0, 10) == 10
    values = {next_value("randomize", 7, 0, SEED_MAX, random.Random(k)) for k in range(20)}
    assert len(values) > 15 and all(0 <= v < 2**32 for v in values)


def _sampler_graph():
    registry = default_registry()
    graph = Graph()
    graph.add_node(registry, "core.KSampler", "sampler", {"seed": 41})
    graph.add_node(registry, "core.VAEEncode", "encode", {"seed": 5})
    return registry, graph


def test_controls_round_trip_through_the_workflow_file(tmp_path):
    registry, graph = _sampler_graph()
    set_control(graph.nodes["sampler"], "seed", "increment")
    path = tmp_path / "w.json"
    save_workflow(graph, path)
    assert json.loads(path.read_text())["nodes"]["sampler"][CONTROLS_KEY] == {"seed": "increment"}
    loaded = load_workflow(path, registry)
    assert control_of(loaded.nodes["sampler"], "seed") == "increment"
    assert control_of(loaded.nodes["encode"], "seed") == "fixed"  # absent means fixed
    set_control(loaded.nodes["sampler"], "seed", "fixed")
    assert CONTROLS_KEY not in loaded.nodes["sampler"].extra


def test_apply_controls_changes_only_controlled_seeds():
    registry, graph = _sampler_graph()
    set_control(graph.nodes["sampler"], "seed", "decrement")
    assert apply_controls(graph, registry) == {("sampler", "seed"): (41, 40)}
    assert graph.nodes["sampler"].params["seed"] == 40 and graph.nodes["encode"].params["seed"] == 5


def test_a_seed_driven_by_a_link_is_left_alone():
    registry, graph = _sampler_graph()
    graph.add_node(registry, "core.Int", "n", {"value": 3})
    graph.nodes["sampler"].inputs["seed"] = ("n", "value")
    set_control(graph.nodes["sampler"], "seed", "increment")
    assert apply_controls(graph, registry) == {}


def test_bad_controls_are_problems_naming_node_and_field():
    registry, graph = _sampler_graph()
    graph.nodes["sampler"].extra[CONTROLS_KEY] = {"seed": "sometimes", "steps": "increment"}
    graph.nodes["encode"].extra[CONTROLS_KEY] = "increment"
    found = {(p.node, p.field, p.found) for p in control_problems(graph, registry)}
    assert found == {("sampler", "seed", "'sometimes'"), ("sampler", "steps", "'steps'"), ("encode", "controls", "str")}
