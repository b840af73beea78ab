"""Tiny node types for engine tests: they count how often they run."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from nodegraph.context import NodeContext
from nodegraph.errors import NodeInputError
from nodegraph.node import Input, Output, node
from nodegraph.params import Bool, Float, ImageFile, Int, ModelFile
from nodegraph.registry import Registry
from nodegraph.types import FLOAT, INT, define_type

RUNS: Counter[str] = Counter()

BLOB = define_type("TEST_BLOB", (10, 10, 10), "A big test value.")


@node("test.Const", params=[Int("value", 0, min=-1000, max=1000)], outputs=[Output("value", INT)])
def const(ctx: NodeContext, value: int) -> int:
    RUNS[ctx.node_id] += 1
    return value


@node(
    "test.Add",
    inputs=[Input("a", INT), Input("b", INT, optional=True)],
    params=[Int("offset", 0)],
    outputs=[Output("sum", INT)],
)
def add(ctx: NodeContext, a: int, b: int | None, offset: int) -> int:
    RUNS[ctx.node_id] += 1
    return a + (b or 0) + offset


@node("test.Half", inputs=[Input("x", FLOAT)], outputs=[Output("half", FLOAT)])
def half(ctx: NodeContext, x: float) -> float:
    RUNS[ctx.node_id] += 1
    assert isinstance(x, float)
    return x / 2


@node(
    "test.Fail",
    inputs=[Input("a", INT)],
    params=[Bool("fail", True)],
    outputs=[Output("value", INT)],
)
def fail(ctx: NodeContext, a: int, fail: bool) -> int:
    RUNS[ctx.node_id] += 1
    if fail:
        raise NodeInputError("asked to fail", "fail")
    return a


@node(
    "test.Slow",
    inputs=[Input("a", INT, optional=True)],
    params=[Int("steps", 5, min=1, max=1000), Float("delay", 0.0)],
    outputs=[Output("value", INT)],
)
def slow(ctx: NodeContext, a: int | None, steps: int, delay: float) -> int:
    RUNS[ctx.node_id] += 1
    for i in range(steps):
        time.sleep(delay)
        ctx.progress(i + 1, steps)
    return steps


@node("test.Blob", params=[Int("size", 1000, min=0, max=10**8)], outputs=[Output("blob", BLOB)])
def blob(ctx: NodeContext, size: int) -> bytes:
    RUNS[ctx.node_id] += 1
    return bytes(size)


@node("test.Sink", inputs=[Input("value", INT)], outputs=[Output("value", INT)], output_node=True)
def sink(ctx: NodeContext, value: int) -> int:
    RUNS[ctx.node_id] += 1
    return value


@node("test.ReadModel", params=[ModelFile("name", "", folder="checkpoints")], outputs=[Output("size", INT)])
def read_model(ctx: NodeContext, name: str) -> int:
    RUNS[ctx.node_id] += 1
    return ctx.folders.resolve("checkpoints", name).stat().st_size


@node("test.ReadImage", params=[ImageFile("path", "")], outputs=[Output("data", INT)])
def read_image(ctx: NodeContext, path: str) -> int:
    RUNS[ctx.node_id] += 1
    with open(ctx.input_path(path, "path", "image file"), "rb") as handle:
        return len(handle.read())


def make_registry() -> Registry:
    registry = Registry()
    for definition in (const, add, half, fail, slow, blob, sink, read_model, read_image):
        registry.register(definition)
    registry.register_module("nodes.primitives")
    return registry


def chain(registry: Registry, length: int) -> Any:
    """const -> add -> add -> ... (length nodes in all)."""
    from nodegraph.graph import Graph

    graph = Graph()
    graph.add_node(registry, "test.Const", "n0", {"value": 1})
    for i in range(1, length):
        graph.add_node(registry, "test.Add", f"n{i}", {"offset": 1})
        graph.connect(registry, f"n{i - 1}", "value" if i == 1 else "sum", f"n{i}", "a")
    return graph
