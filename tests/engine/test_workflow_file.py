"""The workflow file: canonical JSON, atomic save, migrations, unknown node types kept intact."""

from __future__ import annotations

import json
import os

import pytest

from nodegraph.errors import WorkflowError
from nodegraph.graph import Graph
from nodegraph.node import Output, node
from nodegraph.params import Int
from nodegraph.registry import Registry
from nodegraph.types import INT
from nodegraph.validation import validate
from nodegraph.workflow import FORMAT, dumps, load_workflow, parse_workflow, save_workflow, to_document

from .counting import make_registry


@pytest.fixture
def registry():
    return make_registry()


def _doc(nodes, version=1):
    return {"format": FORMAT, "version": version, "nodes": nodes}


def test_save_and_load_round_trip_is_identical(registry, tmp_path):
    graph = Graph(meta={"title": "demo"})
    graph.add_node(registry, "test.Const", "c", {"value": 3}, layout={"x": 10, "y": 20, "title": "Three"})
    graph.add_node(registry, "test.Add", "a")
    graph.connect(registry, "c", "value", "a", "a")
    path = tmp_path / "w.json"
    save_workflow(graph, path)
    text = path.read_text()
    again = load_workflow(path, registry)
    assert dumps(again) == text
    assert json.loads(text)["nodes"]["a"]["inputs"] == {"a": ["c", "value"]}


def test_unknown_node_types_survive_load_and_save_untouched(registry, tmp_path):
    raw = {"type": "someplugin.Magic", "version": 4, "params": {"power": [1, 2]}, "inputs": {"x": ["c", "value"]},
           "layout": {"x": 1}, "future_key": {"kept": True}}
    doc = _doc({"c": {"type": "test.Const", "params": {"value": 1}}, "m": raw})
    graph = parse_workflow(doc, registry)
    assert to_document(graph)["nodes"]["m"] == raw
    problems = validate(graph, registry)
    assert [p.code for p in problems] == ["unknown_node_type"]
    assert "someplugin" in problems[0].message


def test_version_0_files_are_upgraded(registry):
    doc = {"format": FORMAT, "version": 0, "nodes": [{"id": "c", "type": "test.Const", "params": {"value": 2}}]}
    graph = parse_workflow(doc, registry)
    assert list(graph.nodes) == ["c"] and graph.nodes["c"].params == {"value": 2}


def test_newer_file_version_is_refused_with_a_clear_message(registry):
    with pytest.raises(WorkflowError, match="newer nodegraph"):
        parse_workflow(_doc({}, version=99), registry)


def test_old_node_version_is_migrated_on_load():
    def migrate(old_version, params):
        if old_version == 1:
            params["steps"] = params.pop("count", 20)
        return params

    v2 = node("test.Sampler", version=2, params=[Int("steps", 20)], outputs=[Output("x", INT)], migrate=migrate)(
        lambda ctx, steps: steps
    )
    registry = Registry()
    registry.register(v2)
    graph = parse_workflow(_doc({"s": {"type": "test.Sampler", "version": 1, "params": {"count": 7}}}), registry)
    assert graph.nodes["s"].version == 2 and graph.nodes["s"].params == {"steps": 7}
    assert validate(graph, registry) == []


def test_structural_problems_are_all_reported(registry):
    doc = _doc(
        {
            "a": {"type": "test.Const", "params": [1]},
            "b": "not a node",
            "c": {"type": "test.Add", "inputs": {"a": "c.value"}},
            "d": {"version": "2"},
        }
    )
    with pytest.raises(WorkflowError) as info:
        parse_workflow(doc, registry)
    assert sorted((p.node, p.field) for p in info.value.problems) == [
        ("a", "params"), ("b", ""), ("c", "a"), ("d", "type"), ("d", "version"),
    ]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"format": "other"}', b"\xff\xfe"])
def test_files_that_are_not_workflows_give_a_workflow_error(registry, tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(WorkflowError):
        load_workflow(path, registry)


def test_missing_file_gives_a_workflow_error(registry, tmp_path):
    with pytest.raises(WorkflowError, match="does not exist"):
        load_workflow(tmp_path / "nope.json", registry)


def test_save_is_atomic_and_leaves_no_temporary_files(registry, tmp_path, monkeypatch):
    graph = Graph()
    graph.add_node(registry, "test.Const", "c")
    path = tmp_path / "w.json"
    save_workflow(graph, path)
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    graph.set_param(registry, "c", "value", 9)
    with pytest.raises(OSError, match="disk full"):
        save_workflow(graph, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.json"]


def test_workflow_embedded_in_a_png_reopens(registry, tmp_path):
    from PIL import Image, PngImagePlugin

    graph = Graph()
    graph.add_node(registry, "test.Const", "c", {"value": 42})
    info = PngImagePlugin.PngInfo()
    info.add_itxt("nodegraph.workflow", dumps(graph), zip=True)
    path = tmp_path / "image.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    assert load_workflow(path, registry).nodes["c"].params == {"value": 42}
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    with pytest.raises(WorkflowError, match="carries no nodegraph workflow"):
        load_workflow(plain, registry)
