"""What a node shows of its results, inside its own area: an image box and a text box.

Both are reserved when the node is created (not when the first result arrives), so a node keeps its size
after a run and the layout, made by real node sizes, stays free of overlaps. The image box takes extra
height when the node is resized; the text box has a fixed height and scrolls.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPalette, QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QSizePolicy, QWidget

from nodegraph.node import NodeDef
from nodegraph.types import IMAGE, STRING
from ui.widgets import LightWidget

# Node types that show images in the node besides output nodes with an IMAGE input (a sampler's live
# preview, a loaded image): extend this set to reserve an image box for another type.
IMAGE_BOX_TYPES: set[str] = {"core.LoadImage"}


def wants_image_box(definition: NodeDef) -> bool:
    """Output nodes that receive images (Save, Preview) and the types listed in :data:`IMAGE_BOX_TYPES`."""
    receives = any(i.type.name == IMAGE.name for i in definition.inputs)
    return definition.id in IMAGE_BOX_TYPES or (definition.output_node and receives)


def wants_text_box(definition: NodeDef) -> bool:
    """Output nodes whose results include text (Show Value, the paths Save Image wrote)."""
    return definition.output_node and any(o.type.name == STRING.name for o in definition.outputs)


def _colours(widget: QWidget, background: QColor, text: QColor) -> None:
    palette = QPalette(widget.palette())
    for role in (QPalette.ColorRole.Window, QPalette.ColorRole.Base):
        palette.setColor(role, background)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text):
        palette.setColor(role, text)
    widget.setPalette(palette)
    widget.setAutoFillBackground(True)


class PreviewLabel(QLabel):
    """Shows the pixmap scaled to fit, whatever size the node gives the box."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._pixmap: QPixmap | None = None
        self._size = size
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(size, size)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        _colours(self, QColor(28, 28, 30), QColor(119, 119, 119))  # a palette, not a style sheet: cheap for 300 nodes
        self.setText("no image yet")

    def sizeHint(self) -> QSize:
        return QSize(self._size, self._size)

    def set_source(self, pixmap: QPixmap | None) -> None:
        self._pixmap = pixmap
        self._rescale()

    def source(self) -> QPixmap | None:
        return self._pixmap

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            self.setPixmap(QPixmap())
            self.setText("no image yet")
            return
        self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))


class ImagePreviewWidget(LightWidget):
    """The latest image a node produced or received, in a box of fixed size that grows with the node."""

    SIZE = 192
    stretch = True

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent, "__preview__", "")
        self.label = PreviewLabel(self.SIZE)
        self.set_custom_widget(self.label)

    def get_value(self) -> None:
        return None

    def set_value(self, value: Any) -> None:
        pass

    def set_pixmap(self, pixmap: QPixmap) -> None:
        self.label.set_source(pixmap)


class TextResultWidget(LightWidget):
    """The text an output node produced (a value, the paths of saved files): a few lines that scroll."""

    LINES = 3

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent, "__result__", "")
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.text.setPlaceholderText("result appears here after a run")
        _colours(self.text, QColor(29, 42, 29), QColor(216, 240, 216))
        lines = self.text.fontMetrics().lineSpacing() * self.LINES + 10
        self.text.setFixedHeight(lines)
        self.set_custom_widget(self.text)

    def get_value(self) -> str:
        return self.text.toPlainText()

    def set_value(self, value: Any) -> None:
        text = str(value or "")
        self.text.setPlainText(text if len(text) <= 4000 else text[:3997] + "...")
        self.text.setToolTip(text[:2000])
