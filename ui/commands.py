"""Undoable edits of the engine graph. Each command changes :class:`~nodegraph.Graph` and tells the document,
whose signals make the canvas follow; the canvas never edits the graph itself."""

from __future__ import annotations

import copy
from typing import Any, Protocol

from PySide6.QtCore import SignalInstance
from PySide6.QtGui import QUndoCommand

from nodegraph.graph import Graph, GraphNode


class EditTarget(Protocol):
    """What a command edits and whom it tells: the graph and the document's signals. (A protocol, so that
    this module does not import :mod:`ui.document`, which imports the commands.)"""

    graph: Graph
    node_added: SignalInstance
    node_removed: SignalInstance
    inputs_changed: SignalInstance
    param_changed: SignalInstance
    layout_changed: SignalInstance
    node_replaced: SignalInstance
    node_changed: SignalInstance
    groups_changed: SignalInstance

# ids for QUndoCommand.mergeWith: consecutive edits of one parameter collapse into one undo step
_MERGE_PARAM = 1001


def _insert_at(nodes: dict[str, GraphNode], index: int, node: GraphNode) -> None:
    """Re-insert a node at its old place so that undo restores the file's node order exactly."""
    items = list(nodes.items())
    items.insert(min(index, len(items)), (node.id, node))
    nodes.clear()
    nodes.update(items)


