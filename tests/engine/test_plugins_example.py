"""The example plugin (examples/plugins/nodegraph-imagetools) from the engine's side, installed or not."""

from __future__ import annotations

import tomllib
from pathlib import Path

import torch

from nodegraph.executor import Executor
from nodegraph.plugins import plugin_infos, plugin_registry, unload_plugins
from nodegraph.validation import validate
from nodegraph.workflow import load_workflow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "nodegraph-imagetools"


def test_the_example_package_declares_its_entry_point_under_its_namespace():
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["nodegraph.nodes"] == {"imagetools": "nodegraph_imagetools"}
    init = (EXAMPLE / "src" / "nodegraph_imagetools" / "__init__.py").read_text()
    assert 'NAMESPACE = "imagetools"' in init


def test_the_example_plugin_works_from_a_plugin_folder_and_runs_its_workflow_headless():
    registry = plugin_registry([EXAMPLE / "src"])  # raises if the plugin does not load
    try:
        [info] = plugin_infos(registry)
        assert (info.name, info.kind, info.version) == ("nodegraph_imagetools", "folder", "0.1.0")
        graph = load_workflow(EXAMPLE / "workflows" / "palette_demo.json", registry)
        assert validate(graph, registry) == []
        result = Executor(registry).run(graph)  # the output node: show
        assert result.outputs["show"]["text"].count("#") == 4
        assert set(result.executed) == {"pattern", "blur", "sharpen", "warm", "palette", "show"}
        swatches = Executor(registry).run(graph, ["swatches"]).outputs["swatches"]["image"]
        assert swatches.shape == (1, 16, 64, 3) and swatches.dtype == torch.float32
    finally:
        unload_plugins(registry)
