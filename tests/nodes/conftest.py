"""Fixtures shared by the node tests: tiny FLUX / SD3 folders written once per session (writing one costs seconds and
several modules use the same model), linked into each module's models root with tests.nodes.flow_fixtures.link."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def flux_dev_folder(tmp_path_factory) -> Path:
    from tests.fixtures.tiny_flow import write_flux

    return write_flux(tmp_path_factory.mktemp("flux") / "tiny-flux-dev", dev=True)


@pytest.fixture(scope="session")
def sd35_medium_folder(tmp_path_factory) -> Path:
    from tests.fixtures.tiny_flow import write_sd3

    return write_sd3(tmp_path_factory.mktemp("sd3") / "tiny-sd35-medium", "sd35_medium", seed=2)


@pytest.fixture(scope="session")
def flux_schnell_folder(tmp_path_factory) -> Path:
    from tests.fixtures.tiny_flow import write_flux

    return write_flux(tmp_path_factory.mktemp("flux") / "tiny-flux-schnell", dev=False, seed=5)
