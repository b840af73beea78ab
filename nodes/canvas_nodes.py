"""Nodes that organise the canvas rather than compute: a reroute point for links and a note.

Their meaning is the engine's (:mod:`nodegraph.modes`): a reroute is always passed through (its readers
read what feeds it, and links through it are type-checked against that), and a note never runs.
"""

from __future__ import annotations

from typing import Any

from nodegraph.context import NodeContext
from nodegraph.node import Input, Output, node
from nodegraph.params import Text
from nodegraph.types import ANY


@node(
    "core.Reroute", name="Reroute", category="utils",
    description="A point that a link passes through, to route long links tidily. It carries the type of what "
    "feeds it, and one reroute can feed many inputs.",
    inputs=[Input("value", ANY, help="What to pass on.")],
    outputs=[Output("value", ANY, help="The same value.")],
)
def reroute(ctx: NodeContext, value: Any) -> Any:
    return value  # only reached if a plugin runs it directly: the executor links around reroutes


@node(
    "core.Note", name="Note", category="utils",
    description="A note on the canvas (Markdown). It has no sockets and never runs.",
    params=[Text("text", "", help="The note, in Markdown: **bold**, *italic*, lists, links, `code`.")],
)
def note(ctx: NodeContext, text: str) -> None:
    return None
