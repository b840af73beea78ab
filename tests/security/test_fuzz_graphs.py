"""The fuzzer over valid graphs (issue 19): hypothesis builds valid workflows from the built-in node types that
run without models, with parameter values drawn from their whole declared ranges plus hostile text and paths,
and runs them. Every run must end in a result, a WorkflowError or a NodeExecutionError naming the node: nothing
else may escape the executor (the issue saw 122 of 1,500 escape).

More examples: ``NODEGRAPH_FUZZ_EXAMPLES=1500 pytest -s tests/security/test_fuzz_graphs.py`` (the outcome counts
are printed at the end). Limits are lowered for the run so that the largest valid sizes fail fast and cleanly.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import nodegraph.limits as limits
from nodegraph.context import RunSettings
from nodegraph.errors import NodeExecutionError, WorkflowError
from nodegraph.executor import Executor
from nodegraph.graph import Graph, GraphNode
from nodegraph.installed import default_registry
from nodegraph.model_folders import ModelFolders
from nodegraph.params import INT_MAX, INT_MIN, SEED_MAX
from nodegraph.paths import PathPolicy
from nodegraph.runtime import Runtime
from nodegraph.types import compatible
from nodegraph.validation import validate

EXAMPLES = int(os.environ.get("NODEGRAPH_FUZZ_EXAMPLES", "60"))
NODE_TYPES = (
    "core.Int", "core.Float", "core.String", "core.Text", "core.Bool", "core.StringJoin", "core.StringFormat",
    "core.Math", "core.IntMath", "core.Show", "core.EmptyLatentImage", "core.LatentUpscale", "core.PixelsToImage",
    "core.ImageInvert", "core.ImageThreshold", "core.CannyEdges", "core.LineArt", "core.ImageScale", "core.LoadImage",
    "core.PreviewImage", "core.SaveImage",
)
HOSTILE_TEXT = (
    "", "{a}", "{a}{b}{c}", "{", "}", "{{}}", "{a:>99999999999}", "{a:{b}}", "{a.__class__}", "{a!r:^40}", "{0}",
    "{d}", "{a[0]}", "\0", "a" * 5000, "élan 🎨", "../../etc/passwd", "/dev/zero", "portraits/cat", "C:\\x",
)
OUTCOMES: Counter = Counter()
MESSAGES: Counter = Counter()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    inputs, output = folder / "input", folder / "output"
    inputs.mkdir()
    Image.fromarray((np.random.default_rng(0).random((24, 16, 4)) * 255).astype(np.uint8)).save(inputs / "tiny.png")
    registry = default_registry()
    executor = Executor(registry, runtime=Runtime("cpu", "fp32"), folders=ModelFolders([folder / "models"]))
    run_settings = RunSettings(output_dir=output, paths=PathPolicy(input_dirs=(inputs,)))
    limits.set_limits(["image_pixels=262144", "batch_pixels=1048576", "text_chars=100000"])
    yield registry, executor, run_settings, inputs
    limits.reset()
    print(f"\nfuzzer: {sum(OUTCOMES.values())} graphs run: " + ", ".join(f"{k} {v}" for k, v in sorted(OUTCOMES.items())))
    if os.environ.get("NODEGRAPH_FUZZ_MESSAGES"):
        for message, count in MESSAGES.most_common():
            print(f"  {count:5}  {message}")


def value_strategy(param, inputs: Path):
    kind = param.kind
    if kind in ("int", "seed"):
        low = param.min if param.min is not None else (0 if kind == "seed" else INT_MIN)
        high = param.max if param.max is not None else (SEED_MAX if kind == "seed" else INT_MAX)
        edges = [v for v in (low, high, 0, 1, -1, 8, 64, 512) if low <= v <= high]
        return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(max(low, -100), min(high, 100)))
    if kind == "float":
        low = param.min if param.min is not None else -1e308
        high = param.max if param.max is not None else 1e308
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "bool":
        return st.booleans()
    if kind == "choice":
        return st.sampled_from(param.choices)
    if kind == "image_file":
        return st.sampled_from(["tiny.png", str(inputs / "tiny.png"), "missing.png", "/dev/zero", "../tiny.png",
                                "/etc/passwd", "", "x\0y", str(inputs)])
    return st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40))


@st.composite
def graphs(draw, registry, inputs):
    graph = Graph()
    outputs: list[tuple[str, object]] = []  # (node id, Output) available to later nodes
    for index in range(draw(st.integers(1, 7))):
        definition = registry.get(draw(st.sampled_from(NODE_TYPES)))
        links: dict[str, tuple[str, str]] = {}
        satisfiable = True
        for spec in definition.inputs:
            sources = [(n, o) for n, o in outputs if compatible(o.type, spec.type)]
            if sources and (not spec.optional or draw(st.booleans())):
                node_id, out = draw(st.sampled_from(sources))
                links[spec.name] = (node_id, out.name)
            elif not spec.optional:
                satisfiable = False
        if not satisfiable:
            continue
        params = {}
        for param in definition.params:
            sources = [(n, o) for n, o in outputs if compatible(o.type, param.socket_type)]
            if sources and draw(st.integers(0, 4)) == 0:  # a parameter driven by a link
                node_id, out = draw(st.sampled_from(sources))
                links[param.name] = (node_id, out.name)
            else:
                params[param.name] = draw(value_strategy(param, inputs))
        node_id = f"n{index}"
        graph.nodes[node_id] = GraphNode(node_id, definition.id, definition.version, params, links)
        outputs += [(node_id, o) for o in definition.outputs]
    return graph


def test_valid_graphs_never_raise_anything_but_workflow_and_node_errors(world):
    registry, executor, run_settings, inputs = world

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(graph=graphs(registry, inputs))
    def run(graph: Graph) -> None:
        if not graph.nodes:
            return
        assert validate(graph, registry) == []  # the generator makes valid graphs only
        executor.cache.clear()
        try:
            executor.run(graph, list(graph.nodes), settings=run_settings)
            OUTCOMES["ran"] += 1
        except WorkflowError:
            OUTCOMES["workflow error"] += 1
        except NodeExecutionError as exc:
            assert exc.node_id in graph.nodes and exc.message
            OUTCOMES["node error"] += 1
            MESSAGES[exc.message.split(":")[0][:60]] += 1

    run()
