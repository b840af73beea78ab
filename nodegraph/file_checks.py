"""Before anything loads: do the files a workflow names exist, and may it read them?

``nodegraph validate`` and every run check each image-file and model-file parameter (those not driven by a
link) the way the node will resolve it (:mod:`nodegraph.paths`, :class:`~nodegraph.model_folders.ModelFolders`),
so a missing input image or checkpoint is a validation problem naming the node and field, not a failure
minutes into a run.
"""

from __future__ import annotations

from collections.abc import Iterable

from nodegraph.errors import Problem
from nodegraph.graph import Graph
from nodegraph.model_folders import ModelFolders
from nodegraph.params import ImageFile, ModelFile
from nodegraph.paths import PathPolicy, resolve_read
from nodegraph.registry import Registry


def _first_line(exc: Exception) -> str:
    return str(exc).strip()


def input_problems(
    graph: Graph, registry: Registry, policy: PathPolicy, folders: ModelFolders, nodes: Iterable[str] | None = None
) -> list[Problem]:
    """A problem for every file parameter of ``nodes`` (default: all) that names nothing readable."""
    problems: list[Problem] = []
    wanted = set(graph.nodes) if nodes is None else set(nodes)
    for node in graph.nodes.values():
        definition = registry.get(node.type)
        if node.id not in wanted or definition is None:
            continue
        for param in definition.params:
            if param.name in node.inputs:
                continue  # the value arrives over a link
            value = node.params.get(param.name, param.default)
            if not isinstance(value, str) or not value:
                continue
            try:
                if isinstance(param, ImageFile):
                    resolve_read(policy, value, param.name, "image file")
                elif isinstance(param, ModelFile):
                    folders.resolve(param.folder, value)
                else:
                    continue
            except (OSError, ValueError) as exc:  # NodeInputError, ModelNotFound, PathRefused
                expected = "a readable image file" if isinstance(param, ImageFile) else f"a file in the {param.folder} folders"
                problems.append(Problem("missing_file", _first_line(exc), node.id, param.name, expected, repr(value)))
    return problems
