"""The workflow file: one canonical JSON document for the editor and the command line.

Version 2 looks like this::

    {
      "format": "nodegraph.workflow",
      "version": 2,
      "nodes": {
        "prompt": {"type": "core.String", "version": 1, "params": {"value": "a red circle"}},
        "show":   {"type": "core.Show", "version": 1, "inputs": {"value": ["prompt", "value"]},
                   "layout": {"x": 240, "y": 0}, "mode": "bypass"},
        "seed":   {"type": "core.Seed", "version": 1, "params": {"value": 7}},
        "sampler": {"type": "core.KSampler", "version": 1, "param_inputs": ["seed"],
                    "inputs": {"seed": ["seed", "value"], ...}}
      },
      "groups": [{"title": "Prompts", "color": "#3a5f8a", "rect": [0, 0, 600, 400]}],
      "meta": {}
    }

Parameters are stored by name, inputs as ``name -> [source node id, output name]``. A node may carry
``"mode": "bypass" | "mute"`` (see :mod:`nodegraph.modes`; absent means normal) and ``"param_inputs"``, the
parameters the user turned into input sockets. ``groups`` are the editor's titled frames; ``layout`` is the
editor's too. Loading upgrades older file versions (version 1 is version 2 without these keys) and older node
versions; nodes of unknown types and keys this version does not know are kept untouched.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nodegraph.atomic_files import atomic_write_bytes
from nodegraph.errors import Problem, WorkflowError
from nodegraph.graph import MODES, Graph, GraphNode
from nodegraph.params import describe
from nodegraph.registry import Registry

FORMAT = "nodegraph.workflow"
VERSION = 2
_NODE_KEYS = {"type", "version", "params", "inputs", "layout", "mode", "param_inputs"}
_TOP_KEYS = {"format", "version", "nodes", "meta", "groups"}
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _from_v0(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (the pre-release draft) listed nodes in an array with an ``id`` key each."""
    nodes = doc.get("nodes")
    if isinstance(nodes, list):
        converted: dict[str, Any] = {}
        for i, item in enumerate(nodes):
            if isinstance(item, dict):
                item = dict(item)
                converted[str(item.pop("id", f"node_{i}"))] = item
            else:
                converted[f"node_{i}"] = item
        doc = {**doc, "nodes": converted}
    return {**doc, "version": 1}


def _from_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 2 only added optional keys (node modes, parameter inputs, groups): a version 1 file is unchanged."""
    return {**doc, "version": 2}


# file version n -> function upgrading a document of version n to version n + 1
FILE_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _from_v0, 1: _from_v1}


def parse_workflow(doc: Any, registry: Registry | None = None) -> Graph:
    """Build a :class:`Graph` from a workflow document, upgrading old versions.

    Raises :class:`WorkflowError` listing every structural problem. Whether the graph can run (types,
    links, values) is :func:`nodegraph.validation.validate`'s business.
    """
    if not isinstance(doc, dict):
        raise WorkflowError([Problem("not_a_workflow", "a workflow must be a JSON object", expected="an object", found=describe(doc))])
    if doc.get("format") != FORMAT:
        raise WorkflowError(
            [Problem("not_a_workflow", "this is not a nodegraph workflow file", field="format", expected=repr(FORMAT), found=describe(doc.get("format")))]
        )
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise WorkflowError([Problem("bad_version", "the file version must be a whole number", field="version", expected="0.." + str(VERSION), found=describe(version))])
    if version > VERSION:
        raise WorkflowError(
            [Problem("newer_file_version", "this file was written by a newer nodegraph; update to open it", field="version", expected=f"<= {VERSION}", found=str(version))]
        )
    while version < VERSION:
        doc = FILE_MIGRATIONS[version](doc)
        version += 1

    nodes = doc.get("nodes")
    if not isinstance(nodes, dict):
        raise WorkflowError([Problem("bad_nodes", "'nodes' must map node ids to nodes", field="nodes", expected="an object", found=describe(nodes))])
    problems: list[Problem] = []
    graph = Graph(
        meta=doc.get("meta") if isinstance(doc.get("meta"), dict) else {},
        groups=_parse_groups(doc.get("groups", []), problems),
        extra={k: v for k, v in doc.items() if k not in _TOP_KEYS},
    )
    for node_id, raw in nodes.items():
        node = _parse_node(node_id, raw, problems)
        if node is not None:
            if registry is not None:
                _migrate_node(node, registry, problems)
            graph.nodes[node_id] = node
    if problems:
        raise WorkflowError(problems)
    return graph


def _parse_node(node_id: str, raw: Any, problems: list[Problem]) -> GraphNode | None:
    if not node_id:
        problems.append(Problem("bad_node_id", "node ids must be non-empty", expected="a non-empty id", found="''"))
        return None
    if not isinstance(raw, dict):
        problems.append(Problem("bad_node", "a node must be a JSON object", node_id, expected="an object", found=describe(raw)))
        return None
    before = len(problems)
    node_type = raw.get("type")
    if not isinstance(node_type, str) or not node_type:
        problems.append(Problem("bad_node", "a node needs a type", node_id, "type", "a node type id", describe(node_type)))
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(Problem("bad_node", "the node version must be a whole number >= 1", node_id, "version", "an integer >= 1", describe(version)))
    params = raw.get("params", {})
    if not isinstance(params, dict):
        problems.append(Problem("bad_node", "'params' must map names to values", node_id, "params", "an object", describe(params)))
    inputs = raw.get("inputs", {})
    links: dict[str, tuple[str, str]] = {}
    if not isinstance(inputs, dict):
        problems.append(Problem("bad_node", "'inputs' must map input names to links", node_id, "inputs", "an object", describe(inputs)))
    else:
        for name, link in inputs.items():
            if isinstance(link, list) and len(link) == 2 and all(isinstance(x, str) for x in link):
                links[name] = (link[0], link[1])
            else:
                problems.append(Problem("bad_link", "an input must be [source node id, output name]", node_id, name, "a pair of strings", describe(link)))
    layout = raw.get("layout", {})
    if not isinstance(layout, dict):
        problems.append(Problem("bad_node", "'layout' must be an object", node_id, "layout", "an object", describe(layout)))
    mode = raw.get("mode")
    if mode is not None and mode not in MODES:
        problems.append(Problem("bad_node", "unknown node mode", node_id, "mode", " or ".join(repr(m) for m in MODES) + " (or no mode)", describe(mode)))
    param_inputs = raw.get("param_inputs", [])
    if not isinstance(param_inputs, list) or not all(isinstance(n, str) and n for n in param_inputs):
        problems.append(Problem("bad_node", "'param_inputs' must list parameter names", node_id, "param_inputs", "a list of names", describe(param_inputs)))
    if len(problems) > before:
        return None
    extra = {k: v for k, v in raw.items() if k not in _NODE_KEYS}
    return GraphNode(node_id, node_type, version, dict(params), links, dict(layout), extra, mode, list(dict.fromkeys(param_inputs)))


def _parse_groups(raw: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    """The editor's groups: ``{"title": str, "color": "#rrggbb", "rect": [x, y, w, h]}`` (other keys are kept)."""
    if not isinstance(raw, list):
        problems.append(Problem("bad_groups", "groups: must be a list of groups", field="groups", expected="a list", found=describe(raw)))
        return []
    groups = []
    for index, group in enumerate(raw):
        where = f"groups[{index}]"
        if not isinstance(group, dict):
            problems.append(Problem("bad_group", f"{where}: a group must be an object", field=where, expected="an object", found=describe(group)))
            continue
        rect = group.get("rect")
        if not (isinstance(rect, list) and len(rect) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rect)
                and rect[2] >= 0 and rect[3] >= 0):
            problems.append(Problem("bad_group", f"{where}: a group's rect must be [x, y, width, height]", field=f"{where}.rect",
                                    expected="four numbers, width and height >= 0", found=describe(rect)))
            continue
        if not isinstance(group.get("title", ""), str):
            problems.append(Problem("bad_group", f"{where}: a group's title must be text", field=f"{where}.title", expected="text", found=describe(group.get("title"))))
            continue
        color = group.get("color")
        if color is not None and not (isinstance(color, str) and _COLOR.match(color)):
            problems.append(Problem("bad_group", f"{where}: a group's colour must be written #rrggbb", field=f"{where}.color", expected="#rrggbb", found=describe(color)))
            continue
        groups.append(dict(group))
    return groups


