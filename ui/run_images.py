"""The images a run produced, each once, with what made it: the editor's image panel and gallery hold these.

A VAE Decode and the Save Image it feeds show the same pixels: an image is identified by where it comes from
(the producing node and output) and listed once, under the output node that received it when there is one
(Save, Preview), else under the node that made it. Each entry keeps the run's workflow document, the image's
place in its batch and the seeds above it (the record Save Image writes into its files), the file it was
saved to, and the run's time, so that it can be reopened, saved again with its workflow, or reproduced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtGui import QImage

from nodegraph.executor import needed_nodes
from nodegraph.graph import Graph
from nodegraph.registry import Registry

GALLERY_LIMIT = 64  # images of one batch kept for the panels


@dataclass
class ImageEntry:
    run_id: int
    node: str  # the node it is listed under
    source: tuple[str, str]  # (producing node, output)
    index: int  # place in its batch
    count: int  # size of its batch
    image: QImage
    workflow: dict[str, Any]  # the document of the run that made it
    record: dict[str, Any] = field(default_factory=dict)  # {"node", "batch_index", "batch_size", "seeds"}
    path: str = ""  # the file Save Image wrote it to, if any
    finished: float = 0.0  # wall-clock time the run ended
    seconds: float = 0.0  # how long the run took
    fresh: bool = True  # made by this run (False: its producer came from the cache, as it was before)

    @property
    def label(self) -> str:
        return f"{self.node} #{self.index + 1}" if self.count > 1 else self.node

    @property
    def key(self) -> str:
        """What identifies the image within the panels: the same source in a later run replaces it."""
        return f"{self.source[0]}.{self.source[1]}#{self.index}"

    def describe(self) -> str:
        """A few lines for a tooltip: where, which of the batch, seeds, when, how long, where saved."""
        lines = [self.label + (f" (image {self.index + 1} of {self.count})" if self.count > 1 else "")]
        seeds = ", ".join(f"{node}.{name} {value}" for node, values in self.record.get("seeds", {}).items()
                          for name, value in values.items())
        if seeds:
            lines.append(f"seed: {seeds}")
        when = time.strftime("%H:%M:%S", time.localtime(self.finished)) if self.finished else ""
        lines.append(f"run {self.run_id} at {when}, {self.seconds:.1f} s".strip())
        if self.path:
            lines.append(self.path)
        return "\n".join(lines)


def upstream_seeds(graph: Graph, registry: Registry, node_id: str) -> dict[str, dict[str, Any]]:
    """``{node: {seed parameter: value}}`` for the nodes ``node_id`` depends on (linked seeds left out)."""
    seeds: dict[str, dict[str, Any]] = {}
    for upstream in needed_nodes(graph, [node_id]):
        node = graph.nodes[upstream]
        definition = registry.get(node.type)
        if definition is None:
            continue
        found = {p.name: node.params.get(p.name, p.default) for p in definition.params
                 if p.kind == "seed" and p.name not in node.inputs}
        if found:
            seeds[upstream] = found
    return seeds


def collect_images(
    graph: Graph,
    registry: Registry,
    shown: dict[str, list[tuple[str, str]]],
    result: Any,
    workflow: dict[str, Any],
    files: dict[str, tuple[str, ...]],
    run_id: int,
    started: float,
    to_qimages: Callable[..., list[QImage]],
) -> list[ImageEntry]:
    """One entry per image the run's shown nodes hold, each source listed once."""
    def is_output(node_id: str) -> bool:
        definition = registry.get(graph.nodes[node_id].type)
        return definition is not None and definition.output_node

    ordered = sorted(shown, key=lambda n: (not is_output(n), list(graph.nodes).index(n)))
    finished = time.time()
    seen: set[tuple[str, str]] = set()
    entries: list[ImageEntry] = []
    for node_id in ordered:
        for source in shown[node_id]:
            if source in seen:
                continue
            seen.add(source)
            images = to_qimages(result.outputs.get(source[0], {}).get(source[1]), limit=GALLERY_LIMIT)
            saved = files.get(node_id, ())
            png = [p for p in saved if p.lower().endswith(".png")]
            seeds = upstream_seeds(graph, registry, source[0])
            for index, image in enumerate(images):
                record = {"node": node_id, "batch_index": index, "batch_size": len(images), "seeds": seeds}
                entries.append(ImageEntry(run_id, node_id, source, index, len(images), image, workflow, record,
                                          png[index] if index < len(png) and len(png) == len(images) else "",
                                          finished, result.seconds or finished - started,
                                          source[0] in result.executed))
    return entries
