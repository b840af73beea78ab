"""The node context menu (right click on a node), and the registry other parts extend it through.

The menu holds run this node, bypass, mute, rename, colour, parameters as inputs, duplicate, delete and
help. Anything else comes from :func:`register_node_action`: an action for some node types (or all), or one
entry per parameter of a kind (``param_kind="image_file"`` offers the action for each image parameter), e.g.::

    from ui.node_menu import register_node_action

    def edit_mask(ctx):  # ctx.window, ctx.node_id, ctx.node, ctx.definition, ctx.param
        MaskEditor(ctx.window, ctx.node_id, ctx.param).show()

    register_node_action("Edit Mask…", edit_mask, node_types={"core.LoadImage"}, param_kind="image_file")

Registered actions appear in their own section, in registration order. Actions apply to the clicked node;
the built-in ones apply to the whole selection when the clicked node is part of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import QMenu

from nodegraph.graph import BYPASS, MUTE, GraphNode
from nodegraph.node import NodeDef

# name -> (r, g, b): the colour presets of the Colour submenu (tinted node bodies that keep text legible)
COLOR_PRESETS: dict[str, tuple[int, int, int]] = {
    "Red": (105, 45, 45),
    "Brown": (95, 70, 40),
    "Green": (45, 85, 50),
    "Blue": (40, 65, 105),
    "Pale blue": (55, 85, 100),
    "Cyan": (35, 85, 90),
    "Purple": (80, 50, 100),
    "Yellow": (100, 90, 40),
    "Black": (20, 20, 22),
}


@dataclass
class MenuContext:
    """What an action works on: the window, the clicked node, its type (None if not installed), the
    parameter for per-parameter actions, and the nodes the built-in actions apply to."""

    window: Any
    node_id: str
    node: GraphNode
    definition: NodeDef | None
    param: str | None = None
    targets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NodeAction:
    text: str
    callback: Callable[[MenuContext], None]
    node_types: frozenset[str] | None = None  # None: every node type
    param_kind: str | None = None  # offered once per parameter of this kind
    enabled: Callable[[MenuContext], bool] | None = None
    tip: str = ""


_ACTIONS: list[NodeAction] = []


def register_node_action(
    text: str,
    callback: Callable[[MenuContext], None],
    *,
    node_types: Iterable[str] | None = None,
    param_kind: str | None = None,
    enabled: Callable[[MenuContext], bool] | None = None,
    tip: str = "",
) -> NodeAction:
    """Add an entry to the node context menu; returns it (for :func:`unregister_node_action`)."""
    action = NodeAction(text, callback, frozenset(node_types) if node_types is not None else None, param_kind, enabled, tip)
    _ACTIONS.append(action)
    return action


def unregister_node_action(action: NodeAction) -> None:
    if action in _ACTIONS:
        _ACTIONS.remove(action)


def registered_for(node: GraphNode, definition: NodeDef | None) -> list[tuple[NodeAction, str | None]]:
    """The registered actions that apply to this node: (action, parameter name or None)."""
    found: list[tuple[NodeAction, str | None]] = []
    for action in _ACTIONS:
        if action.node_types is not None and node.type not in action.node_types:
            continue
        if action.param_kind is None:
            found.append((action, None))
        elif definition is not None:
            found.extend((action, p.name) for p in definition.params if p.kind == action.param_kind)
    return found


def color_icon(rgb: tuple[int, int, int]) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


def build_node_menu(window: Any, node_id: str) -> QMenu:
    """The context menu of one node. ``window`` is the main window (its editing and run commands)."""
    document = window.document
    node = document.graph.nodes[node_id]
    definition = document.registry.get(node.type)
    selected = window.canvas.selected_ids()
    targets = selected if node_id in selected else [node_id]
    many = f" ({len(targets)} nodes)" if len(targets) > 1 else ""
    menu = QMenu(window)

    run = menu.addAction("Run This Node", lambda: window.run_node(node_id))
    run.setStatusTip("Run this node and the nodes it needs; nothing downstream")
    run.setEnabled(not window.runner.running and definition is not None)
    menu.addSeparator()
    for text, mode, keys, tip in (
        ("Bypass", BYPASS, "Ctrl+B", "Skip the node: each input passes on to the first output of its type"),
        ("Mute", MUTE, "Ctrl+M", "Skip the node and whatever cannot run without it"),
    ):
        action = _checkable(menu, text + many, node.mode == mode, keys, tip)
        action.triggered.connect(lambda _=False, m=mode: document.toggle_mode(targets, m))
    menu.addSeparator()
    menu.addAction("Rename…", lambda: window.rename_node(node_id)).setShortcut(QKeySequence("F2"))
    colours = menu.addMenu("Colour" + many)
    for name, rgb in COLOR_PRESETS.items():
        colours.addAction(color_icon(rgb), name, lambda _=False, c=rgb: window.color_nodes(targets, c))
    colours.addSeparator()
    colours.addAction("Custom…", lambda: window.choose_color(targets))
    colours.addAction("Default", lambda: window.color_nodes(targets, None))
    if node.layout.get("width") is not None:
        menu.addAction("Fit Size to Contents", lambda: document.set_size(node_id, None))
    if definition is not None and definition.params:
        inputs = menu.addMenu("Parameters as Inputs")
        for param in definition.params:
            shown = param.name in node.param_inputs or param.name in node.inputs
            action = _checkable(inputs, param.label or param.name.replace("_", " "), shown, None,
                                f"Show {param.name} as an input socket of type {param.socket_type.name}")
            action.triggered.connect(lambda checked, n=param.name: window.set_param_input(node_id, n, checked))
    extra = registered_for(node, definition)
    if extra:
        menu.addSeparator()
        for action, param in extra:
            item_ctx = MenuContext(window, node_id, node, definition, param, [node_id])
            label = action.text if param is None else f"{action.text} ({param})"
            entry = menu.addAction(label, lambda _=False, a=action, c=item_ctx: a.callback(c))
            entry.setStatusTip(action.tip)
            if action.enabled is not None:
                entry.setEnabled(bool(action.enabled(item_ctx)))
    menu.addSeparator()
    menu.addAction("Duplicate" + many, lambda: window.duplicate(targets)).setShortcut(QKeySequence("Ctrl+D"))
    menu.addAction("Delete" + many, lambda: document.remove_nodes(targets)).setShortcut(QKeySequence.StandardKey.Delete)
    menu.addSeparator()
    menu.addAction("Help", lambda: window.show_node_help(node_id)).setShortcut(QKeySequence("F1"))
    return menu


def _checkable(menu: QMenu, text: str, checked: bool, keys: str | None, tip: str) -> QAction:
    action = menu.addAction(text)
    action.setCheckable(True)
    action.setChecked(checked)
    if keys:
        action.setShortcut(QKeySequence(keys))
    action.setStatusTip(tip)
    return action
