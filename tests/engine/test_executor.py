"""The executor: order, caching by Merkle keys, failure and resume, cancellation, events, freeing."""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref

import pytest

from nodegraph.cache import OutputCache
from nodegraph.context import CancelToken, RunSettings
from nodegraph.errors import Cancelled, NodeExecutionError, WorkflowError
from nodegraph.events import CacheEvicted, NodeCached, NodeFailed, NodeFinished, NodeProgress, RunFinished
from nodegraph.executor import Executor
from nodegraph.graph import Graph
from nodegraph.model_folders import ModelFolders
from nodegraph.node import Output, node
from nodegraph.params import Int
from nodegraph.paths import PathPolicy
from nodegraph.types import ANY

from .counting import RUNS, chain, make_registry


@pytest.fixture(autouse=True)
def _reset_counts():
    RUNS.clear()


@pytest.fixture
def registry():
    return make_registry()


def _executor(registry, tmp_path=None, **cache):
    folders = ModelFolders([tmp_path] if tmp_path else [])
    return Executor(registry, OutputCache(**cache) if cache else None, folders=folders)


def test_runs_in_dependency_order_and_returns_target_outputs(registry):
    graph = chain(registry, 4)
    result = _executor(registry).run(graph, ["n3"])
    assert result.outputs == {"n3": {"sum": 1 + 3}}
    assert result.executed == ["n0", "n1", "n2", "n3"]
    assert set(result.timings) == {"n0", "n1", "n2", "n3"}


def test_runs_only_what_the_requested_outputs_need(registry):
    graph = chain(registry, 3)
    graph.add_node(registry, "test.Const", "unrelated", {"value": 5})
    result = _executor(registry).run(graph, ["n1"])
    assert result.executed == ["n0", "n1"]
    assert "unrelated" not in RUNS and "n2" not in RUNS


def test_default_targets_are_output_nodes(registry):
    graph = chain(registry, 3)
    graph.add_node(registry, "test.Sink", "out")
    graph.connect(registry, "n1", "sum", "out", "value")
    result = _executor(registry).run(graph)
    assert list(result.outputs) == ["out"]
    assert "n2" not in RUNS


def test_unchanged_rerun_executes_nothing(registry):
    graph = chain(registry, 5)
    executor = _executor(registry)
    executor.run(graph, ["n4"])
    RUNS.clear()
    result = executor.run(graph, ["n4"])
    assert result.executed == [] and result.cached == ["n0", "n1", "n2", "n3", "n4"]
    assert sum(RUNS.values()) == 0
    assert result.outputs == {"n4": {"sum": 5}}


def test_changing_one_parameter_reruns_exactly_that_node_and_its_descendants(registry):
    graph = chain(registry, 6)
    graph.add_node(registry, "test.Const", "side", {"value": 2})
    graph.connect(registry, "side", "value", "n4", "b")
    executor = _executor(registry)
    executor.run(graph, ["n5"])
    RUNS.clear()
    graph.set_param(registry, "n2", "offset", 10)
    result = executor.run(graph, ["n5"])
    assert sorted(RUNS) == ["n2", "n3", "n4", "n5"]
    assert all(count == 1 for count in RUNS.values())
    assert set(result.cached) == {"n0", "n1", "side"}


def test_identical_nodes_share_one_cache_entry(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "x", {"value": 4})
    graph.add_node(registry, "test.Const", "y", {"value": 4})
    executor = _executor(registry)
    executor.run(graph, ["x"])
    assert executor.run(graph, ["y"]).executed == []


def test_changing_a_link_invalidates_the_reader(registry):
    graph = chain(registry, 3)
    graph.add_node(registry, "test.Const", "other", {"value": 5})
    executor = _executor(registry)
    executor.run(graph, ["n2"])
    RUNS.clear()
    graph.connect(registry, "other", "value", "n2", "b")
    executor.run(graph, ["n2"])
    assert sorted(RUNS) == ["n2", "other"]


def test_failed_node_leaves_upstream_cached_and_fixing_it_resumes_there(registry):
    graph = chain(registry, 3)
    graph.add_node(registry, "test.Fail", "bad")
    graph.connect(registry, "n2", "sum", "bad", "a")
    events = []
    executor = _executor(registry)
    with pytest.raises(NodeExecutionError) as info:
        executor.run(graph, ["bad"], on_event=events.append)
    assert info.value.node_id == "bad" and info.value.node_type == "test.Fail"
    failed = [e for e in events if isinstance(e, NodeFailed)]
    assert failed[0].node == "bad" and "asked to fail" in failed[0].message
    assert failed[0].inputs == {"a": "3"}
    RUNS.clear()
    graph.set_param(registry, "bad", "fail", False)
    result = executor.run(graph, ["bad"])
    assert list(RUNS) == ["bad"]
    assert result.outputs["bad"]["value"] == 3


