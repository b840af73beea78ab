"""Nothing the user did is lost: autosave a second after each edit, a recovery prompt that says what and when,
closing during a run asks before it cancels, every editor write goes through the engine's atomic writer."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QMessageBox

import nodegraph.workflow as workflow_module
import ui.files as files_module

Button = QMessageBox.StandardButton


def test_autosave_writes_about_a_second_after_the_last_edit(window, qtbot):
    autosave = window.autosave
    assert autosave.timer.isSingleShot() and autosave.timer.interval() <= 1500
    node = window.document.add_node("core.Int", params={"value": 1})
    assert autosave.timer.isActive()  # an edit starts the countdown
    for value in range(2, 6):  # a burst of edits restarts it
        window.document.set_param(node, "value", value)
    started = time.monotonic()
    qtbot.waitUntil(autosave.path.exists, timeout=5000)
    assert time.monotonic() - started < 3
    import json

    record = json.loads(autosave.path.read_text())
    assert record["workflow"]["nodes"][node]["params"]["value"] == 5
    assert isinstance(record["saved_at"], float)
    window.document.undo_stack.setClean()
    assert not autosave.path.exists()  # saved (or discarded): nothing to recover


def test_the_recovery_prompt_names_the_file_and_the_time(make_window, tmp_path):
    first = make_window()
    path = tmp_path / "portrait.json"
    first.document.add_node("core.Int")
    first.save_as(path)
    first.document.add_node("core.Float")
    assert first.autosave.save_now()
    first.autosave.timer.stop()  # a crash: no close event
    second = make_window()
    asked = []
    second.ask = lambda title, text, buttons, default: asked.append(text) or Button.Yes
    assert second.offer_recovery()
    (text,) = asked
    assert "portrait.json" in text and str(path) in text
    assert time.strftime("%H:%M") in text or time.strftime("%H:") in text  # when it was kept
    assert second.document.path == path and second.document.dirty


def test_closing_during_a_run_asks_first_and_stops_the_run_only_if_confirmed(window, qtbot):
    node = window.document.add_node("test.SlowCount", params={"steps": 2000, "delay": 0.005})
    window.document.undo_stack.setClean()
    assert window.run()
    qtbot.waitUntil(lambda: window.runner.running, timeout=5000)
    window.answers.append(Button.Cancel)
    assert not window.close()
    assert window.questions[-1] == "A run is going"
    assert window.runner.running and window.isVisible()  # the run goes on
    window.answers.append(Button.Yes)
    assert window.close()
    qtbot.waitUntil(lambda: not window.runner.running, timeout=10000)
    assert window.canvas.views[node].view.run_state != "done"


def test_the_editors_own_writes_go_through_the_engines_atomic_writer(window, tmp_path, monkeypatch):
    written = []
    real = workflow_module.atomic_write_bytes

    def spy(path, data):
        written.append(path)
        real(path, data)

    monkeypatch.setattr(workflow_module, "atomic_write_bytes", spy)
    monkeypatch.setattr(files_module, "atomic_write_bytes", spy)
    window.document.add_node("core.Int")
    window.save_as(tmp_path / "w.json")
    window.document.add_node("core.Int")
    window.autosave.save_now()
    assert [str(p) for p in written] == [str(tmp_path / "w.json"), str(window.autosave.path)]
