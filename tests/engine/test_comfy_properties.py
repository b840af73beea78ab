"""Property tests: random mutations of ComfyUI workflows (API and both UI schemas, as JSON and inside PNGs)
import, or give a structured error; never an unexpected exception. What imports also validates, saves,
reloads and exports (or names what it cannot export) without one."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodegraph.comfy import export_api_prompt, load_comfy
from nodegraph.comfy.export import ExportError
from nodegraph.errors import Problem, WorkflowError
from nodegraph.validation import validate
from nodegraph.workflow import parse_workflow, to_document
from tests.engine.comfy_helpers import deep, fixture, png_with_texts, registry

REGISTRY = registry()
FIXTURES = {name: fixture(name) for name in
            ("api_txt2img_lora.json", "api_custom_nodes.json", "ui_v04_features.json", "ui_v1_nested.json")}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=True),
                    st.text(max_size=6), st.sampled_from(["fixed", "randomize", "-10", "-20", "KSampler", "*"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=8)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``doc``."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out.extend(_paths(value, (*prefix, index)))
    return out


def _mutate(doc: Any, path: tuple, action: str, new: Any) -> Any:
    if not path:
        return new if action == "replace" else doc
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "replace":
        parent[key] = new
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(key, deep({"v": parent[key]})["v"])
    elif action == "shuffle" and isinstance(parent[key], list):
        parent[key] = list(reversed(parent[key]))
    else:
        parent[key] = new
    return doc


@st.composite
def mutated_workflows(draw):
    name = draw(st.sampled_from(sorted(FIXTURES)))
    doc = deep(FIXTURES[name])
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "replace", "replace", "duplicate", "shuffle"]))
        doc = _mutate(doc, path, action, draw(values))
    return doc


def _structured(problems: list[Problem]) -> None:
    assert problems
    for problem in problems:
        assert isinstance(problem, Problem) and problem.code and problem.message
        json.dumps(problem.to_json())


def _check(data: Any) -> None:
    try:
        result = load_comfy(data, REGISTRY, source="mutated.json")
    except WorkflowError as exc:
        _structured(exc.problems)
        return
    graph = result.graph
    for problem in validate(graph, REGISTRY):
        json.dumps(problem.to_json())
    json.dumps(result.report.to_json(), allow_nan=True)
    result.report.lines()
    document = to_document(graph)
    reloaded = parse_workflow(json.loads(json.dumps(document, allow_nan=True)), REGISTRY)
    assert set(reloaded.nodes) == set(graph.nodes)
    try:
        export_api_prompt(graph, REGISTRY)
    except ExportError as exc:
        _structured(exc.problems)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_workflows())
def test_mutated_workflows_import_or_give_a_structured_error(doc):
    _check(doc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_workflows(), st.sampled_from(["workflow", "prompt"]))
def test_mutated_workflows_inside_pngs_import_or_give_a_structured_error(doc, key):
    _check(png_with_texts({key: json.dumps(doc, allow_nan=True)}))


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_give_a_structured_error(data):
    try:
        load_comfy(data, REGISTRY)
    except WorkflowError as exc:
        _structured(exc.problems)