def test_unexpected_exception_is_reported_with_its_type(registry):
    @node("test.Boom", outputs=[Output("x", ANY)])
    def boom(ctx):
        raise ZeroDivisionError("division by zero")

    registry.register(boom)
    graph = Graph()
    graph.add_node(registry, "test.Boom", "boom")
    with pytest.raises(NodeExecutionError, match="ZeroDivisionError: division by zero"):
        _executor(registry).run(graph, ["boom"])


def test_invalid_graph_is_refused_before_anything_runs(registry):
    graph = chain(registry, 2)
    graph.add_node(registry, "test.Add", "orphan")  # required input a is missing
    graph.connect(registry, "n1", "sum", "orphan", "b")
    with pytest.raises(WorkflowError) as info:
        _executor(registry).run(graph, ["orphan"])
    assert [p.code for p in info.value.problems] == ["missing_input"]
    assert not RUNS


def test_invalid_nodes_outside_the_requested_part_do_not_block_a_run(registry):
    graph = chain(registry, 2)
    graph.add_node(registry, "test.Add", "orphan")
    result = _executor(registry).run(graph, ["n1"])
    assert result.outputs["n1"]["sum"] == 2


def test_int_output_feeding_a_float_input_arrives_as_float(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "c", {"value": 3})
    graph.add_node(registry, "test.Half", "h")
    graph.connect(registry, "c", "value", "h", "x")
    assert _executor(registry).run(graph, ["h"]).outputs["h"]["half"] == 1.5


def test_parameter_driven_by_a_link_is_checked_against_its_bounds(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "big", {"value": 1000})
    graph.add_node(registry, "test.Slow", "slow")
    graph.connect(registry, "big", "value", "slow", "steps")
    graph.set_param(registry, "big", "value", 1000)
    result = _executor(registry).run(graph, ["slow"])
    assert result.outputs["slow"]["value"] == 1000
    graph.add_node(registry, "test.Const", "neg", {"value": -5})
    graph.connect(registry, "neg", "value", "slow", "steps")
    with pytest.raises(NodeExecutionError, match="'steps' is invalid: expected at least 1"):
        _executor(registry).run(graph, ["slow"])


def test_progress_events_and_cancellation_inside_a_node(registry):
    graph = Graph()
    graph.add_node(registry, "test.Slow", "slow", {"steps": 1000, "delay": 0.002})
    token = CancelToken()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, NodeProgress) and event.step == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        _executor(registry).run(graph, ["slow"], on_event=on_event, cancel=token)
    steps = [e.step for e in events if isinstance(e, NodeProgress)]
    assert steps == [1, 2, 3]
    assert events[-1].kind == "run_cancelled"


def test_cancel_from_another_thread_stops_between_nodes(registry):
    graph = chain(registry, 3)
    graph.add_node(registry, "test.Slow", "slow", {"steps": 200, "delay": 0.005})
    graph.connect(registry, "n2", "sum", "slow", "a")
    token = CancelToken()
    threading.Timer(0.05, token.cancel).start()
    started = time.perf_counter()
    with pytest.raises(Cancelled):
        _executor(registry).run(graph, ["slow"], cancel=token)
    assert time.perf_counter() - started < 0.9  # 200 steps x 5 ms would take 1 s


def test_cache_is_bounded_by_entries_and_reports_evictions(registry):
    graph = chain(registry, 5)
    events = []
    executor = _executor(registry, max_entries=3)
    executor.run(graph, ["n4"], on_event=events.append)
    evicted = [e.node for e in events if isinstance(e, CacheEvicted)]
    assert evicted == ["n0", "n1"]
    assert len(executor.cache) == 3
    RUNS.clear()
    executor.run(graph, ["n4"])
    assert RUNS == {}  # n4 itself is cached; nothing upstream is needed
    RUNS.clear()
    executor.run(graph, ["n1"])
    assert list(RUNS) == ["n0", "n1"]  # evicted entries are recomputed


def test_cache_is_bounded_by_bytes_least_recently_used_first(registry):
    graph = Graph()
    for name, size in (("a", 1000), ("b", 1001), ("c", 1002)):  # equal params would share one cache key
        graph.add_node(registry, "test.Blob", name, {"size": size})
    executor = _executor(registry, max_bytes=2500)
    executor.run(graph, ["a", "b"])
    executor.run(graph, ["a"])  # touch a: b is now least recently used
    events = []
    executor.run(graph, ["c"], on_event=events.append)
    assert [e.node for e in events if isinstance(e, CacheEvicted)] == ["b"]
    RUNS.clear()
    executor.run(graph, ["a", "b"])
    assert list(RUNS) == ["b"]


