"""A node type's help, from its one declaration: what it does, and each input, parameter and output."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from nodegraph.node import NodeDef


def _bounds(schema: dict) -> str:
    parts = []
    if schema.get("choices"):
        parts.append("one of " + ", ".join(escape(str(c)) for c in schema["choices"]))
    if schema.get("min") is not None or schema.get("max") is not None:
        parts.append(f"{schema.get('min', '…')} to {schema.get('max', '…')}".replace("None", "…"))
    if schema.get("folder"):
        parts.append(f"a file from the {escape(schema['folder'])} folder")
    return "; ".join(parts)


def help_html(definition: NodeDef) -> str:
    """The help of a node type as HTML (the dialog shows it; tests read it)."""
    schema = definition.schema()
    rows = [f"<h2>{escape(definition.name)}</h2>",
            f"<p><code>{escape(definition.id)}</code> version {definition.version} · {escape(definition.category)}"
            + (f" · from {escape(definition.source)}" if definition.source != "builtin" else "") + "</p>"]
    if definition.description:
        rows.append(f"<p>{escape(definition.description)}</p>")
    for title, items, kind in (("Inputs", schema["inputs"], "input"), ("Parameters", schema["params"], "param"),
                               ("Outputs", schema["outputs"], "output")):
        if not items:
            continue
        rows.append(f"<h3>{title}</h3><ul>")
        for item in items:
            detail = [escape(item["type"])]
            if kind == "input" and item.get("optional"):
                detail.append("optional")
            if kind == "param":
                detail.append(f"default {escape(repr(item.get('default')))}")
                bounds = _bounds(item)
                if bounds:
                    detail.append(bounds)
            help_text = f"<br/>{escape(item['help'])}" if item.get("help") else ""
            rows.append(f"<li><b>{escape(item['label'])}</b> <i>({', '.join(detail)})</i>{help_text}</li>")
        rows.append("</ul>")
    if definition.output_node:
        rows.append("<p><i>An output node: a run without chosen targets runs it and what it needs.</i></p>")
    return "\n".join(rows)


class NodeHelpDialog(QDialog):
    def __init__(self, definition: NodeDef, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Help: {definition.name}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.browser = QTextBrowser()
        self.browser.setHtml(help_html(definition))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(520, 560)
