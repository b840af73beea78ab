"""Property tests: random graphs and random JSON either load and validate, or give structured errors."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodegraph.errors import Problem, WorkflowError
from nodegraph.executor import Executor
from nodegraph.model_folders import ModelFolders
from nodegraph.validation import validate
from nodegraph.workflow import FORMAT, dumps, parse_workflow

from .counting import make_registry

REGISTRY = make_registry()
TYPES = ["test.Const", "test.Add", "test.Half", "test.Sink", "test.Blob", "core.Math", "core.Show", "nope.Missing"]
NAMES = ["a", "b", "x", "value", "sum", "offset", "half", "blob", "result", "zz"]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=5))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=10)


@st.composite
def random_documents(draw):
    ids = draw(st.lists(st.sampled_from(["n0", "n1", "n2", "n3", "n4", "n5"]), unique=True, max_size=6))
    nodes = {}
    for node_id in ids:
        entry = {"type": draw(st.sampled_from(TYPES))}
        if draw(st.booleans()):
            entry["params"] = draw(st.dictionaries(st.sampled_from(NAMES), json_scalars, max_size=3))
        if draw(st.booleans()):
            entry["inputs"] = draw(
                st.dictionaries(
                    st.sampled_from(NAMES),
                    st.one_of(st.tuples(st.sampled_from([*ids, "ghost"]), st.sampled_from(NAMES)).map(list), json_values),
                    max_size=3,
                )
            )
        if draw(st.booleans()):
            entry["version"] = draw(st.one_of(st.integers(-1, 3), json_scalars))
        nodes[node_id] = entry
    return {"format": FORMAT, "version": draw(st.sampled_from([0, 1, 1, 1, 2])), "nodes": nodes}


def _check_problem(problem):
    assert isinstance(problem, Problem)
    assert problem.code and problem.message
    json.dumps(problem.to_json())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_documents())
def test_random_graphs_load_and_validate_or_give_structured_errors(doc):
    try:
        graph = parse_workflow(doc, REGISTRY)
    except WorkflowError as exc:
        assert exc.problems
        for problem in exc.problems:
            _check_problem(problem)
        return
    problems = validate(graph, REGISTRY)
    for problem in problems:
        _check_problem(problem)
    again = parse_workflow(json.loads(dumps(graph)), REGISTRY)
    assert dumps(again) == dumps(graph)
    if not problems:
        executor = Executor(REGISTRY, folders=ModelFolders([]))
        try:
            executor.run(graph, list(graph.nodes))
        except Exception as exc:  # a valid graph may still fail inside a node, but only as a node failure
            from nodegraph.errors import NodeExecutionError

            assert isinstance(exc, NodeExecutionError), exc


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json_never_raises_anything_but_a_workflow_error(value):
    for doc in (value, {"format": FORMAT, "version": 1, "nodes": value}):
        try:
            graph = parse_workflow(doc, REGISTRY)
        except WorkflowError as exc:
            assert all(isinstance(p, Problem) for p in exc.problems)
            continue
        validate(graph, REGISTRY)