def test_value_larger_than_the_cache_is_not_kept_and_says_so(registry):
    graph = Graph()
    graph.add_node(registry, "test.Blob", "big", {"size": 5000})
    events = []
    executor = _executor(registry, max_bytes=1000)
    executor.run(graph, ["big"], on_event=events.append)
    (evicted,) = [e for e in events if isinstance(e, CacheEvicted)]
    assert evicted.node == "big" and evicted.reason == "larger than the cache"
    assert len(executor.cache) == 0


def test_intermediate_values_are_freed_after_their_last_reader(registry):
    seen = {}

    class Big:
        pass

    @node("test.MakeBig", outputs=[Output("v", ANY)])
    def make_big(ctx):
        value = Big()
        seen["ref"] = weakref.ref(value)
        return value

    @node("test.UseBig", inputs=[__import__("nodegraph").Input("v", ANY)], outputs=[Output("n", ANY)])
    def use_big(ctx, v):
        return 1

    @node("test.Check", inputs=[__import__("nodegraph").Input("n", ANY)], outputs=[Output("alive", ANY)])
    def check(ctx, n):
        gc.collect()
        return seen["ref"]() is not None

    for d in (make_big, use_big, check):
        registry.register(d)
    graph = Graph()
    graph.add_node(registry, "test.MakeBig", "make")
    graph.add_node(registry, "test.UseBig", "use")
    graph.add_node(registry, "test.Check", "check")
    graph.connect(registry, "make", "v", "use", "v")
    graph.connect(registry, "use", "n", "check", "n")
    no_cache = _executor(registry, max_entries=0)
    assert no_cache.run(graph, ["check"]).outputs["check"]["alive"] is False
    # with a cache the entry keeps it alive, as it should
    assert _executor(registry).run(graph, ["check"]).outputs["check"]["alive"] is True


def test_model_file_is_fingerprinted_by_size_and_mtime(registry, tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    model = folder / "m.safetensors"
    model.write_bytes(b"x" * 10)
    graph = Graph()
    graph.add_node(registry, "test.ReadModel", "read", {"name": "m.safetensors"})
    executor = _executor(registry, tmp_path)
    assert executor.run(graph, ["read"]).outputs["read"]["size"] == 10
    assert executor.run(graph, ["read"]).cached == ["read"]
    model.write_bytes(b"x" * 12)
    os.utime(model, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert executor.run(graph, ["read"]).outputs["read"]["size"] == 12


def test_missing_model_file_is_reported_before_the_run_with_the_folders_searched(registry, tmp_path):
    graph = Graph()
    graph.add_node(registry, "test.ReadModel", "read", {"name": "nope.safetensors"})
    with pytest.raises(WorkflowError) as info:
        _executor(registry, tmp_path).run(graph, ["read"])
    [problem] = info.value.problems
    assert (problem.code, problem.node, problem.field) == ("missing_file", "read", "name")
    assert "nope.safetensors" in problem.message and str(tmp_path / "checkpoints") in problem.message
    assert RUNS["read"] == 0  # nothing ran


def test_user_image_is_fingerprinted_by_content(registry, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"one")
    graph = Graph()
    graph.add_node(registry, "test.ReadImage", "img", {"path": "a.png"})
    executor = _executor(registry)
    settings = RunSettings(paths=PathPolicy(workflow_dir=tmp_path))  # found beside the workflow file
    executor.run(graph, ["img"], settings=settings)
    stat = image.stat()
    image.write_bytes(b"two")  # same size; force the same mtime: only the content differs
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert executor.run(graph, ["img"], settings=settings).executed == ["img"]


def test_events_report_every_node_and_the_run(registry):
    graph = chain(registry, 3)
    executor = _executor(registry)
    events = []
    executor.run(graph, ["n2"], on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert [e.node for e in events if isinstance(e, NodeFinished)] == ["n0", "n1", "n2"]
    events.clear()
    executor.run(graph, ["n2"], on_event=events.append)
    assert [e.node for e in events if isinstance(e, NodeCached)] == ["n0", "n1", "n2"]
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.cached == 3 and finished.executed == 0


def test_node_parameters_from_the_registry_default_when_absent_from_the_file(registry):
    @node("test.Default", params=[Int("k", 7)], outputs=[Output("k", ANY)])
    def default(ctx, k):
        return k

    registry.register(default)
    graph = Graph()
    graph.add_node(registry, "test.Default", "d")
    graph.nodes["d"].params.clear()
    assert _executor(registry).run(graph, ["d"]).outputs["d"]["k"] == 7