def _migrate_node(node: GraphNode, registry: Registry, problems: list[Problem]) -> None:
    definition = registry.get(node.type)
    if definition is None or node.version >= definition.version:
        return  # unknown types stay as saved; newer versions are reported by validation
    if definition.migrate is not None:
        try:
            node.params = dict(definition.migrate(node.version, dict(node.params)))
        except Exception as exc:  # a plugin's migration is foreign code: report, do not crash
            problems.append(
                Problem("migration_failed", f"could not upgrade {node.type} from version {node.version}: {exc}", node.id, expected=f"version {definition.version}", found=f"version {node.version}")
            )
            return
    node.version = definition.version


def to_document(graph: Graph) -> dict[str, Any]:
    """The canonical JSON document of a graph (what :func:`save_workflow` writes)."""
    nodes: dict[str, Any] = {}
    for node in graph.nodes.values():
        entry: dict[str, Any] = {"type": node.type, "version": node.version}
        if node.params:
            entry["params"] = dict(node.params)
        if node.inputs:
            entry["inputs"] = {k: [s, o] for k, (s, o) in node.inputs.items()}
        if node.layout:
            entry["layout"] = dict(node.layout)
        if node.mode is not None:
            entry["mode"] = node.mode
        if node.param_inputs:
            entry["param_inputs"] = list(node.param_inputs)
        entry.update(node.extra)
        nodes[node.id] = entry
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "nodes": nodes}
    if graph.groups:
        doc["groups"] = [dict(g) for g in graph.groups]
    if graph.meta:
        doc["meta"] = graph.meta
    doc.update({k: v for k, v in graph.extra.items() if k not in doc})
    return doc


def dumps(graph: Graph) -> str:
    return json.dumps(to_document(graph), indent=2, ensure_ascii=False) + "\n"


def load_workflow(path: str | os.PathLike[str], registry: Registry | None = None) -> Graph:
    """Read a workflow file (or a PNG saved by the product, which embeds its workflow).

    Hostile files give a :class:`WorkflowError`, never a traceback or a hang: the path must be a regular file
    (not a FIFO or a device), the document stays within the limits of :mod:`nodegraph.limits`, and a node id
    or a key given twice is reported rather than silently collapsed."""
    from nodegraph.workflow_input import read_document

    doc, problems = read_document(Path(path))
    try:
        graph = parse_workflow(doc, registry)
    except WorkflowError as exc:
        raise WorkflowError(problems + exc.problems) from None
    if problems:
        raise WorkflowError(problems)
    return graph


def save_workflow(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write the workflow atomically, through a link, with the usual permissions (:mod:`nodegraph.atomic_files`)."""
    atomic_write_bytes(path, dumps(graph).encode("utf-8"))