class AddNodesCommand(QUndoCommand):
    """Adds nodes (one new node, or a pasted fragment whose inputs may point at each other)."""

    def __init__(self, doc: EditTarget, nodes: list[GraphNode], text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.nodes = [copy.deepcopy(n) for n in nodes]

    def redo(self) -> None:
        graph = self.doc.graph
        for node in self.nodes:
            graph.nodes[node.id] = copy.deepcopy(node)
        for node in self.nodes:
            self.doc.node_added.emit(node.id)

    def undo(self) -> None:
        for node in reversed(self.nodes):
            self.doc.graph.nodes.pop(node.id, None)
            self.doc.node_removed.emit(node.id)


class RemoveNodesCommand(QUndoCommand):
    """Removes nodes and every link touching them; undo puts back the nodes, their place and the links."""

    def __init__(self, doc: EditTarget, node_ids: list[str]) -> None:
        super().__init__(f"delete {len(node_ids)} node(s)")
        self.doc = doc
        order = list(doc.graph.nodes)
        self.removed = sorted(((order.index(i), copy.deepcopy(doc.graph.nodes[i])) for i in node_ids), key=lambda t: t[0])
        gone = set(node_ids)
        # links from surviving nodes into the removed ones: restored on undo
        self.readers = [
            (n.id, name, link)
            for n in doc.graph.nodes.values()
            if n.id not in gone
            for name, link in n.inputs.items()
            if link[0] in gone
        ]

    def redo(self) -> None:
        graph = self.doc.graph
        touched = {reader for reader, _, _ in self.readers}
        for _, node in self.removed:
            graph.remove_node(node.id)
            self.doc.node_removed.emit(node.id)
        for reader in touched:
            self.doc.inputs_changed.emit(reader)

    def undo(self) -> None:
        graph = self.doc.graph
        for index, node in self.removed:
            _insert_at(graph.nodes, index, copy.deepcopy(node))
        for reader, name, link in self.readers:
            graph.nodes[reader].inputs[name] = link
        for _, node in self.removed:
            self.doc.node_added.emit(node.id)
        for reader in {reader for reader, _, _ in self.readers}:
            self.doc.inputs_changed.emit(reader)


class SetLinksCommand(QUndoCommand):
    """Sets or clears inputs: ``{(target, input): (source, output) or None}``. Checked links only: the
    document runs :meth:`Graph.connect` (which raises :class:`~nodegraph.LinkRefused`) before pushing."""

    def __init__(self, doc: EditTarget, changes: dict[tuple[str, str], tuple[str, str] | None], text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.after = dict(changes)
        self.before = {key: doc.graph.nodes[key[0]].inputs.get(key[1]) for key in changes}

    def _apply(self, values: dict[tuple[str, str], tuple[str, str] | None]) -> None:
        graph = self.doc.graph
        for (target, name), link in values.items():
            if link is None:
                graph.nodes[target].inputs.pop(name, None)
            else:
                graph.nodes[target].inputs[name] = link
        for target in {t for t, _ in values}:
            self.doc.inputs_changed.emit(target)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class SetParamCommand(QUndoCommand):
    def __init__(self, doc: EditTarget, node_id: str, name: str, value: Any) -> None:
        super().__init__(f"set {node_id}.{name}")
        self.doc = doc
        self.node_id = node_id
        self.name = name
        node = doc.graph.nodes[node_id]
        self.had_before = name in node.params
        self.before = node.params.get(name)
        self.after = value

    def id(self) -> int:
        return _MERGE_PARAM

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetParamCommand) or (other.node_id, other.name) != (self.node_id, self.name):
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        self.doc.graph.nodes[self.node_id].params[self.name] = self.after
        self.doc.param_changed.emit(self.node_id, self.name)

    def undo(self) -> None:
        params = self.doc.graph.nodes[self.node_id].params
        if self.had_before:
            params[self.name] = self.before
        else:
            params.pop(self.name, None)
        self.doc.param_changed.emit(self.node_id, self.name)


class SetLayoutCommand(QUndoCommand):
    """Moves nodes, renames or recolours them: layout keys only, ``None`` removes a key."""

    def __init__(self, doc: EditTarget, changes: dict[str, dict[str, Any]], text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.after = {node_id: dict(values) for node_id, values in changes.items()}
        self.before = {
            node_id: {key: doc.graph.nodes[node_id].layout.get(key) for key in values}
            for node_id, values in changes.items()
        }

    def _apply(self, values: dict[str, dict[str, Any]]) -> None:
        for node_id, layout in values.items():
            target = self.doc.graph.nodes[node_id].layout
            for key, value in layout.items():
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
            self.doc.layout_changed.emit(node_id)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class UpgradeNodesCommand(QUndoCommand):
    """Sets nodes' versions and parameters together: a node brought up to a newer version of its type."""

    def __init__(self, doc: EditTarget, after: dict[str, tuple[int, dict[str, Any]]], text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.after = copy.deepcopy(after)
        self.before = {i: (doc.graph.nodes[i].version, copy.deepcopy(doc.graph.nodes[i].params)) for i in after}

    def _apply(self, values: dict[str, tuple[int, dict[str, Any]]]) -> None:
        for node_id, (version, params) in values.items():
            node = self.doc.graph.nodes[node_id]
            node.version = version
            node.params = copy.deepcopy(params)
            self.doc.node_replaced.emit(node_id)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class SetNodeFieldsCommand(QUndoCommand):
    """Sets a node's mode (bypass, mute) or its parameter inputs: ``{node id: {"mode": ..., "param_inputs": [...]}}``."""

    FIELDS = ("mode", "param_inputs")

    def __init__(self, doc: EditTarget, changes: dict[str, dict[str, Any]], text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.after = copy.deepcopy(changes)
        self.before = {
            node_id: {key: copy.deepcopy(getattr(doc.graph.nodes[node_id], key)) for key in values}
            for node_id, values in changes.items()
        }

    def _apply(self, values: dict[str, dict[str, Any]]) -> None:
        for node_id, fields in values.items():
            node = self.doc.graph.nodes[node_id]
            for key, value in fields.items():
                assert key in self.FIELDS, key
                setattr(node, key, copy.deepcopy(value))
            self.doc.node_changed.emit(node_id)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class SetGroupsCommand(QUndoCommand):
    """Replaces the list of groups (add, remove, rename, recolour, move or resize one)."""

    def __init__(self, doc: EditTarget, groups: list[dict[str, Any]], text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.before = copy.deepcopy(doc.graph.groups)
        self.after = copy.deepcopy(groups)

    def _apply(self, groups: list[dict[str, Any]]) -> None:
        self.doc.graph.groups = copy.deepcopy(groups)
        self.doc.groups_changed.emit()

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)
