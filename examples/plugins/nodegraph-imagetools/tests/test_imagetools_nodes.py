"""The example plugin, installed, found through its entry point and run headless through the engine."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from nodegraph.context import CancelToken
from nodegraph.errors import Cancelled, NodeExecutionError
from nodegraph.events import NodeProgress
from nodegraph.executor import Executor
from nodegraph.graph import Graph, LinkRefused
from nodegraph.plugins import LOADED, load_plugins, unload_plugins
from nodegraph.registry import Registry
from nodegraph.validation import validate
from nodegraph.workflow import load_workflow, parse_workflow
from nodes import BUILTIN_MODULES

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "palette_demo.json"


@pytest.fixture(scope="module")
def registry():
    reg = Registry()
    for module in BUILTIN_MODULES:
        reg.register_module(module)
    load_plugins(reg, folders=[])  # installed distributions only, not the user's plugin folders
    yield reg
    unload_plugins(reg)


def image_graph(registry: Registry, *chain: tuple[str, dict]) -> Graph:
    """TestPattern -> chain[0] -> chain[1] ...; the last node is called 'out'."""
    graph = Graph()
    graph.add_node(registry, "imagetools.TestPattern", "src", {"pattern": "checker", "width": 32, "height": 32, "cell": 4})
    previous = "src"
    for i, (node_type, params) in enumerate(chain):
        node_id = "out" if i == len(chain) - 1 else f"n{i}"
        graph.add_node(registry, node_type, node_id, params)
        graph.connect(registry, previous, "image", node_id, "image")
        previous = node_id
    return graph


def test_the_installed_package_is_found_through_its_entry_point(registry):
    from nodegraph.plugins import plugin_infos

    info = next(i for i in plugin_infos(registry) if i.name == "imagetools")
    assert info.status == LOADED, info.error
    assert info.kind == "entry_point" and info.version == version("nodegraph-imagetools")
    assert "imagetools.GaussianBlur" in info.node_types and "imagetools.ApplyPalette" in info.node_types
    assert registry.get("imagetools.Sharpen").source == "plugin:imagetools"


def test_the_example_workflow_runs_headless(registry):
    graph = load_workflow(WORKFLOW, registry)
    assert validate(graph, registry) == []
    result = Executor(registry).run(graph, ["posterise", "swatches", "show"])
    posterised = result.outputs["posterise"]["image"]
    assert posterised.shape == (1, 64, 96, 3) and posterised.dtype == torch.float32
    swatches = result.outputs["swatches"]["image"]
    assert swatches.shape == (1, 16, 4 * 16, 3)
    # every pixel of the posterised image is one of the four palette colours
    colours = torch.unique(swatches.reshape(-1, 3), dim=0)
    assert colours.shape[0] == 4
    assert torch.cdist(posterised.reshape(-1, 3), colours).min(dim=1).values.max() < 1e-3
    assert result.outputs["show"]["text"].startswith("Palette(#")


def test_blur_smooths_keeps_the_mean_and_never_touches_its_input(registry):
    graph = image_graph(registry, ("imagetools.GaussianBlur", {"sigma": 2.0}))
    result = Executor(registry).run(graph, ["src", "out"])
    source, blurred = result.outputs["src"]["image"], result.outputs["out"]["image"]
    before = source.clone()
    assert blurred.std() < 0.5 * source.std()
    assert torch.allclose(blurred.mean(), source.mean(), atol=0.02)
    assert torch.equal(source, before)  # DESIGN contract 3: the cached upstream value is unchanged


def test_sharpen_raises_contrast_of_a_blurred_image_and_amount_zero_is_identity(registry):
    blurred = Executor(registry).run(image_graph(registry, ("imagetools.GaussianBlur", {"sigma": 1.5})), ["out"])
    soft = blurred.outputs["out"]["image"]
    graph = image_graph(registry, ("imagetools.GaussianBlur", {"sigma": 1.5}), ("imagetools.Sharpen", {"amount": 2.0}))
    sharp = Executor(registry).run(graph, ["out"]).outputs["out"]["image"]
    assert sharp.std() > 1.2 * soft.std()
    graph.set_param(registry, "out", "amount", 0.0)
    assert torch.allclose(Executor(registry).run(graph, ["out"]).outputs["out"]["image"], soft)


def test_color_balance_shifts_the_chosen_tones_and_keeps_luminosity(registry):
    graph = Graph()
    graph.add_node(registry, "imagetools.TestPattern", "src", {"pattern": "gradient", "width": 32, "height": 32})
    graph.add_node(registry, "imagetools.ColorBalance", "out", {"tones": "highlights", "red": 0.3, "blue": -0.3})
    graph.connect(registry, "src", "image", "out", "image")
    result = Executor(registry).run(graph, ["src", "out"])
    source, balanced = result.outputs["src"]["image"], result.outputs["out"]["image"]
    luma = torch.tensor([0.2126, 0.7152, 0.0722])
    bright = (source * luma).sum(-1) > 0.7
    dark = (source * luma).sum(-1) < 0.3
    red_gain = (balanced - source)[..., 0]
    assert red_gain[bright].mean() > 0.05 > red_gain[dark].mean()
    unclipped = (balanced > 0.01).all(-1) & (balanced < 0.99).all(-1)
    assert torch.allclose((balanced * luma).sum(-1)[unclipped], (source * luma).sum(-1)[unclipped], atol=1e-5)


def test_a_version_1_color_balance_is_migrated_when_loaded(registry):
    old = {
        "format": "nodegraph.workflow",
        "version": 1,
        "nodes": {"cb": {"type": "imagetools.ColorBalance", "version": 1, "params": {"tones": "shadows", "cyan_red": 50, "yellow_blue": -20}}},
    }
    node = parse_workflow(old, registry).nodes["cb"]
    assert node.version == 2
    assert node.params == {"tones": "shadows", "red": 0.5, "blue": -0.2}


def test_palette_is_its_own_socket_type(registry):
    graph = image_graph(registry, ("imagetools.GaussianBlur", {}))
    graph.add_node(registry, "imagetools.ApplyPalette", "apply")
    with pytest.raises(LinkRefused, match="expected PALETTE, found IMAGE"):
        graph.connect(registry, "out", "image", "apply", "palette")
    graph.add_node(registry, "imagetools.PaletteFromHex", "hex", {"colors": "#000000, #ffffff"})
    graph.connect(registry, "hex", "palette", "apply", "palette")
    graph.connect(registry, "src", "image", "apply", "image")
    applied = Executor(registry).run(graph, ["apply"]).outputs["apply"]["image"]
    assert set(torch.unique(applied).tolist()) == {0.0, 1.0}


def test_extract_palette_finds_the_two_colours_of_a_checkerboard(registry):
    graph = image_graph(registry, ("imagetools.ExtractPalette", {"colors": 2, "iterations": 3}))
    palette = Executor(registry).run(graph, ["out"]).outputs["out"]["palette"]
    assert sorted(palette.hex()) == ["#000000", "#ffffff"]


def test_load_palette_rereads_an_edited_file_and_reuses_the_cache_otherwise(registry, tmp_path):
    path = tmp_path / "colours.hex"
    path.write_text("#ff0000 ; red\n#00ff00\n")
    graph = Graph()
    graph.add_node(registry, "imagetools.LoadPalette", "pal", {"path": str(path)})
    executor = Executor(registry)
    first = executor.run(graph, ["pal"])
    assert first.outputs["pal"]["palette"].hex() == ["#ff0000", "#00ff00"]
    assert executor.run(graph, ["pal"]).cached == ["pal"]
    path.write_text("#0000ff\n")
    again = executor.run(graph, ["pal"])
    assert again.executed == ["pal"] and again.outputs["pal"]["palette"].hex() == ["#0000ff"]


def test_bad_hex_colours_are_reported_naming_the_node_and_field(registry):
    graph = Graph()
    graph.add_node(registry, "imagetools.PaletteFromHex", "hex", {"colors": "#ff0000 teal"})
    with pytest.raises(NodeExecutionError, match=r"node 'hex' \(imagetools.PaletteFromHex\) failed: .*found 'teal'"):
        Executor(registry).run(graph, ["hex"])


def test_blur_reports_progress_per_image_and_stops_when_cancelled(registry):
    graph = image_graph(registry, ("imagetools.GaussianBlur", {"sigma": 1.0}))
    graph.set_param(registry, "src", "batch", 3)
    token = CancelToken()
    steps: list[tuple[int, int]] = []

    def on_event(event) -> None:
        if isinstance(event, NodeProgress):
            steps.append((event.step, event.total))
            token.cancel()  # the user presses Stop after the first image

    with pytest.raises(Cancelled):
        Executor(registry).run(graph, ["out"], on_event=on_event, cancel=token)
    assert steps == [(1, 3)]

