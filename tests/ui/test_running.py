"""Running from the editor: live node states, outputs arriving, the cache across runs, stopping."""

from __future__ import annotations

import time

from tests.ui.conftest import PRIMITIVES


def wait_for_run(qtbot, window, timeout=20000):
    qtbot.waitUntil(lambda: not window.runner.running and window.run_action.isEnabled(), timeout=timeout)


def test_running_primitives_shows_states_and_results(window, qtbot):
    window.open_path(PRIMITIVES, ask=False)
    states: dict[str, list[str]] = {}
    window.runner.node_state.connect(lambda node, state, _msg: states.setdefault(node, []).append(state))
    assert window.run()
    wait_for_run(qtbot, window)
    views = window.canvas.views
    assert all(view.view.run_state == "done" for view in views.values())
    assert all(states[n][:2] == ["running", "done"] for n in views)
    assert views["show_prompt"].result_text.get_value() == "a red circle on a blue background"
    assert views["show_scale"].result_text.get_value() == "10.0"
    assert window.progress.value() == 100
    assert "run done" in window.log_view.toPlainText()


def test_rerun_after_a_change_recomputes_only_what_changed(window, qtbot):
    window.open_path(PRIMITIVES, ask=False)
    window.run()
    wait_for_run(qtbot, window)
    window.document.set_param("steps", "value", 30)
    window.run()
    wait_for_run(qtbot, window)
    states = {node_id: view.view.run_state for node_id, view in window.canvas.views.items()}
    assert states == {
        "colour": "cached", "shape": "cached", "prompt": "cached", "show_prompt": "cached",
        "steps": "done", "scale": "done", "show_scale": "done",
    }
    assert window.canvas.views["show_scale"].result_text.get_value() == "15.0"


def test_image_output_arrives_in_the_node_and_the_image_panel(window, qtbot):
    source = window.document.add_node("test.Gradient", params={"width": 16, "height": 8})
    node_id = window.document.add_node("core.PreviewImage", (300, 0))
    window.document.connect(source, "image", node_id, "images")
    window.run()
    wait_for_run(qtbot, window)
    view = window.canvas.views[node_id]
    assert view.view.run_state == "done"
    assert window.canvas.views[source].preview is None  # an image box only where results are shown
    pixmap = view.preview.label.pixmap()
    assert pixmap is not None and not pixmap.isNull()
    image = window.image_panel.current_image()
    assert (image.width(), image.height()) == (16, 8)
    left, right = image.pixelColor(0, 4), image.pixelColor(15, 4)
    assert left.red() == 0 and right.red() == 255 and left.blue() == right.blue() == 64


def test_image_panel_saves_the_shown_image(window, qtbot, tmp_path):
    window.document.add_node("test.Gradient")
    window.run()
    wait_for_run(qtbot, window)
    target = tmp_path / "saved.png"
    assert window.image_panel.save_as(str(target))
    from PIL import Image

    assert Image.open(target).size == (16, 8)


def test_failure_is_shown_on_the_node_and_in_the_log(window, qtbot):
    node_id = window.document.add_node("core.Math", params={"operation": "divide", "b_value": 0.0})
    window.document.add_node("core.Show")
    window.document.connect(node_id, "result", "show_1", "value")
    window.run()
    wait_for_run(qtbot, window)
    view = window.canvas.views[node_id].view
    assert view.run_state == "failed"
    assert "division by zero" in view.toolTip()
    assert "division by zero" in window.log_view.toPlainText()


def test_stop_cancels_a_long_run_and_the_window_stays_responsive(window, qtbot):
    node_id = window.document.add_node("test.SlowCount", params={"steps": 2000, "delay": 0.005})
    window.run()
    view = window.canvas.views[node_id].view
    qtbot.waitUntil(lambda: view.run_state == "running" and (view.progress or 0) > 0, timeout=5000)
    assert window.stop_action.isEnabled()
    # the event loop keeps running during the run: a timer fires on time
    ticks = []
    start = time.perf_counter()
    qtbot.waitUntil(lambda: ticks.append(1) or len(ticks) > 3, timeout=2000)
    window.stop_action.trigger()
    wait_for_run(qtbot, window, timeout=5000)
    assert time.perf_counter() - start < 3
    assert "cancelled" in window.state_label.text().lower()
    assert view.run_state == ""
    assert window.run_action.isEnabled() and not window.stop_action.isEnabled()


def test_editing_during_a_run_does_not_change_what_runs(window, qtbot):
    node_id = window.document.add_node("test.SlowCount", params={"steps": 30, "delay": 0.005})
    window.run()
    window.document.set_param(node_id, "steps", 5)
    wait_for_run(qtbot, window)
    assert window.document.graph.nodes[node_id].params["steps"] == 5
    window.document.set_param(node_id, "steps", 30)
    window.run()  # the first run used the snapshot taken at its start (30 steps): now a cache hit
    wait_for_run(qtbot, window)
    assert window.canvas.views[node_id].view.run_state == "cached"
