"""The overall progress of a run: weighted by each node's work, monotonic, 1.0 exactly on success, starting over
after a failure, with an ETA; and loaders' progress by bytes read."""

from __future__ import annotations

import pytest

from nodegraph.errors import NodeExecutionError
from nodegraph.events import NodeFinished, NodeProgress, NodeStarted, RunFailed, RunFinished, RunStarted
from nodegraph.executor import Executor
from nodegraph.graph import Graph
from nodegraph.loading import bytes_read, reporting_load
from nodegraph.model_folders import ModelFolders
from nodegraph.node import Output, node
from nodegraph.params import Int
from nodegraph.progress import RunProgress, format_eta
from nodegraph.types import INT

from .counting import make_registry


@node("test.Sampler", params=[Int("steps", 10, min=1, max=1000)], outputs=[Output("value", INT)], work=lambda p: p["steps"])
def sampler(ctx, steps: int) -> int:
    for i in range(steps):
        ctx.progress(i + 1, steps)
    return steps


@pytest.fixture
def registry():
    registry = make_registry()
    registry.register(sampler)
    return registry


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run_events(registry, graph, targets, tmp_path=None):
    events = []
    folders = ModelFolders([tmp_path] if tmp_path else [])
    try:
        Executor(registry, folders=folders).run(graph, targets, on_event=events.append)
    except NodeExecutionError:
        pass
    return events


def test_run_started_carries_each_nodes_work(registry, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "m.safetensors").write_bytes(bytes(3000))
    graph = Graph()
    graph.add_node(registry, "test.ReadModel", "load", {"name": "m.safetensors"})
    graph.add_node(registry, "test.Sampler", "sample", {"steps": 40})
    graph.add_node(registry, "test.Const", "const", {"value": 1})
    events = _run_events(registry, graph, ["load", "sample", "const"], tmp_path)
    assert events[0].work == {"load": ("bytes", 3000.0), "sample": ("steps", 40.0), "const": ("node", 1.0)}


def test_fraction_rises_monotonically_to_one_on_success(registry):
    graph = Graph()
    graph.add_node(registry, "test.Const", "a", {"value": 1})
    graph.add_node(registry, "test.Sampler", "s", {"steps": 30})
    graph.add_node(registry, "test.Slow", "slow", {"steps": 5})
    progress = RunProgress()
    seen = []
    for event in _run_events(registry, graph, ["a", "s", "slow"]):
        progress.update(event)
        seen.append(progress.fraction)
        if not isinstance(event, RunFinished):
            assert progress.fraction < 1.0
    assert seen == sorted(seen) and seen[-1] == 1.0 and progress.outcome == "done"


def test_a_failure_leaves_the_bar_short_of_one_and_the_next_run_starts_at_zero(registry):
    graph = Graph()
    graph.add_node(registry, "test.Sampler", "s", {"steps": 5})
    graph.add_node(registry, "test.Const", "c", {"value": 1})
    graph.add_node(registry, "test.Fail", "f")
    graph.connect(registry, "c", "value", "f", "a")
    progress = RunProgress()
    for event in _run_events(registry, graph, ["s", "f"]):
        progress.update(event)
    assert progress.outcome == "failed" and progress.fraction < 1.0 and progress.eta is None
    progress.update(RunStarted(("x",), ("x",), {"x": ("node", 1.0)}))
    assert progress.fraction == 0.0 and progress.outcome == ""


def test_nodes_weigh_by_their_work_and_measured_rates_give_the_eta():
    clock = Clock()
    progress = RunProgress(clock)
    progress.update(RunStarted(("text", "sampler", "decode"), ("decode",),
                               {"text": ("node", 1.0), "sampler": ("steps", 100.0), "decode": ("node", 1.0)}))
    progress.update(NodeStarted("text", "t"))
    clock.now = 0.01
    progress.update(NodeFinished("text", "t", 0.01))
    assert progress.fraction < 0.01  # one small node of 100 steps' worth of work
    progress.update(NodeStarted("sampler", "s"))
    for step in range(1, 41):  # one second per step
        clock.now += 1.0
        progress.update(NodeProgress("sampler", "s", step, 100))
    assert progress.fraction == pytest.approx(0.4, abs=0.01)
    assert progress.eta == pytest.approx(60.0, abs=0.5)
    assert format_eta(progress.eta) == "ETA 1:00"


