"""Seed "control after generate" in the editor: the seed field's dice button also holds, in its menu, what the
seed does after each run (fixed, increment, decrement, randomize). The choice is an undoable edit stored with
the node in the workflow file (``"controls": {"seed": "increment"}``, :mod:`nodegraph.seed_control`); Run,
Ctrl+Enter during a run and Run N Times apply it after queueing each run, as ComfyUI does.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QActionGroup, QUndoCommand
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from nodegraph.seed_control import CONTROLS, apply_controls, control_of, set_control
from ui import widgets
from ui.icons import dice_icon

BUTTON_TEXT = {"fixed": "", "increment": "+1", "decrement": "−1", "randomize": "rnd"}
LABELS = {"fixed": "Fixed", "increment": "Increment", "decrement": "Decrement", "randomize": "Randomize"}


class SetSeedControlCommand(QUndoCommand):
    def __init__(self, document: Any, node_id: str, param: str, control: str) -> None:
        super().__init__(f"seed control: {control}")
        self.document, self.node_id, self.param = document, node_id, param
        self.after = control
        self.before = control_of(document.graph.nodes[node_id], param)

    def _apply(self, control: str) -> None:
        set_control(self.document.graph.nodes[self.node_id], self.param, control)
        self.document.node_changed.emit(self.node_id)

    def redo(self) -> None:
        self._apply(self.after)

    def undo(self) -> None:
        self._apply(self.before)


class SeedControlWidget(widgets.SeedWidget):
    """The seed field: the number, and a dice button (a click: a random seed now; its menu: the control)."""

    def build(self) -> QWidget:
        box = widgets.BigIntWidget.build(self)
        self.control = "fixed"
        self.dice = QToolButton()
        self.dice.setIcon(dice_icon())
        self.dice.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.dice.setFixedWidth(46)
        self.dice.clicked.connect(self.randomise)
        menu = QMenu(self.dice)
        group = QActionGroup(menu)
        self.control_actions = {}
        for control in CONTROLS:
            action = menu.addAction(f"After each run: {LABELS[control]}")
            action.setCheckable(True)
            action.setActionGroup(group)
            action.triggered.connect(lambda _checked=False, c=control: self.choose_control(c))
            self.control_actions[control] = action
        self.dice.setMenu(menu)
        self.row.addWidget(self.dice)
        self.show_control("fixed")
        return box

    def show_control(self, control: str) -> None:
        """Show the stored control (no edit)."""
        self.control = control if control in CONTROLS else "fixed"
        self.control_actions[self.control].setChecked(True)
        text = BUTTON_TEXT[self.control]
        self.dice.setText(text)
        self.dice.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly if text else Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.dice.setToolTip(f"Pick a random seed now. After each run: {LABELS[self.control].lower()} "
                             "(choose in the arrow's menu)")

    def choose_control(self, control: str) -> None:
        """The user picked a control: an undoable edit of the node."""
        node = getattr(self, "_node", None)
        canvas = getattr(node, "graph", None)
        document = getattr(canvas, "document", None)
        if document is None or not getattr(node, "engine_id", "") or control == control_of(document.graph.nodes[node.engine_id], self.param_name):
            self.show_control(control)
            return
        document.undo_stack.push(SetSeedControlCommand(document, node.engine_id, self.param_name, control))


def install() -> None:
    """Seed parameters get this widget (node classes made afterwards use it)."""
    widgets.WIDGETS["seed"] = SeedControlWidget


def refresh(canvas: Any, document: Any, node_id: str | None = None) -> None:
    """Show the stored controls on the seed widgets of one node (or all)."""
    ids = [node_id] if node_id else list(document.graph.nodes)
    for nid in ids:
        view = canvas.views.get(nid)
        node = document.graph.nodes.get(nid)
        if view is None or node is None:
            continue
        for name, widget in view.param_widgets().items():
            if isinstance(widget, SeedControlWidget):
                widget.show_control(control_of(node, name))


def advance_seeds(document: Any) -> dict[tuple[str, str], tuple[int, int]]:
    """Apply every seed's control to the open workflow (after queueing a run), as one undo step."""
    scratch = document.graph.copy()
    changes = apply_controls(scratch, document.registry)
    if changes:
        document.undo_stack.beginMacro("seeds after run")
        for (node_id, param), (_old, new) in changes.items():
            document.set_param(node_id, param, new)
        document.undo_stack.endMacro()
    return changes
