"""Fixtures: servers started and stopped by each test (or once per module for the demo-model tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server.helpers import Served, servetest_module, start_server, stop_server


@pytest.fixture(scope="session")
def registry() -> Any:
    from nodegraph.installed import default_registry

    reg = default_registry().copy()
    if "servetest.Steps" not in reg:
        reg.register_module(servetest_module(), source="servetest")
    return reg


@pytest.fixture
def make_server(tmp_path: Path, registry: Any):  # type: ignore[no-untyped-def]
    """``make_server(**settings)`` starts a server on a free port; all are stopped after the test."""
    running: list[Served] = []

    def make(state: Path | None = None, **settings: Any) -> Served:
        served = start_server(state or tmp_path / "state", registry, **settings)
        running.append(served)
        return served

    yield make
    for served in running:
        stop_server(served)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory, registry: Any):  # type: ignore[no-untyped-def]
    """One server per test module for the demo-model tests, so the model loads once."""
    served = start_server(tmp_path_factory.mktemp("demo") / "state", registry)
    yield served
    stop_server(served)