def test_a_loader_is_weighed_by_the_bytes_of_its_files():
    clock = Clock()
    progress = RunProgress(clock)
    progress.update(RunStarted(("small", "big"), ("big",), {"small": ("bytes", 1e6), "big": ("bytes", 3e6)}))
    progress.update(NodeStarted("small", "load"))
    clock.now = 1.0
    progress.update(NodeFinished("small", "load", 1.0))
    # 1 MB took one second: the 3 MB load is expected to take three
    assert progress.fraction == pytest.approx(0.25, abs=0.01)
    assert progress.eta == pytest.approx(3.0, abs=0.01)
    progress.update(NodeStarted("big", "load"))
    clock.now = 2.5
    progress.update(NodeProgress("big", "load", 1_500_000, 3_000_000, "loading big.safetensors"))
    assert progress.fraction == pytest.approx(0.625, abs=0.01) and progress.message == "loading big.safetensors"
    progress.update(RunFailed("big", 2.5))
    assert progress.fraction == pytest.approx(0.625, abs=0.01)


def test_load_progress_counts_bytes_and_reports_a_message_at_once():
    reports = []
    with reporting_load(1000, "loading m.safetensors", lambda done, total, message: reports.append((done, total, message))):
        for _ in range(10):
            bytes_read(95)
    assert reports[0] == (0, 1000, "loading m.safetensors")  # before the first byte (imports can take seconds)
    assert reports[-1] == (1000, 1000, "loading m.safetensors")  # complete when the load returns
    steps = [done for done, _, _ in reports]
    assert steps == sorted(steps)
    bytes_read(50)  # outside a load: nobody counts
    assert reports[-1][0] == 1000


def test_the_demo_checkpoint_load_reports_bytes_with_its_file_name(tmp_path):
    registry = make_registry()
    registry.register_module("nodes.sd.loaders")
    graph = Graph()
    graph.add_node(registry, "core.CheckpointLoader", "ckpt", {"ckpt_name": "demo_shapes.safetensors"})
    events = []
    Executor(registry, folders=ModelFolders.from_environment()).run(graph, ["ckpt"], on_event=events.append)
    loads = [e for e in events if isinstance(e, NodeProgress) and e.node == "ckpt"]
    assert {e.message for e in loads} == {"loading demo_shapes.safetensors"}
    assert [e.step for e in loads] == sorted(e.step for e in loads) and len(loads) >= 3
    assert loads[0].step == 0 and loads[-1].step == loads[-1].total == events[0].work["ckpt"][1]


def test_a_second_run_starts_with_the_rates_the_first_measured():
    clock = Clock()
    progress = RunProgress(clock)
    work = {"sampler": ("steps", 10.0)}
    progress.update(RunStarted(("sampler",), ("sampler",), work))
    assert progress.eta is None  # nothing measured yet
    progress.update(NodeStarted("sampler", "s"))
    for step in range(1, 11):  # two seconds a step
        clock.now += 2.0
        progress.update(NodeProgress("sampler", "s", step, 10))
    progress.update(NodeFinished("sampler", "s", 20.0))
    progress.update(RunFinished(20.0, 1, 0))
    progress.update(RunStarted(("sampler",), ("sampler",), work))  # the same work again (Run N Times, --repeat)
    progress.update(NodeStarted("sampler", "s"))
    assert progress.fraction == 0.0
    clock.now += 0.5
    progress.update(NodeProgress("sampler", "s", 0, 10))
    assert progress.eta == pytest.approx(20.0, abs=0.6)  # not the prior's 2.5 s
