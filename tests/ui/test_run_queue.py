"""The editor's queue: Run during a run lines up a snapshot; pending runs can be cancelled and reordered;
Run N Times applies each seed's control after each run; the progress bar and the status line."""

from __future__ import annotations

import json

import pytest

from nodegraph.seed_control import control_of

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def window(make_window, registry):
    registry.register_module("tests.ui.run_nodes_for_tests", source="tests")
    return make_window(registry=registry)


def wait_for_queue(qtbot, window, timeout=20000):
    qtbot.waitUntil(lambda: not window.queue.busy and not window.queue.pending(), timeout=timeout)


def _images_node(window, **params):
    node_id = window.document.add_node("test.SeededImages", params=params)
    preview = window.document.add_node("core.PreviewImage")
    window.document.connect(node_id, "image", preview, "images")
    return node_id, preview


def _seed_of_run(entry, node_id):
    return entry.graph.nodes[node_id].params["seed"]


def test_run_during_a_run_queues_a_snapshot_of_the_workflow(window, qtbot):
    node_id = window.document.add_node("test.SlowCount", params={"steps": 40, "delay": 0.01})
    assert window.run()
    window.document.set_param(node_id, "steps", 5)  # edited while the first run goes on
    assert window.run()  # Ctrl+Enter again: queued, not refused
    assert [e.status for e in window.queue.entries] == ["running", "pending"]
    assert "Queue (1 waiting)" == window.queue_dock.windowTitle()
    wait_for_queue(qtbot, window)
    first, second = window.queue.entries
    assert (first.status, second.status) == ("done", "done")
    assert first.graph.nodes[node_id].params["steps"] == 40 and second.graph.nodes[node_id].params["steps"] == 5
    assert window.queue_dock.windowTitle() == "Queue"


def test_pending_runs_can_be_cancelled_and_reordered(window, qtbot):
    node_id = window.document.add_node("test.SlowCount", params={"steps": 30, "delay": 0.01})
    started: list[int] = []
    window.queue.entry_started.connect(started.append)
    for steps in (30, 31, 32, 33):
        window.document.set_param(node_id, "steps", steps)
        window.run()
    first, a, b, c = window.queue.entries
    assert window.queue.cancel(b.id) and b.status == "cancelled"
    assert window.queue.move(c.id, -1)  # c before a now
    assert [e.id for e in window.queue.pending()] == [c.id, a.id]
    assert not window.queue.move(first.id, 1)  # only pending runs move
    window.queue_panel.refresh()
    assert window.queue_panel.tree.topLevelItemCount() == 4
    wait_for_queue(qtbot, window)
    assert started == [first.id, c.id, a.id]
    assert [(e.id, e.status) for e in window.queue.entries] == [
        (first.id, "done"), (c.id, "done"), (a.id, "done"), (b.id, "cancelled")]


def test_run_n_times_applies_the_seed_control_after_each_run(window, qtbot, tmp_path):
    node_id, _ = _images_node(window, seed=7)
    window.canvas.views[node_id].param_widgets()["seed"].choose_control("increment")
    assert control_of(window.document.graph.nodes[node_id], "seed") == "increment"
    assert window.run_times(3)
    wait_for_queue(qtbot, window)
    assert [_seed_of_run(e, node_id) for e in window.queue.entries] == [7, 8, 9]
    assert window.document.graph.nodes[node_id].params["seed"] == 10  # ready for the next run
    # the three runs made three different images, each in the gallery once, newest first
    assert [e.record["seeds"] for e in window.gallery.entries] == [{node_id: {"seed": s}} for s in (7, 8, 9)]
    # the control is saved with the node and comes back with the file
    path = tmp_path / "w.json"
    assert window.save_as(path)
    assert json.loads(path.read_text())["nodes"][node_id]["controls"] == {"seed": "increment"}


def test_seed_controls_are_undoable_edits_shown_on_the_dice_button(window):
    node_id, _ = _images_node(window, seed=3)
    widget = window.canvas.views[node_id].param_widgets()["seed"]
    widget.choose_control("randomize")
    assert widget.control == "randomize" and widget.dice.text() == "rnd"
    window.document.undo_stack.undo()
    assert control_of(window.document.graph.nodes[node_id], "seed") == "fixed" and widget.control == "fixed"
    window.document.undo_stack.redo()
    assert widget.control == "randomize"


def test_fixed_seeds_stay_and_the_repeat_comes_from_the_cache(window, qtbot):
    node_id, _ = _images_node(window, seed=5)
    window.run_times(2)
    wait_for_queue(qtbot, window)
    assert [_seed_of_run(e, node_id) for e in window.queue.entries] == [5, 5]
    assert "0 ran" in window.queue.entries[1].summary
    assert len(window.gallery.entries) == 1  # the cached repeat adds no copy


def test_progress_rises_to_full_and_goes_back_to_zero_after_a_failure(window, qtbot):
    node_id, preview = _images_node(window, steps=20, delay=0.01)
    values: list[int] = []
    window.runner.progress.connect(lambda fraction, eta, text: values.append(round(fraction * 100)))
    window.run()
    wait_for_queue(qtbot, window)
    assert values == sorted(values) and window.progress.value() == 100
    assert window.state_label.text().startswith("Run #1 done")

    fail = window.document.add_node("test.FailLater", params={"steps": 5})
    window.document.connect(node_id, "image", fail, "image")
    window.document.connect(fail, "image", preview, "images")
    window.run()
    wait_for_queue(qtbot, window)
    assert window.progress.value() == 0
    status = window.state_label.text()
    assert "\n" not in status and "failed" in status and "always fails" in status
    assert "three lines" in window.state_label.toolTip()  # the whole message stays reachable


def test_stop_leaves_the_bar_empty_and_new_clears_the_status(window, qtbot):
    window.document.add_node("test.SlowCount", params={"steps": 2000, "delay": 0.005})
    window.run()
    qtbot.waitUntil(lambda: window.progress.value() > 0 or "step" in window.state_label.text(), timeout=10000)
    window.stop()
    wait_for_queue(qtbot, window)
    assert window.progress.value() == 0 and "cancelled" in window.state_label.text()
    window.document.undo_stack.setClean()
    window.new()
    assert window.state_label.text() == "Ready" and window.progress.value() == 0
