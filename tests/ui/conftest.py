"""Fixtures for the editor tests: an offscreen window over the built-in nodes plus test-only node types."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("NodeGraphQt")

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from nodegraph.installed import default_registry
from nodegraph.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
PRIMITIVES = ROOT / "workflows" / "primitives.json"


@pytest.fixture
def registry() -> Registry:
    registry = default_registry().copy()
    registry.register_module("tests.ui.nodes_for_tests", source="tests")
    return registry


@pytest.fixture
def make_window(qtbot, tmp_path, registry, monkeypatch):
    """Builds main windows with their own settings file and autosave folder (never the user's)."""
    from ui.files import RecentFiles
    from ui.main_window import MainWindow

    monkeypatch.setenv("NODEGRAPH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NODEGRAPH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("NODEGRAPH_MODELS_CONFIG", str(tmp_path / "no-config.json"))
    answers: list = []

    def build(**kwargs):
        recent = RecentFiles(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
        window = MainWindow(kwargs.pop("registry", registry), recent=recent, autosave_dir=tmp_path / "data", **kwargs)

        def ask(title, text, buttons, default):
            window.questions.append(title)
            return answers.pop(0) if answers else QMessageBox.StandardButton.Discard

        window.questions = []
        window.answers = answers
        window.ask = ask
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        return window

    return build


@pytest.fixture
def window(make_window):
    return make_window()



@pytest.fixture(autouse=True)
def _release_the_clipboard(qapp):
    """What the application does when it quits; left to interpreter shutdown, the copied nodes crash it."""
    yield
    from ui.main_window import MainWindow

    MainWindow.release_clipboard()
