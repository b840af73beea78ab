"""What a link let go away from any port means: on a parameter's field it drives that parameter (which
becomes an input), on a node it goes to the node's first free input of a fitting type, and on empty canvas
the search opens, filtered to the node types that fit (ComfyUI's link release)."""

from __future__ import annotations

from typing import Any

from NodeGraphQt.constants import PortTypeEnum
from NodeGraphQt.qgraphics.node_base import NodeItem
from PySide6.QtCore import QPointF

from nodegraph.graph import LinkRefused
from ui.widgets import ParamWidget


class LinkDrops:
    """Mixed into :class:`~ui.canvas.Canvas`."""

    def _on_link_dropped(self, start: Any, scene_pos: QPointF) -> None:
        """A new link let go away from any port: on a parameter's field it drives that parameter; on a node it
        goes to the node's first free input of a fitting type; on empty canvas the search opens, filtered to
        node types that fit."""
        node_id = self.engine_id(start.node)
        if node_id is None:
            return
        from_output = start.port_type == PortTypeEnum.OUT.value
        target = None
        for item in self.viewer().scene().items(scene_pos):
            if isinstance(item, ParamWidget) and from_output:
                target = item
                break
            while item is not None and not isinstance(item, NodeItem):
                item = item.parentItem()
            if item is not None:
                target = item
                break
        try:
            if isinstance(target, ParamWidget):
                other = self.engine_id(target._node.view)
                if other is not None and other != node_id:
                    self.document.connect_to_param(node_id, start.name, other, target.param_name)
            elif isinstance(target, NodeItem):
                other = self.engine_id(target)
                if other is not None and other != node_id:
                    self._connect_first_fitting(node_id, start.name, from_output, other)
            else:
                self.link_search_requested.emit(node_id, start.name, from_output, scene_pos)
        except LinkRefused as exc:
            self.edit_refused.emit(str(exc))

    def _connect_first_fitting(self, node_id: str, port: str, from_output: bool, other: str) -> None:
        view, other_view = self.views[node_id], self.views[other]
        type_name = view.type_names.get(("out:" if from_output else "") + port, "*")
        graph = self.document.graph
        if from_output:
            names = sorted(other_view.inputs(), key=lambda n: n in graph.nodes[other].inputs)  # free inputs first
            for name in names:
                if self.document.accepts(other, name, type_name):
                    self.document.connect(node_id, port, other, name)
                    return
        else:
            for name in other_view.outputs():
                if self.document.accepts(node_id, port, other_view.type_names.get("out:" + name, "*")):
                    self.document.connect(other, name, node_id, port)
                    return
        self.edit_refused.emit(f"{other} has no {'input' if from_output else 'output'} that fits {type_name}")
